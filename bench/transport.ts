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
 * Warm-up: `--warmup` requests per slot (3) before the measured run. A closed loop of exact-length
 * streams starts them in bursts of `concurrency`, so after one round the request path has run only
 * `concurrency` times and is still in V8's baseline tier, and the token path was compiled without
 * feedback for a stream's first and last item (it deopts and recompiles when the next burst
 * comes): with one round, the start of the measured run cost ~700 µs of gateway CPU per request
 * and a warm-up of three cut the native cell's user CPU per token ~10%. A gateway serves for days;
 * the figure wanted is its steady state. nginx gets the same warm-up.
 *
 * CPU per token: the gateway process's utime + stime (/proc) over the measured run ÷ the output
 * tokens the client received, split into user and system time. Goals: native at least 1.5x lower
 * than HTTP, and at most nginx's, measured here in the same run in front of the same engines'
 * HTTP ports (one worker, no buffering: bench/lib/peers.ts) — the `streaming` scenario's nginx
 * fronts synthetic upstreams, whose per-token cost differs from the mock engines'. A `Node write
 * floor` row per cell (bench/lib/write-floor.ts): what a Node process pays per token just to write
 * one prebuilt chunk per stream per pacing step, before reading or formatting anything.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runLoad } from '../src/bench/index.js'
import { buildBaseline } from './lib/baseline.js'
import { recordFigures } from './lib/docs.js'
import { freePortRange, waitForWorkers } from './lib/fleet.js'
import { alive, ensureCommand, startPeer } from './lib/peers.js'
import { cpuSplitMs, freePort, start, waitForPort, type Proc } from './lib/proc.js'
import { machine, median, table } from './lib/table.js'

const CLI = new URL('../src/cli/main.js', import.meta.url).pathname
const FLOOR = new URL('./lib/write-floor.js', import.meta.url).pathname

/** Node's floor per token at this pacing and stream count (bench/lib/write-floor.ts): µs of user and system CPU per write. */
function writeFloor (streams: number, pacingMs: number): { user: number, sys: number } {
  const r = spawnSync(process.execPath, [FLOOR, String(streams), String(pacingMs), '6'], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`write-floor failed: ${r.stderr}`)
  return JSON.parse(r.stdout) as { user: number, sys: number }
}
const DECODE_PASS_MS = 5.74
const GOAL_RATIO = 1.5

/** 'native-base' / 'http-base': that transport through the gateway built from `--baseline REF`. */
type Kind = 'http' | 'native' | 'nginx' | 'native-base' | 'http-base'
const BASE_OF = { native: 'native-base', http: 'http-base' } as const

/** utime and stime of the processes, ms. */
function cpuSplit (pids: number[]): { user: number, sys: number } {
  let user = 0
  let sys = 0
  for (const pid of pids) {
    const c = cpuSplitMs(pid)
    user += c.user
    sys += c.sys
  }
  return { user, sys }
}

interface Cell { transport: Kind, pacingMs: number, concurrency: number, cpuUsPerToken: number, userUsPerToken: number, sysUsPerToken: number, tokensPerS: number, ttftP50: number, ttftP99: number, itlP50: number, itlP99: number, failed: number }

async function cell (transport: Kind, pacingMs: number, concurrency: number, engines: number, tokens: number, perSlot: number, warmup: number, step: string, nginx: string | null, baselineCli: string | null): Promise<Cell> {
  const httpBase = await freePortRange(engines)
  const nativeBase = await freePortRange(engines)
  const speedup = DECODE_PASS_MS / pacingMs
  const mocker = start(process.execPath, [CLI, 'mocker', '--num-workers', String(engines), '--port', String(httpBase), '--native-port', String(nativeBase), '--speedup-ratio', String(speedup)])
  let proxy: Proc | null = null
  const strays: number[] = []
  try {
    for (let i = 0; i < engines; i++) { await waitForPort(httpBase + i); await waitForPort(nativeBase + i) }
    const dir = mkdtempSync(join(tmpdir(), 'swy-transport-'))
    let url: string
    let pids: number[]
    if (transport === 'nginx') {
      chmodSync(dir, 0o755) // nginx workers run as nobody when the master is root
      const peer = await startPeer('nginx', { dir, upstreams: Array.from({ length: engines }, (_, i) => `http://127.0.0.1:${httpBase + i}`), model: 'mock-llm', nginx, start, strays })
      proxy = peer.proc
      url = peer.url
      pids = peer.pids
    } else {
      const file = join(dir, 'switchyard.yaml')
      writeFileSync(file, 'workers:\n' + Array.from({ length: engines }, (_, i) =>
        `  - { url: "http://127.0.0.1:${httpBase + i}", model: mock-llm${transport === 'native' || transport === 'native-base' ? `, native_url: "swy://127.0.0.1:${nativeBase + i}"` : ''} }`).join('\n') + '\n')
      const gwPort = await freePort()
      proxy = start(process.execPath, [transport === 'native-base' || transport === 'http-base' ? baselineCli! : CLI, 'serve', '--port', String(gwPort), '--config', file, '--log-level', 'warn', '--policy', 'least_load'])
      await waitForPort(gwPort)
      await waitForWorkers(gwPort, engines)
      url = `http://127.0.0.1:${gwPort}`
      pids = [proxy.child.pid!]
    }
    const load = { url, model: 'mock-llm', endpoint: 'completions' as const, stream: true, concurrency, isl: 64, osl: tokens, ignoreEos: true }
    process.stderr.write(`${step} ${transport}, ${pacingMs} ms pacing, c=${concurrency}: warm-up...\n`)
    await runLoad({ ...load, numRequests: concurrency * warmup, progress: false, scrapeMetrics: false })
    const c0 = cpuSplit(pids)
    const t0 = performance.now()
    const res = await runLoad({ ...load, numRequests: concurrency * perSlot, progress: true, scrapeMetrics: false })
    const wall = (performance.now() - t0) / 1000
    const c1 = cpuSplit(pids)
    const s = res.summary
    const outTokens = Math.max(1, s.outputTokenThroughput * wall)
    const user = (c1.user - c0.user) * 1000 / outTokens
    const sys = (c1.sys - c0.sys) * 1000 / outTokens
    return { transport, pacingMs, concurrency, cpuUsPerToken: user + sys, userUsPerToken: user, sysUsPerToken: sys, tokensPerS: s.outputTokenThroughput, ttftP50: s.latency.ttftMs?.p50 ?? NaN, ttftP99: s.latency.ttftMs?.p99 ?? NaN, itlP50: s.latency.itlMs?.p50 ?? NaN, itlP99: s.latency.itlMs?.p99 ?? NaN, failed: s.requests.failed }
  } finally {
    await proxy?.stop()
    for (const pid of strays) if (alive(pid)) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
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
      warmup: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '1' },
      'no-record': { type: 'boolean', default: false },
      'no-install': { type: 'boolean', default: false },
      'no-nginx': { type: 'boolean', default: false },
      baseline: { type: 'string' },
      transports: { type: 'string', default: 'http,native,nginx' }
    }
  })
  const pacings = values.pacing.split(',').map(Number)
  const concs = values.concurrency.split(',').map(Number)
  const engines = Number(values.engines)
  const tokens = Number(values.tokens)
  const perSlot = Number(values['per-slot'])
  const warmup = Number(values.warmup)
  const rounds = Number(values.rounds)
  for (const v of [...pacings, ...concs, engines, tokens, perSlot, warmup, rounds]) if (!(v > 0)) throw new Error(`every numeric flag must be > 0 (got ${v})`)
  let nginx: string | null = null
  if (!values['no-nginx'] && values.transports.split(',').includes('nginx')) {
    nginx = ensureCommand('nginx', 'nginx', ['-v'], !values['no-install'])
    if (nginx === null) process.stderr.write('nginx is not installed and could not be installed: its rows are skipped\n')
  }
  const wanted = values.transports.split(',')
  for (const t of wanted) if (t !== 'http' && t !== 'native' && t !== 'nginx') throw new Error(`--transports: unknown transport '${t}' (http, native, nginx)`)
  const kinds = (['http', 'native', 'nginx'] as Kind[]).filter(t => wanted.includes(t) && (t !== 'nginx' || nginx !== null))
  let baselineCli: string | null = null
  let baselineLabel = ''
  if (values.baseline !== undefined) {
    process.stderr.write(`building the baseline ${values.baseline}...\n`)
    const b = buildBaseline(values.baseline, mkdtempSync(join(tmpdir(), 'swy-transport-baseline-')))
    baselineCli = b.cli
    baselineLabel = b.commit
    for (const t of ['http', 'native'] as const) if (kinds.includes(t)) kinds.push(BASE_OF[t])
  }
  const results: Cell[] = []
  const floors = new Map<string, Array<{ user: number, sys: number }>>()
  const total = pacings.length * concs.length * kinds.length * rounds
  let n = 0
  for (let r = 0; r < rounds; r++) {
    for (const p of pacings) {
      for (const c of concs) {
        // Alternate which transport goes first, so drift on a shared machine hits both alike.
        const order = r % 2 === 0 ? kinds : [...kinds].reverse()
        for (const t of order) results.push(await cell(t, p, c, engines, tokens, perSlot, warmup, `[${++n}/${total}]`, nginx, baselineCli))
        process.stderr.write(`Node write floor, ${p} ms pacing, ${c} sockets...\n`)
        const key = `${p}/${c}`
        floors.set(key, [...(floors.get(key) ?? []), writeFloor(c, p)])
      }
    }
  }
  const rows: Array<Array<string | number>> = []
  const ratios: Array<Array<string | number>> = []
  const vsNginx: Array<Array<string | number>> = []
  const vsBaseline: Array<Array<string | number>> = []
  for (const p of pacings) {
    for (const c of concs) {
      const of = (t: Kind): Cell[] => results.filter(x => x.transport === t && x.pacingMs === p && x.concurrency === c)
      for (const t of kinds) {
        const cs = of(t)
        const m = (f: (x: Cell) => number): number => median(cs.map(f))
        rows.push([t === 'nginx' ? 'nginx (HTTP)' : t === 'native-base' ? `native @ ${baselineLabel}` : t === 'http-base' ? `http @ ${baselineLabel}` : t, p, c, m(x => x.cpuUsPerToken), m(x => x.userUsPerToken), m(x => x.sysUsPerToken), m(x => x.tokensPerS), m(x => x.ttftP50), m(x => x.ttftP99), m(x => x.itlP50), m(x => x.itlP99), String(cs.reduce((a, x) => a + x.failed, 0))])
      }
      const fl = floors.get(`${p}/${c}`) ?? []
      const flUser = median(fl.map(f => f.user))
      const flSys = median(fl.map(f => f.sys))
      rows.push(['Node write floor', p, c, flUser + flSys, flUser, flSys, '-', '-', '-', '-', '-', '-'])
      const native = median(of('native').map(x => x.cpuUsPerToken))
      if (kinds.includes('http') && kinds.includes('native')) {
        const ratio = median(of('http').map(x => x.cpuUsPerToken)) / native
        ratios.push([p, c, ratio, ratio >= GOAL_RATIO ? 'PASS' : 'MISS'])
      }
      if (baselineCli !== null) {
        const m = (k: Kind, f: (x: Cell) => number): number => median(of(k).map(f))
        for (const t of ['http', 'native'] as const) {
          if (!kinds.includes(t)) continue
          const b = BASE_OF[t]
          vsBaseline.push([t, p, c, m(t, x => x.cpuUsPerToken) / m(b, x => x.cpuUsPerToken), m(t, x => x.userUsPerToken) / m(b, x => x.userUsPerToken), m(t, x => x.sysUsPerToken) / m(b, x => x.sysUsPerToken)])
        }
      }
      if (kinds.includes('nginx') && kinds.includes('native')) {
        const ng = median(of('nginx').map(x => x.cpuUsPerToken))
        const r2 = native / ng
        vsNginx.push([p, c, r2, r2 <= 1 ? 'PASS' : 'MISS', (flUser + flSys) / ng])
      }
    }
  }
  const header = `transport — ${await machine()}\ncommand: npm run bench -- transport ${argv.join(' ')}\n${engines} mock engines in one mocker process (HTTP and native ports), one gateway process (least_load, log level warn) per cell over HTTP/SSE or the native transport, and nginx (1 worker, proxy_buffering off) in front of the engines' HTTP ports; completions, stream, ISL 64, OSL ${tokens} exact (ignore_eos), closed loop, ${perSlot} requests per concurrency slot after a warm-up of ${warmup} per slot; pacing from the engines' timing model (speed-up ${DECODE_PASS_MS} / pacing); gateway CPU = utime+stime over the run ÷ tokens received; medians of ${rounds} round(s)${baselineCli === null ? '' : `; @ ${baselineLabel}: the gateway built from ${values.baseline}`}`
  const t = table(['transport', 'pacing ms', 'concurrency', 'proxy CPU µs/token', 'user', 'sys', 'output tok/s', 'TTFT p50 ms', 'TTFT p99 ms', 'ITL p50 ms', 'ITL p99 ms', 'errors'], rows)
  let g = ratios.length > 0 ? table(['pacing ms', 'concurrency', 'HTTP ÷ native CPU per token', `goal ≥ ${GOAL_RATIO}x`], ratios) : ''
  if (vsNginx.length > 0) g += (g === '' ? '' : '\n') + table(['pacing ms', 'concurrency', 'native ÷ nginx CPU per token', 'goal ≤ 1x', 'Node write floor ÷ nginx'], vsNginx)
  if (vsBaseline.length > 0) g += (g === '' ? '' : '\n') + table(['transport', 'pacing ms', 'concurrency', `this build ÷ @ ${baselineLabel}, CPU per token`, 'user', 'sys'], vsBaseline)
  console.log('\n' + header + '\n\n' + t + '\n' + g)
  if (!values['no-record']) recordFigures('transport', `## transport\n\n${header.replace('\n', '\n\n')}\n\n${t}\n${g}\n`)
}
