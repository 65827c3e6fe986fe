/**
 * `streaming`: what a proxy costs per streamed token when tokens come paced, as an engine emits
 * them (each token its own small write, `--pacing` ms apart per stream), side by side in one run:
 *   - direct: the load generator straight to upstream A (no proxy: the client's own TTFT/ITL floor),
 *   - nginx, the bare Node proxy, Portkey's gateway (when installed and answering correctly) and
 *     switchyard (`serve`, default settings), each its own process (bench/lib/peers.ts),
 * all in front of the same two paced upstreams (bench/lib/fast-upstream.ts with a pacing: one
 * chunk per stream per step, steps `--pacing` ms apart; own processes).
 *
 * Load: the load generator (src/bench runLoad), closed loop at `--concurrency` streams, chat
 * completions with stream: true and `--tokens` chunks each, `--per-slot` streams per slot
 * (so concurrency × per-slot requests a cell), capped at `--max-cell` seconds; the first round
 * warms every target up with one stream per slot. `--rounds` rounds, the order of targets rotating
 * every round; the table quotes medians over rounds, the ratios are medians of per-round ratios.
 *
 * CPU per token: the proxy process's utime + stime (/proc; nginx: master + worker) over the cell's
 * runLoad call ÷ the tokens the client received (content chunks). TTFT and ITL are the client's
 * (every gap between two content chunks of a stream). The upstreams' chunk counters cross-check
 * that every token sent arrived.
 *
 * At 1 ms pacing, 256 streams offer 256,000 tokens/s: more than a 2-core machine carries through
 * any of these proxies, its load generator and its upstreams at once, so that row measures a
 * saturated proxy (chunks coalesce, ITL stretches; the tokens/s column shows how far); 10 ms
 * (25,600 tokens/s) is the unsaturated case.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { runLoad, type LoadResult } from '../src/bench/index.js'
import { recordFigures } from './lib/docs.js'
import { alive, cpuOf, ensureCommand, findPortkey, startTargets, upstreamStats, type Target as PeerTarget } from './lib/peers.js'
import { freePort, start, waitForPort, type Proc } from './lib/proc.js'
import { fmt, machine, median, table } from './lib/table.js'

const TARGETS = ['direct', 'nginx', 'bare', 'portkey', 'gateway', 'gateway-warn'] as const
type TargetName = typeof TARGETS[number]
const DEFAULT_TARGETS: TargetName[] = ['direct', 'nginx', 'bare', 'portkey', 'gateway']
const LABELS: Record<TargetName, string> = {
  direct: 'direct (upstream A only)',
  nginx: 'nginx',
  bare: 'bare Node proxy',
  portkey: 'Portkey gateway',
  gateway: 'switchyard',
  'gateway-warn': 'switchyard --log-level warn'
}
const MODEL = 'm'
/** Prompt tokens: small, the scenario is about the answer's path. */
const ISL = 16

type Target = PeerTarget<TargetName>

interface Cell {
  round: number
  pacingMs: number
  target: TargetName
  conc: number
  requests: number
  failed: number
  /** Content chunks the client received. */
  tokens: number
  /** Chunks the upstreams wrote over the cell (cross-check). */
  upstreamChunks: number
  wallMs: number
  tokPerS: number
  ttftP50: number
  ttftP99: number
  itlP50: number
  itlP99: number
  /** Proxy CPU per delivered token (NaN for direct). */
  cpuUsPerToken: number
  /** Proxy CPU over the cell's wall time, in % of one core. */
  cpuPct: number
  /** The load generator's event-loop delay p99 (high: client-side figures inflated). */
  clientLoopP99: number
  errors: string[]
}

async function upstreamChunks (urls: string[]): Promise<number> {
  return (await upstreamStats(urls)).reduce((n, s) => n + s.chunks, 0)
}

function load (t: Target, conc: number, requests: number, tokens: number, maxCellS: number, progress: boolean): Promise<LoadResult> {
  return runLoad({
    url: t.url,
    model: MODEL,
    endpoint: 'chat',
    stream: true,
    concurrency: conc,
    numRequests: requests,
    durationS: maxCellS,
    drainTimeoutS: 30,
    requestTimeoutS: 30,
    isl: ISL,
    osl: tokens,
    extraHeaders: t.headers,
    scrapeMetrics: false,
    progress
  })
}

/** Two streams of 4 tokens through the target, checked whole by the load generator. */
async function verify (t: Target): Promise<void> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const r = await load(t, 1, 2, 4, 10, false)
    const s = r.summary
    const whole = s.requests.ok === 2 && r.records.every(x => x.contentChunks === 4)
    if (whole) return
    // The gateway listens before its workers are registered: retry for a while.
    if (Date.now() > deadline) throw new Error(`${t.name}: ${s.requests.ok}/2 streams whole (${r.records.map(x => x.contentChunks).join(', ')} chunks); ${s.errors.examples.join('; ')}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pacing: { type: 'string', default: '1,10' },
      concurrency: { type: 'string', default: '256' },
      tokens: { type: 'string', default: '128' },
      'per-slot': { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      'max-cell': { type: 'string', default: '30' },
      targets: { type: 'string', default: DEFAULT_TARGETS.join(',') },
      json: { type: 'string' },
      'no-install': { type: 'boolean', default: false },
      'no-record': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help) {
    console.log(`npm run bench -- streaming [--pacing MS,MS=1,10] [--concurrency N,..=256] [--tokens N=128] [--per-slot N=3]
  [--rounds N=3] [--max-cell S=30] [--targets ${DEFAULT_TARGETS.join(',')}] [--json FILE] [--no-install] [--no-record]`)
    return
  }
  const pacings = values.pacing.split(',').map(Number)
  const concs = values.concurrency.split(',').map(Number)
  const tokens = Number(values.tokens)
  const perSlot = Number(values['per-slot'])
  const rounds = Number(values.rounds)
  const maxCellS = Number(values['max-cell'])
  let names = values.targets.split(',') as TargetName[]
  for (const n of names) if (!TARGETS.includes(n)) throw new Error(`unknown target '${n}'; targets: ${TARGETS.join(', ')}`)
  if (pacings.some(p => !(p > 0)) || concs.some(c => !Number.isInteger(c) || c < 1) || !Number.isInteger(tokens) || tokens < 2 || !Number.isInteger(perSlot) || perSlot < 1 || !Number.isInteger(rounds) || rounds < 1 || !(maxCellS > 0)) {
    throw new Error('--pacing takes positive ms; --concurrency, --per-slot and --rounds positive integers; --tokens an integer ≥ 2; --max-cell positive seconds')
  }

  const procs: Proc[] = []
  const strays: number[] = []
  const dir = mkdtempSync(join(tmpdir(), 'swy-bench-streaming-'))
  chmodSync(dir, 0o755) // nginx workers run as nobody when the master is root
  const stopAll = async (): Promise<void> => {
    await Promise.all(procs.splice(0).map(p => p.stop()))
    for (const pid of strays.splice(0)) if (alive(pid)) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
  }
  const onExit = (): void => {
    // Last resort (an exception escaped or exit() was called): nothing may outlive the run.
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
    for (const pid of strays) if (alive(pid)) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
    rmSync(dir, { recursive: true, force: true })
  }
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`\n${sig}: stopping everything\n`)
    void stopAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
  }
  process.on('exit', onExit)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  const notes: string[] = []
  const cells: Cell[] = []
  const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url))
  try {
    let nginx: string | null = null
    if (names.includes('nginx')) {
      nginx = ensureCommand('nginx', 'nginx', ['-v'], !values['no-install'])
      if (nginx === null) {
        process.stderr.write('nginx: skipped (not installed)\n')
        notes.push('nginx: skipped (not installed; the benchmark installs Debian\'s nginx when run as root)')
        names = names.filter(n => n !== 'nginx')
      }
    }
    // Portkey is a peer we do not control: when it is missing or misbehaves, the run goes on without it.
    const skipPortkey = (why: string): void => {
      process.stderr.write(`portkey: skipped (${why})\n`)
      notes.push(`Portkey: skipped (${why})`)
      names = names.filter(n => n !== 'portkey')
    }
    if (names.includes('portkey')) {
      const pk = findPortkey()
      if ('error' in pk) skipPortkey(pk.error)
      else notes.push(`Portkey: @portkey-ai/gateway ${pk.version} on @hono/node-server ${pk.nodeServer}, --headless, x-portkey-config loadbalance over both upstreams (weighted random)`)
    }

    const cellsPerPacing = rounds * concs.length * names.length
    const total = pacings.length * cellsPerPacing
    const estS = pacings.reduce((a, p) => a + cellsPerPacing * Math.min(maxCellS, perSlot * tokens * p / 1000 + 1), 0)
    process.stderr.write(`streaming: ${names.length} targets x ${pacings.length} pacings x ${concs.length} concurrencies x ${rounds} rounds, ${perSlot} x ${tokens}-token streams per slot: at least ${Math.ceil(estS / 60)} min\n`)
    let k = 0
    for (const pacingMs of pacings) {
      // Fresh upstreams and proxies for each pacing (the pacing is the upstreams' setting).
      const sub = join(dir, `p${pacingMs}`)
      mkdirSync(sub)
      chmodSync(sub, 0o755)
      const upPorts = [await freePort(), await freePort()]
      for (const p of upPorts) procs.push(start(process.execPath, [here('./lib/fast-upstream.js'), String(p), MODEL, String(pacingMs)]))
      await Promise.all(upPorts.map(p => waitForPort(p)))
      const upUrls = upPorts.map(p => `http://127.0.0.1:${p}`)
      const started = await startTargets(names, upUrls[0]!, { dir: sub, upstreams: upUrls, model: MODEL, nginx, start, strays }, skipPortkey)
      procs.push(...started.procs)
      const targets: Target[] = started.targets
      process.stderr.write(`pacing ${pacingMs} ms: checking answers of ${targets.map(t => t.name).join(', ')} ...\n`)
      for (const t of [...targets]) {
        try {
          await verify(t)
        } catch (err) {
          if (t.name !== 'portkey') throw err
          skipPortkey(`wrong answers: ${(err as Error).message.slice(0, 300)}`)
          targets.splice(targets.indexOf(t), 1)
          await t.proc?.stop()
        }
      }

      for (let round = 0; round < rounds; round++) {
        for (const conc of concs) {
          for (let j = 0; j < targets.length; j++) {
            const t = targets[(j + round) % targets.length]!
            k++
            process.stderr.write(`[${k}/${total}] pacing ${pacingMs} ms, round ${round + 1}, ${t.name}, c=${conc}\n`)
            if (t.proc !== null && (t.proc.child.exitCode !== null || t.proc.child.signalCode !== null)) throw new Error(`${t.name} exited (${t.proc.child.exitCode ?? t.proc.child.signalCode})`)
            if (round === 0) {
              const wu = await load(t, conc, conc, tokens, maxCellS, false)
              if (wu.summary.requests.failed > 0) process.stderr.write(`  warm-up: ${wu.summary.requests.failed} failed: ${wu.summary.errors.examples.join('; ')}\n`)
            }
            const up0 = await upstreamChunks(upUrls)
            const cpu0 = cpuOf(t.pids)
            const t0 = performance.now()
            const r = await load(t, conc, conc * perSlot, tokens, maxCellS, true)
            const wallMs = performance.now() - t0
            const cpu = cpuOf(t.pids) - cpu0
            const up = await upstreamChunks(upUrls) - up0
            const s = r.summary
            let got = 0
            for (const rec of r.records) got += rec.contentChunks
            const cell: Cell = {
              round,
              pacingMs,
              target: t.name,
              conc,
              requests: s.requests.total,
              failed: s.requests.failed,
              tokens: got,
              upstreamChunks: up,
              wallMs,
              tokPerS: got / (wallMs / 1000),
              ttftP50: s.latency.ttftMs?.p50 ?? NaN,
              ttftP99: s.latency.ttftMs?.p99 ?? NaN,
              itlP50: s.latency.itlMs?.p50 ?? NaN,
              itlP99: s.latency.itlMs?.p99 ?? NaN,
              cpuUsPerToken: t.pids.length === 0 || got === 0 ? NaN : cpu * 1000 / got,
              cpuPct: t.pids.length === 0 ? NaN : cpu / wallMs * 100,
              clientLoopP99: r.generator.eventLoopDelayMs.p99,
              errors: s.errors.examples
            }
            cells.push(cell)
            process.stderr.write(`  ${Math.round(cell.tokPerS)} tokens/s, TTFT p50 ${fmt(cell.ttftP50)} ms, ITL p50 ${fmt(cell.itlP50)} ms, CPU ${Number.isNaN(cell.cpuUsPerToken) ? '-' : fmt(cell.cpuUsPerToken) + ' µs/token'}${cell.failed > 0 ? `, ${cell.failed} FAILED (${cell.errors.join('; ')})` : ''}\n`)
          }
        }
      }
      await stopAll()
    }

    // Report: printed, and kept for docs/BENCHMARKS.md.
    let report = ''
    const say = (text: string): void => { console.log(text); report += text + '\n' }
    const keep = (text: string): void => { report += text + '\n' } // table() prints already
    say(`\nstreaming — ${await machine()}`)
    say(`command: npm run bench -- streaming${argv.length > 0 ? ' ' + argv.join(' ') : ''}`)
    say(`load generator (runLoad), chat, stream, ${tokens} tokens per stream, ISL ${ISL}, ${perSlot} streams per slot (cap ${maxCellS} s), median of ${rounds} round${rounds > 1 ? 's' : ''}; two paced upstreams (own processes), one chunk per stream per step`)
    say('CPU = proxy process utime+stime over the run (nginx: master + worker) ÷ tokens the client received; TTFT/ITL as the client saw them; CPU % of one core over the run\n')
    for (const n of notes) say(n)
    const pick = (t: TargetName, p: number, c: number): Cell[] => cells.filter(x => x.target === t && x.pacingMs === p && x.conc === c)
    const med = (cs: Cell[], f: (c: Cell) => number): number => {
      const xs = cs.map(f).filter(Number.isFinite)
      return xs.length === 0 ? NaN : median(xs)
    }
    const present = TARGETS.filter(n => cells.some(c => c.target === n))
    const rows: Array<Array<string | number>> = []
    for (const p of pacings) {
      for (const c of concs) {
        const direct = med(pick('direct', p, c), x => x.ttftP50)
        for (const n of present) {
          const cs = pick(n, p, c)
          if (cs.length === 0) continue
          const ttft = med(cs, x => x.ttftP50)
          rows.push([LABELS[n], String(p), String(c), Math.round(med(cs, x => x.tokPerS)), ttft, med(cs, x => x.ttftP99), n === 'direct' ? NaN : ttft - direct, med(cs, x => x.itlP50), med(cs, x => x.itlP99), med(cs, x => x.cpuUsPerToken), med(cs, x => x.cpuPct), String(cs.reduce((a, x) => a + x.failed, 0))])
        }
      }
    }
    keep(table(['target', 'pacing ms', 'conc', 'tokens/s', 'TTFT p50 ms', 'TTFT p99 ms', 'TTFT p50 − direct', 'ITL p50 ms', 'ITL p99 ms', 'proxy CPU µs/token', 'proxy CPU %', 'failed'], rows))

    // Paired ratios: within each round (cells of one round are seconds apart), then the median.
    const ratio = (a: TargetName, b: TargetName, p: number, c: number): string => {
      const rs: number[] = []
      for (let round = 0; round < rounds; round++) {
        const x = cells.find(y => y.round === round && y.target === a && y.pacingMs === p && y.conc === c)
        const y = cells.find(z => z.round === round && z.target === b && z.pacingMs === p && z.conc === c)
        if (x !== undefined && y !== undefined && Number.isFinite(x.cpuUsPerToken / y.cpuUsPerToken)) rs.push(x.cpuUsPerToken / y.cpuUsPerToken)
      }
      return rs.length === 0 ? '-' : `${fmt(median(rs))}x${rs.length > 1 ? ` (${fmt(Math.min(...rs))}-${fmt(Math.max(...rs))})` : ''}`
    }
    const gws = present.filter(n => n === 'gateway' || n === 'gateway-warn')
    if (gws.length > 0) {
      say(`\nswitchyard CPU per token ÷ each peer's${rounds > 1 ? ' (median of per-round ratios, range in brackets)' : ''}`)
      const lines: Array<Array<string | number>> = []
      for (const gw of gws) for (const p of pacings) for (const c of concs) lines.push([LABELS[gw], String(p), String(c), med(pick(gw, p, c), x => x.cpuUsPerToken), ratio(gw, 'nginx', p, c), ratio(gw, 'bare', p, c), ratio(gw, 'portkey', p, c)])
      keep(table(['gateway', 'pacing ms', 'conc', 'CPU µs/token', '÷ nginx', '÷ bare', '÷ Portkey'], lines))
    }

    const warnings: string[] = []
    for (const c of cells) {
      if (c.failed > 0) warnings.push(`${c.target} pacing ${c.pacingMs} c=${c.conc} round ${c.round + 1}: ${c.failed} failed: ${c.errors.join('; ')}`)
      if (c.failed === 0 && c.upstreamChunks !== c.tokens) warnings.push(`${c.target} pacing ${c.pacingMs} c=${c.conc} round ${c.round + 1}: the upstreams sent ${c.upstreamChunks} chunks, the client got ${c.tokens}`)
      if (c.clientLoopP99 > 4 * c.pacingMs) warnings.push(`${c.target} pacing ${c.pacingMs} c=${c.conc} round ${c.round + 1}: the load generator's event loop lagged ${fmt(c.clientLoopP99)} ms at p99: its TTFT/ITL are inflated`)
    }
    const offered = concs.map(c => pacings.map(p => `c=${c} at ${p} ms: ${Math.round(c * 1000 / p)} tokens/s`).join(', ')).join('; ')
    say(`\noffered per stream set: ${offered}; a tokens/s figure well below it means the machine, not the pacing, set the pace`)
    if (warnings.length > 0) say('\n' + warnings.map(w => `warning: ${w}`).join('\n'))
    if (values.json !== undefined) {
      writeFileSync(values.json, JSON.stringify({ machine: await machine(), argv, pacings, concs, tokens, perSlot, rounds, cells }, null, 2) + '\n')
      say(`\nraw results: ${values.json}`)
    }
    if (values['no-record'] !== true) recordFigures('streaming', `## streaming\n\n\`\`\`\n${report.trim()}\n\`\`\``)
  } finally {
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('exit', onExit)
  }
}
