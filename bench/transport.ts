/**
 * `transport` (issue 7): the same mock fleet served to the gateway over HTTP/SSE and over the
 * native transport (swy://), paced streams, side by side in one run. Per cell: one mocker process
 * (2 engines, HTTP and native ports both open), one gateway process per transport in front of it,
 * the load generator (src/bench runLoad) in this process: closed loop of `--concurrency` streaming
 * completions of `--tokens` tokens each (ignore_eos).
 *
 * Pacing: the engines' timing model paces the tokens. A decode pass of the mock costs ~5.7 ms of
 * modeled GPU time at low KV usage (DESIGN 5.4), so a speed-up of 5.7 gives ~1 ms between tokens
 * and 0.57 gives ~10 ms. The 'inter-token' column shows the pacing each cell really had.
 *
 * CPU per token: the gateway process's utime + stime (/proc) over the measured run ÷ the output
 * tokens the client received. Goal: native at least 1.5x lower than HTTP.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runLoad } from '../src/bench/index.js'
import { recordFigures } from './lib/docs.js'
import { freePortRange, waitForWorkers } from './lib/fleet.js'
import { cpuMs, freePort, start, waitForPort, type Proc } from './lib/proc.js'
import { machine, median, table } from './lib/table.js'

const CLI = new URL('../src/cli/main.js', import.meta.url).pathname
const DECODE_PASS_MS = 5.74
const GOAL_RATIO = 1.5

interface Cell { transport: 'http' | 'native', pacingMs: number, concurrency: number, cpuUsPerToken: number, tokensPerS: number, ttftP50: number, ttftP99: number, itlP50: number, itlP99: number, failed: number }

async function cell (transport: 'http' | 'native', pacingMs: number, concurrency: number, engines: number, tokens: number, perSlot: number, step: string): Promise<Cell> {
  const httpBase = await freePortRange(engines)
  const nativeBase = await freePortRange(engines)
  const speedup = DECODE_PASS_MS / pacingMs
  const mocker = start(process.execPath, [CLI, 'mocker', '--num-workers', String(engines), '--port', String(httpBase), '--native-port', String(nativeBase), '--speedup-ratio', String(speedup)])
  let gateway: Proc | null = null
  try {
    for (let i = 0; i < engines; i++) { await waitForPort(httpBase + i); await waitForPort(nativeBase + i) }
    const dir = mkdtempSync(join(tmpdir(), 'swy-transport-'))
    const file = join(dir, 'switchyard.yaml')
    writeFileSync(file, 'workers:\n' + Array.from({ length: engines }, (_, i) =>
      `  - { url: "http://127.0.0.1:${httpBase + i}", model: mock-llm${transport === 'native' ? `, native_url: "swy://127.0.0.1:${nativeBase + i}"` : ''} }`).join('\n') + '\n')
    const gwPort = await freePort()
    gateway = start(process.execPath, [CLI, 'serve', '--port', String(gwPort), '--config', file, '--log-level', 'warn', '--policy', 'least_load'])
    await waitForPort(gwPort)
    await waitForWorkers(gwPort, engines)
    const load = { url: `http://127.0.0.1:${gwPort}`, model: 'mock-llm', endpoint: 'completions' as const, stream: true, concurrency, isl: 64, osl: tokens, ignoreEos: true }
    process.stderr.write(`${step} ${transport}, ${pacingMs} ms pacing, c=${concurrency}: warm-up...\n`)
    await runLoad({ ...load, numRequests: concurrency, progress: false, scrapeMetrics: false })
    const g0 = cpuMs(gateway.child.pid!)
    const t0 = performance.now()
    const res = await runLoad({ ...load, numRequests: concurrency * perSlot, progress: true, scrapeMetrics: false })
    const wall = (performance.now() - t0) / 1000
    const cpu = cpuMs(gateway.child.pid!) - g0
    const s = res.summary
    const outTokens = s.outputTokenThroughput * wall
    return { transport, pacingMs, concurrency, cpuUsPerToken: cpu * 1000 / Math.max(1, outTokens), tokensPerS: s.outputTokenThroughput, ttftP50: s.latency.ttftMs?.p50 ?? NaN, ttftP99: s.latency.ttftMs?.p99 ?? NaN, itlP50: s.latency.itlMs?.p50 ?? NaN, itlP99: s.latency.itlMs?.p99 ?? NaN, failed: s.requests.failed }
  } finally {
    await gateway?.stop()
    await mocker.stop()
  }
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pacing: { type: 'string', default: '1,10' },
      concurrency: { type: 'string', default: '256,1024' },
      engines: { type: 'string', default: '2' },
      tokens: { type: 'string', default: '128' },
      'per-slot': { type: 'string', default: '2' },
      rounds: { type: 'string', default: '1' },
      'no-record': { type: 'boolean', default: false }
    }
  })
  const pacings = values.pacing.split(',').map(Number)
  const concs = values.concurrency.split(',').map(Number)
  const engines = Number(values.engines)
  const tokens = Number(values.tokens)
  const perSlot = Number(values['per-slot'])
  const rounds = Number(values.rounds)
  for (const v of [...pacings, ...concs, engines, tokens, perSlot, rounds]) if (!(v > 0)) throw new Error(`every numeric flag must be > 0 (got ${v})`)
  const results: Cell[] = []
  const total = pacings.length * concs.length * 2 * rounds
  let n = 0
  for (let r = 0; r < rounds; r++) {
    for (const p of pacings) {
      for (const c of concs) {
        // Alternate which transport goes first, so drift on a shared machine hits both alike.
        const order: Array<'http' | 'native'> = r % 2 === 0 ? ['http', 'native'] : ['native', 'http']
        for (const t of order) results.push(await cell(t, p, c, engines, tokens, perSlot, `[${++n}/${total}]`))
      }
    }
  }
  const rows: Array<Array<string | number>> = []
  const ratios: Array<Array<string | number>> = []
  for (const p of pacings) {
    for (const c of concs) {
      const of = (t: 'http' | 'native'): Cell[] => results.filter(x => x.transport === t && x.pacingMs === p && x.concurrency === c)
      for (const t of ['http', 'native'] as const) {
        const cs = of(t)
        const m = (f: (x: Cell) => number): number => median(cs.map(f))
        rows.push([t, p, c, m(x => x.cpuUsPerToken), m(x => x.tokensPerS), m(x => x.ttftP50), m(x => x.ttftP99), m(x => x.itlP50), m(x => x.itlP99), String(cs.reduce((a, x) => a + x.failed, 0))])
      }
      const ratio = median(of('http').map(x => x.cpuUsPerToken)) / median(of('native').map(x => x.cpuUsPerToken))
      ratios.push([p, c, ratio, ratio >= GOAL_RATIO ? 'PASS' : 'MISS'])
    }
  }
  const header = `transport — ${await machine()}\ncommand: npm run bench -- transport ${argv.join(' ')}\n${engines} mock engines in one mocker process (HTTP and native ports), one gateway process (least_load, log level warn) per cell over HTTP/SSE or the native transport; completions, stream, ISL 64, OSL ${tokens} exact (ignore_eos), closed loop, ${perSlot} requests per concurrency slot after a warm-up of one; pacing from the engines' timing model (speed-up ${DECODE_PASS_MS} / pacing); gateway CPU = utime+stime over the run ÷ tokens received; medians of ${rounds} round(s)`
  const t = table(['transport', 'pacing ms', 'concurrency', 'gateway CPU µs/token', 'output tok/s', 'TTFT p50 ms', 'TTFT p99 ms', 'ITL p50 ms', 'ITL p99 ms', 'errors'], rows)
  const g = table(['pacing ms', 'concurrency', 'HTTP ÷ native CPU per token', `goal ≥ ${GOAL_RATIO}x`], ratios)
  console.log('\n' + header + '\n\n' + t + '\n' + g)
  if (!values['no-record']) recordFigures('transport', `## transport\n\n${header.replace('\n', '\n\n')}\n\n${t}\n${g}\n`)
}
