/**
 * `scaling` (seed 000): 1, 2, 4, 8 mock engines behind the gateway at the same per-engine
 * concurrency, timing model on, so the engines, not the gateway, bound throughput. The default
 * speed-up is 0.25 (each pass takes 4× the modeled GPU time, about 24 ms per decode pass): at
 * speed-up 1, 8 engines × 16 streams emit about 15k tokens/s, and the mocker, the gateway and the
 * load generator then need about 1.9 cores for their SSE between them, so a 2-core machine, not the
 * engines, bounds the 8-engine row. Per row: one mocker process with N engines, one gateway with
 * one --worker per engine (round robin), a closed loop of N × c streaming completions with exact
 * ISL and ignore_eos, N × c × rounds requests after a warm-up. OSL varies (normal, stddev 32) by
 * default: with one exact OSL the requests of one engine finish in the same pass and come back
 * together, so the engine prefills them in one pass (16.5 ms fixed cost per prefill pass, DESIGN
 * 5.4) and stays in lockstep, about 25% faster than when they arrive apart; round robin scatters
 * those waves over the fleet, so the ratio measured how much lockstep survived (7.0x to 7.8x at
 * 8 engines between runs) rather than the gateway. `--osl-stddev 0` gives the exact-OSL run.
 * Prints the throughput ratio vs the smallest fleet against the ideal, latencies, and the CPU the
 * gateway and the mocker spent, with a warning on any row where a process came near a full core or
 * the machine was busy (then the machine, not the engines, may bound the row).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runLoad, type LoadResult } from '../src/bench/index.js'
import { recordFigures } from './lib/docs.js'
import { freePortRange, waitForWorkers } from './lib/fleet.js'
import { cpuMs, freePort, start, waitForPort, type Proc } from './lib/proc.js'
import { fmt, machine, table } from './lib/table.js'

const CLI = new URL('../src/cli/main.js', import.meta.url).pathname
/** 8 engines at 7.6x one engine: 95% of ideal. */
const GOAL_EFFICIENCY = 0.95
/** A process above this share of a core may be what bounds the row, not the engines. */
const CPU_WARN = 0.7
/** Seed of the warm-up prompts: not the measured run's, so the engines' prefix caches stay cold. */
const WARMUP_SEED = 1042

interface Opts { transport: 'http' | 'native', concurrency: number, rounds: number, warmupRounds: number, isl: number, osl: number, oslStddev: number, speedup: number }

interface Row {
  engines: number
  concurrency: number
  res: LoadResult
  wallMs: number
  gatewayCpuMs: number
  mockerCpuMs: number
  /** Share of all the machine's cores busy during the row (our processes and everyone else's). */
  machineBusy: number
  /** Requests each engine got (from the gateway's per-worker counts). */
  perWorker: number[]
}

/** Total and idle jiffies of all CPUs, from /proc/stat. */
function cpuTimes (): { total: number, idle: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = f.reduce((a, b) => a + b, 0)
  return { total, idle: (f[3] ?? 0) + (f[4] ?? 0) }
}

async function measure (engines: number, opts: Opts, step: string): Promise<Row> {
  const concurrency = engines * opts.concurrency
  const basePort = await freePortRange(engines)
  const gwPort = await freePort()
  const nativeBase = opts.transport === 'native' ? await freePortRange(engines) : 0
  const mocker = start(process.execPath, [CLI, 'mocker', '--num-workers', String(engines), '--port', String(basePort), '--speedup-ratio', String(opts.speedup), ...(opts.transport === 'native' ? ['--native-port', String(nativeBase)] : [])])
  let gateway: Proc | null = null
  try {
    for (let i = 0; i < engines; i++) await waitForPort(basePort + i)
    for (let i = 0; opts.transport === 'native' && i < engines; i++) await waitForPort(nativeBase + i)
    // Native: the workers' native addresses go through a config file (native_url has no flag form).
    const dir = mkdtempSync(join(tmpdir(), 'swy-scaling-'))
    const file = join(dir, 'switchyard.yaml')
    writeFileSync(file, 'workers:\n' + Array.from({ length: engines }, (_, i) =>
      `  - { url: "http://127.0.0.1:${basePort + i}", model: mock-llm${opts.transport === 'native' ? `, native_url: "swy://127.0.0.1:${nativeBase + i}"` : ''} }`).join('\n') + '\n')
    gateway = start(process.execPath, [CLI, 'serve', '--port', String(gwPort), '--config', file])
    await waitForPort(gwPort)
    await waitForWorkers(gwPort, engines)
    const url = `http://127.0.0.1:${gwPort}`
    const load = { url, model: 'mock-llm', endpoint: 'completions' as const, stream: true, concurrency, isl: opts.isl, osl: { mean: opts.osl, stddev: opts.oslStddev }, ignoreEos: true }
    const requests = concurrency * opts.rounds
    console.error(`${step} ${engines} engine${engines === 1 ? '' : 's'}: c=${concurrency}, warm-up ${concurrency * opts.warmupRounds} then ${requests} requests`)
    if (opts.warmupRounds > 0) {
      const warm = await runLoad({ ...load, numRequests: concurrency * opts.warmupRounds, seed: WARMUP_SEED, progress: false, scrapeMetrics: false })
      if (warm.summary.requests.failed > 0) console.error(`  warm-up: ${warm.summary.requests.failed} failed: ${warm.summary.errors.examples.join('; ')}`)
    }
    const g0 = cpuMs(gateway.child.pid!)
    const m0 = cpuMs(mocker.child.pid!)
    const c0 = cpuTimes()
    const t0 = performance.now()
    const res = await runLoad({ ...load, numRequests: requests, progress: true, scrapeMetrics: true })
    const wallMs = performance.now() - t0
    const c1 = cpuTimes()
    const row: Row = {
      engines,
      concurrency,
      res,
      wallMs,
      gatewayCpuMs: cpuMs(gateway.child.pid!) - g0,
      mockerCpuMs: cpuMs(mocker.child.pid!) - m0,
      machineBusy: c1.total === c0.total ? NaN : 1 - (c1.idle - c0.idle) / (c1.total - c0.total),
      perWorker: res.workers === null ? [] : Object.values(res.workers.delta)
    }
    if (res.summary.requests.failed > 0) console.error(`  ${res.summary.requests.failed} failed: ${res.summary.errors.examples.join('; ')}`)
    return row
  } finally {
    await gateway?.stop()
    await mocker.stop()
  }
}

/** Why a row may not show the engines' limit: a process near a full core, a busy machine, skewed routing. */
function warnings (r: Row): string[] {
  const out: string[] = []
  const pct = (ms: number): number => ms / r.wallMs
  const gen = r.res.generator.cpuMs.user + r.res.generator.cpuMs.system
  for (const [who, share] of [['gateway', pct(r.gatewayCpuMs)], ['mocker', pct(r.mockerCpuMs)], ['load generator', pct(gen)]] as const) {
    if (share > CPU_WARN) out.push(`${r.engines} engines: ${who} at ${(share * 100).toFixed(0)}% of a core: the machine, not the engines, may bound this row`)
  }
  if (r.machineBusy > 0.9) out.push(`${r.engines} engines: the machine's CPUs were ${(r.machineBusy * 100).toFixed(0)}% busy (other processes included): the machine may bound this row`)
  if (r.perWorker.length > 0) {
    const lo = Math.min(...r.perWorker)
    const hi = Math.max(...r.perWorker)
    if (r.perWorker.length !== r.engines || hi > lo * 1.1 + 1) out.push(`${r.engines} engines: uneven routing, requests per engine ${r.perWorker.join('/')}`)
  }
  return out
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      workers: { type: 'string', default: '1,2,4,8' },
      concurrency: { type: 'string', default: '16' },
      rounds: { type: 'string', default: '5' },
      'warmup-rounds': { type: 'string', default: '1' },
      isl: { type: 'string', default: '256' },
      osl: { type: 'string', default: '128' },
      'osl-stddev': { type: 'string', default: '32' },
      speedup: { type: 'string', default: '0.25' },
      transport: { type: 'string', default: 'http' },
      'no-record': { type: 'boolean', default: false }
    }
  })
  const counts = values.workers.split(',').map(s => Number(s.trim()))
  if (counts.length === 0 || counts.some(n => !Number.isInteger(n) || n < 1)) throw new Error(`--workers must be a comma-separated list of positive integers, got ${values.workers}`)
  if (values.transport !== 'http' && values.transport !== 'native') throw new Error(`--transport takes http or native, got ${values.transport}`)
  const opts: Opts = { transport: values.transport, concurrency: Number(values.concurrency), rounds: Number(values.rounds), warmupRounds: Number(values['warmup-rounds']), isl: Number(values.isl), osl: Number(values.osl), oslStddev: Number(values['osl-stddev']), speedup: Number(values.speedup) }
  for (const k of ['concurrency', 'rounds', 'isl', 'osl'] as const) if (!Number.isInteger(opts[k]) || opts[k] < 1) throw new Error(`--${k} must be a positive integer, got ${opts[k]}`)
  if (!Number.isInteger(opts.warmupRounds) || opts.warmupRounds < 0) throw new Error(`--warmup-rounds must be an integer ≥ 0, got ${values['warmup-rounds']}`)
  if (!(opts.oslStddev >= 0)) throw new Error(`--osl-stddev must be ≥ 0, got ${values['osl-stddev']}`)
  if (!(opts.speedup > 0)) throw new Error(`--speedup must be > 0 (the timing model must be on), got ${values.speedup}`)
  const rows: Row[] = []
  for (const [i, n] of counts.entries()) rows.push(await measure(n, opts, `[${i + 1}/${counts.length}]`))

  const header = `scaling — ${await machine()}\ncommand: npm run bench -- scaling ${argv.join(' ')}\none mocker process with N engines (speed-up ${opts.speedup}, timing model on) behind one gateway (round robin, log level info, ${opts.transport === 'native' ? 'native transport' : 'HTTP/SSE'} to the engines), completions, stream, c=${opts.concurrency} per engine, ISL ${opts.isl} exact, OSL ${opts.oslStddev === 0 ? `${opts.osl} exact` : `normal(${opts.osl}, ${opts.oslStddev})`}, ignore_eos, ${opts.rounds} requests per concurrency slot after ${opts.warmupRounds} warm-up round${opts.warmupRounds === 1 ? '' : 's'}; CPU % is of one core over the row's wall time`
  console.log('\n' + header + '\n')
  const base = rows[0]!
  const baseTps = base.res.summary.outputTokenThroughput
  const t = table(['engines', 'concurrency', 'req/s', 'output tok/s', 'ratio vs ' + base.engines, 'ideal ratio', 'efficiency %', 'TTFT p50 ms', 'ITL p50 ms', 'e2e p50 ms', 'gateway CPU ms/req', 'gateway CPU %', 'mocker CPU %', 'errors'], rows.map(r => {
    const s = r.res.summary
    const ratio = s.outputTokenThroughput / baseTps
    const ideal = r.engines / base.engines
    return [String(r.engines), String(r.concurrency), s.requestThroughput, s.outputTokenThroughput, ratio, ideal, ratio / ideal * 100, s.latency.ttftMs?.p50 ?? NaN, s.latency.itlMs?.p50 ?? NaN, s.latency.e2eMs?.p50 ?? NaN, r.gatewayCpuMs / Math.max(1, s.requests.ok), r.gatewayCpuMs / r.wallMs * 100, r.mockerCpuMs / r.wallMs * 100, String(s.requests.failed)]
  }))
  const top = rows.reduce((a, b) => b.engines > a.engines ? b : a)
  let verdict = ''
  if (top !== base) {
    const ratio = top.res.summary.outputTokenThroughput / baseTps
    const goal = GOAL_EFFICIENCY * top.engines / base.engines
    verdict = `\n${top.engines} engines vs ${base.engines}: ${fmt(ratio) === fmt(goal) ? ratio.toFixed(3) : fmt(ratio)}x output tokens/s (goal ≥ ${fmt(goal)}x, ${GOAL_EFFICIENCY * 100}% of ideal): ${ratio >= goal ? 'PASS' : 'MISS'}`
  }
  const warn = rows.flatMap(warnings).map(w => `warning: ${w}`).join('\n')
  console.log(verdict + (warn === '' ? '' : '\n' + warn))
  if (!values['no-record']) recordFigures(opts.transport === 'native' ? 'scaling-native' : 'scaling', `## scaling${opts.transport === 'native' ? ' (native transport)' : ''}\n\n${header.replace('\n', '\n\n')}\n\n${t}\n${verdict}\n${warn === '' ? '' : '\n```\n' + warn + '\n```\n'}`)
}
