/**
 * `distributed` (issue 8): one fleet of 4 mock engines (`mocker --nats`, timing model on, KV
 * caches contended) behind 1 gateway, or 2 gateways sharing it through NATS (discovery, KV
 * events, replica sync on or off), on routing-quality's shared-prefix workload (policy kv).
 *
 * The same request stream reaches every setup: the load generator sends it to a bare round-robin
 * Node proxy (bench/lib/bare-proxy.ts) in front of the gateway(s), one process each, so 1 and 2
 * gateways pay the same extra hop. Every process is fresh per setup (nats-server with a temp
 * store, the mocker, the gateways, the splitter). Goal: 2 gateways with sync within 5% of one
 * gateway in cached-token ratio and TTFT p50.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runLoad, type LoadResult } from '../src/bench/index.js'
import { recordFigures } from './lib/docs.js'
import { waitForWorkers } from './lib/fleet.js'
import { freePort, start, waitForPort, type Proc } from './lib/proc.js'
import { machine, median, table } from './lib/table.js'

const CLI = new URL('../src/cli/main.js', import.meta.url).pathname
const SPLITTER = new URL('./lib/bare-proxy.js', import.meta.url).pathname
const GOAL = 0.05

interface Setup { name: string, gateways: number, sync: boolean }
const SETUPS: Setup[] = [
  { name: '1 gateway', gateways: 1, sync: true },
  { name: '2 gateways, replica sync on', gateways: 2, sync: true },
  { name: '2 gateways, replica sync off', gateways: 2, sync: false }
]

async function startNats (): Promise<{ url: string, stop: () => Promise<void> }> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'swy-nats-bench-'))
  const p = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' })
  await waitForPort(port)
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: async () => {
      const gone = new Promise(resolve => p.once('exit', resolve))
      p.kill('SIGTERM')
      await gone
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

async function run (s: Setup, rate: number, durationS: number, step: string): Promise<LoadResult> {
  const nats = await startNats()
  const procs: Proc[] = []
  try {
    const mocker = start(process.execPath, [CLI, 'mocker', '--num-workers', '4', '--port', '0', '--speedup-ratio', '1', '--num-gpu-blocks', '4096', '--nats', nats.url])
    procs.push(mocker)
    const urls: string[] = []
    for (let i = 0; i < s.gateways; i++) {
      const port = await freePort()
      procs.push(start(process.execPath, [CLI, 'serve', '--port', String(port), '--nats', nats.url, '--policy', 'kv', '--log-level', 'warn', '--replica-sync', String(s.sync)]))
      await waitForPort(port)
      await waitForWorkers(port, 4, 20_000)
      urls.push(`http://127.0.0.1:${port}`)
    }
    const splitPort = await freePort()
    procs.push(start(process.execPath, [SPLITTER, String(splitPort), ...urls]))
    await waitForPort(splitPort)
    process.stderr.write(`${step} ${s.name}: shared-prefix at ${rate} req/s for ${durationS} s\n`)
    return await runLoad({
      url: `http://127.0.0.1:${splitPort}`, model: 'mock-llm', endpoint: 'completions', stream: true, ignoreEos: true, seed: 7,
      workload: 'shared-prefix', numPrefixes: 128, promptsPerPrefix: 8, prefixRatio: 0.75, isl: { mean: 4096, stddev: 512 }, osl: { mean: 96, stddev: 32 },
      requestRate: rate, durationS, drainTimeoutS: 45, progress: true, scrapeMetrics: false
    })
  } finally {
    for (const p of procs.reverse()) await p.stop()
    await nats.stop()
  }
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { rate: { type: 'string', default: '30' }, duration: { type: 'string', default: '20' }, rounds: { type: 'string', default: '3' }, 'no-record': { type: 'boolean', default: false } } })
  const rate = Number(values.rate)
  const durationS = Number(values.duration)
  const rounds = Number(values.rounds)
  if (!(rate > 0) || !(durationS > 0) || !(Number.isInteger(rounds) && rounds > 0)) throw new Error('--rate and --duration must be > 0, --rounds a positive integer')
  // Rounds, with the setups' order rotated each round: one setup's run on a shared 2-core machine
  // moves its TTFT by tens of percent; the medians of per-round ratios are what is compared.
  const results: Array<Array<{ s: Setup, r: LoadResult }>> = SETUPS.map(() => [])
  let step = 0
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < SETUPS.length; k++) {
      const i = (k + round) % SETUPS.length
      const s = SETUPS[i]!
      const r = await run(s, rate, durationS, `[${++step}/${SETUPS.length * rounds}]`)
      results[i]!.push({ s, r })
      process.stderr.write(`  ${s.name}, round ${round + 1}: TTFT p50 ${(r.summary.latency.ttftMs?.p50 ?? NaN).toFixed(1)} ms, cached ${((r.summary.tokens.cachedRatio ?? NaN) * 100).toFixed(1)}%\n`)
    }
  }
  const ttft = (r: LoadResult): number => r.summary.latency.ttftMs?.p50 ?? NaN
  const cached = (r: LoadResult): number => r.summary.tokens.cachedRatio ?? NaN
  const med = (i: number, f: (r: LoadResult) => number): number => median(results[i]!.map(x => f(x.r)))
  /** Median over rounds of setup i's figure ÷ setup 0's in the same round. */
  const vs = (i: number, f: (r: LoadResult) => number): number => median(results[i]!.map((x, round) => f(x.r) / f(results[0]![round]!.r)))
  const rows = SETUPS.map((s, i) => [s.name, med(i, r => r.summary.requestThroughput), med(i, r => r.summary.outputTokenThroughput), med(i, ttft), med(i, r => r.summary.latency.ttftMs?.p99 ?? NaN), med(i, cached) * 100, vs(i, ttft), vs(i, cached), String(results[i]!.reduce((a, x) => a + x.r.summary.requests.failed, 0))])
  const header = `distributed — ${await machine()}\ncommand: npm run bench -- distributed ${argv.join(' ')}\n4 mock engines (one mocker process, --nats, speed-up 1, 4096 KV blocks of 64 tokens each) behind 1 or 2 gateways (policy kv, --nats, own processes), reached through one bare round-robin Node proxy; shared-prefix (128 prefixes, ISL ~4096, 75% shared, OSL ~96), Poisson ${rate} req/s for ${durationS} s; fresh processes and nats-server per setup and round; medians of ${rounds} round(s), ratios are medians of per-round ratios`
  const t = table(['setup', 'req/s', 'output tok/s', 'TTFT p50 ms', 'TTFT p99 ms', 'cached %', 'TTFT p50 vs 1', 'cached vs 1', 'failed'], rows)
  const dTtft = vs(1, ttft) - 1
  const dCached = 1 - vs(1, cached)
  const within = Math.abs(dTtft) <= GOAL && Math.abs(dCached) <= GOAL
  const verdict = `\n2 gateways with sync vs 1: TTFT p50 ${dTtft >= 0 ? '+' : ''}${(dTtft * 100).toFixed(1)}%, cached ratio ${dCached >= 0 ? '-' : '+'}${Math.abs(dCached * 100).toFixed(1)}% (goal: within ${GOAL * 100}%): ${within ? 'PASS' : dTtft <= GOAL && dCached <= GOAL ? 'PASS (better than one gateway by more than the band)' : 'MISS'}`
  console.log('\n' + header + '\n\n' + t + verdict)
  if (!values['no-record']) recordFigures('distributed', `## distributed\n\n${header.replace('\n', '\n\n')}\n\n${t}\n${verdict}\n`)
}
