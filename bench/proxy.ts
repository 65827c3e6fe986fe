/**
 * `proxy`: what the gateway costs on the request path, side by side in one run with
 *   - direct: wrk straight to upstream A only (no proxy; the latency floor for json; for streams
 *     one upstream alone is the bottleneck, so it is no floor there),
 *   - nginx: Debian's nginx, one worker, upstream keepalive, proxy_buffering off (installed with
 *     apt-get when missing and we are root; otherwise skipped, and the run says so),
 *   - raw: the Node socket floor (net sockets on both sides, request and answer bytes copied
 *     through unchanged, framing followed only to find ends; bench/lib/raw-proxy.ts): the least
 *     any Node proxy pays per request, so the table shows how much of nginx's lead is Node's,
 *   - bare: a bare Node proxy (node:http + undici Pool.dispatch per upstream, round robin, bytes
 *     through; bench/lib/bare-proxy.ts),
 *   - gateway: `switchyard serve` with default settings (log level info, stdout to /dev/null),
 *   - gateway-warn: the same with `--log-level warn`,
 *   - portkey: Portkey's gateway (@portkey-ai/gateway, a devDependency; Hono on
 *     @hono/node-server, `--headless`), provider openai at the upstreams' custom hosts, load
 *     balanced by an x-portkey-config header every request carries (bench/lib/peers.ts); when it
 *     is not installed or does not answer correctly it is skipped, and the run says why,
 * all in front of the same two fast OpenAI-protocol upstreams (each its own process).
 *
 * Load: wrk, one thread, POST /v1/chat/completions; modes json (non-streaming, max_tokens 16),
 * json8k (the same with an 8 KiB user message: what reading a real prompt costs), stream16 and
 * stream256 (SSE, 16 / 256 chunks); concurrency 64 and 256. Each cell runs
 * `--duration` seconds (stream256 twice that). Every round each proxy is started afresh and
 * runs all its cells back to back, after `--warmup` seconds of load spread over its cells (at
 * least 1 s each; see the loop for why); `--rounds` rounds, the order of targets rotating every
 * round; the table quotes medians over rounds and the ratios are the median of per-round ratios
 * (cells of one round are a few minutes apart at most, so most of a shared machine's drift
 * cancels).
 *
 * CPU per request: the proxy process's utime + stime (/proc/<pid>/stat; nginx: master and worker
 * summed) over a window inside the wrk run (0.5 s after its start to 0.5 s before its end, so
 * connection set-up and the requests cut off at the end do not count), divided by the work the
 * two upstreams report over the same window (GET /stats): completions for json; for streams,
 * chunks sent ÷ chunks per request (at c=256 a window holds few whole 256-token streams but
 * thousands of chunks). `--json FILE` also keeps wrk's own whole-run figure per cell as a
 * cross-check. Every target's answers are checked (status, body, stream shape, both upstreams
 * used) before anything is measured.
 */
import type { ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { alive, cpuOf, ensureCommand, findPortkey, startPeer, startTargets, upstreamStats, type PeerKind, type Target as PeerTarget, type UpStats } from './lib/peers.js'
import { freePort, start, waitForPort, type Proc } from './lib/proc.js'
import { recordFigures } from './lib/docs.js'
import { fmt, machine, median, table } from './lib/table.js'
import { perfCounts, userInstructions } from './lib/perf.js'
import { buildBaseline } from './lib/baseline.js'
import { hasCommand, runWrk, writePostScript, type WrkResult } from './lib/wrk.js'

/**
 * `long`: runs twice `--duration` (a request takes seconds at c=256; short runs undercount).
 * `prompt`: bytes of user message (0: a one-line greeting).
 */
const MODES = {
  json: { stream: false, tokens: 16, long: false, prompt: 0 },
  json8k: { stream: false, tokens: 16, long: false, prompt: 8192 },
  stream16: { stream: true, tokens: 16, long: false, prompt: 0 },
  stream256: { stream: true, tokens: 256, long: true, prompt: 0 }
} as const
type Mode = keyof typeof MODES

const TARGETS = ['direct', 'nginx', 'raw', 'bare', 'portkey', 'gateway', 'gateway-warn', 'baseline'] as const
type TargetName = typeof TARGETS[number]
const LABELS: Record<TargetName, string> = {
  direct: 'direct (upstream A only)',
  nginx: 'nginx',
  raw: 'Node socket floor',
  bare: 'bare Node proxy',
  portkey: 'Portkey gateway',
  gateway: 'switchyard',
  'gateway-warn': 'switchyard --log-level warn',
  baseline: 'switchyard, baseline build'
}

const PATH = '/v1/chat/completions'
const MODEL = 'm'

type Target = PeerTarget<TargetName>

interface Cell {
  round: number
  target: TargetName
  mode: Mode
  conc: number
  rps: number
  p50Ms: number
  p99Ms: number
  requests: number
  non2xx: number
  socketErrors: number
  /**
   * CPU ms per request over the measuring window (NaN for direct): per completion for json; for
   * streams, per token the upstreams sent times the tokens of a request (a window holds few
   * whole streams at c=256, but thousands of tokens).
   */
  cpuMsPerReq: number
  /** CPU ms over wrk's whole run / wrk's count, the cross-check. */
  cpuMsPerReqWrk: number
  /**
   * Thousands of user-space instructions per request over the window (perf stat; NaN without
   * perf): steadier than CPU time on a shared machine, which moves 20-50% between runs while the
   * work done does not. Kernel time is not in it.
   */
  kinstPerReq: number
  /** Requests (for streams: tokens / tokens per request) per second over the window. */
  windowRps: number
  /** Requests the upstreams received over the window, and upstream A's share (round robin: ~0.5). */
  startedInWindow: number
  shareA: number
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, Math.max(0, ms)))

/** About `bytes` of English-like text, the same every run. */
function promptText (bytes: number): string {
  const words = ['the', 'gateway', 'reads', 'each', 'request', 'body', 'before', 'it', 'routes', 'the', 'prompt', 'to', 'a', 'worker']
  let out = ''
  for (let i = 0; out.length < bytes; i++) out += (i === 0 ? '' : ' ') + words[(i * 5 + (i >> 2)) % words.length]
  return out
}

function bodyFor (mode: Mode): string {
  const m = MODES[mode]
  return JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: m.prompt > 0 ? promptText(m.prompt) : 'Hello, how are you?' }], max_tokens: m.tokens, stream: m.stream })
}

async function post (url: string, mode: Mode, headers: Record<string, string>): Promise<{ status: number, type: string, text: string }> {
  const r = await fetch(url + PATH, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: bodyFor(mode) })
  return { status: r.status, type: r.headers.get('content-type') ?? '', text: await r.text() }
}

/** Throws unless the answer is the upstream's, whole: JSON completion or N chunks then [DONE]. */
function checkAnswer (name: string, mode: Mode, a: { status: number, type: string, text: string }): void {
  const n = MODES[mode].tokens
  const want = 'tok '.repeat(n)
  const fail = (why: string): never => { throw new Error(`${name} ${mode}: ${why}\nstatus ${a.status} ${a.type}\n${a.text.slice(0, 500)}`) }
  if (a.status !== 200) fail('status is not 200')
  if (!MODES[mode].stream) {
    if (!a.type.startsWith('application/json')) fail('content-type is not application/json')
    const doc = JSON.parse(a.text) as { object?: string, choices?: Array<{ message?: { content?: string } }> }
    if (doc.object !== 'chat.completion' || doc.choices?.[0]?.message?.content !== want) fail('not the expected chat.completion')
    return
  }
  if (!a.type.startsWith('text/event-stream')) fail('content-type is not text/event-stream')
  if (!a.text.endsWith('\n\n')) fail('the stream does not end with a blank line')
  const events = a.text.slice(0, -2).split('\n\n')
  if (events.length !== n + 1 || events[n] !== 'data: [DONE]') fail(`expected ${n} chunks then [DONE], got ${events.length} events`)
  let text = ''
  for (let i = 0; i < n; i++) {
    const ev = events[i]!
    if (!ev.startsWith('data: ')) fail(`event ${i} is not a data line`)
    const doc = JSON.parse(ev.slice(6)) as { object?: string, choices?: Array<{ delta?: { content?: string } }> }
    if (doc.object !== 'chat.completion.chunk') fail(`event ${i} is not a chat.completion.chunk`)
    text += doc.choices?.[0]?.delta?.content ?? ''
  }
  if (text !== want) fail('the chunks do not add up to the expected content')
}

async function upstreamStatsAt (ports: number[]): Promise<UpStats[]> {
  return await upstreamStats(ports.map(p => `http://127.0.0.1:${p}`))
}

async function upstreamDone (ports: number[]): Promise<number[]> {
  return (await upstreamStatsAt(ports)).map(s => s.done)
}

async function verify (t: Target, upPorts: number[], spread = true): Promise<void> {
  // The gateway listens before its workers are registered: wait for the first good answer.
  const deadline = Date.now() + 20_000
  for (;;) {
    let a: Awaited<ReturnType<typeof post>> | null = null
    try { a = await post(t.url, 'json', t.headers) } catch (err) { if (Date.now() > deadline) throw err }
    if (a !== null && (a.status === 200 || Date.now() > deadline)) { checkAnswer(t.name, 'json', a); break }
    await sleep(100)
  }
  for (const mode of Object.keys(MODES) as Mode[]) checkAnswer(t.name, mode, await post(t.url, mode, t.headers))
  // A restarted proxy skips the spread check: it passed it at start, and the previous target's
  // stragglers (Portkey works off its backlog after wrk leaves) would reach the upstreams meanwhile.
  if (!spread) return
  // 16 requests: Portkey balances at random, and 16 miss one upstream once in 30,000 runs.
  const n = 16
  const before = await upstreamDone(upPorts)
  for (let i = 0; i < n; i++) checkAnswer(t.name, 'json', await post(t.url, 'json', t.headers))
  const after = await upstreamDone(upPorts)
  const dA = after[0]! - before[0]!
  const dB = after[1]! - before[1]!
  if (t.name === 'direct' ? dA !== n || dB !== 0 : dA < 1 || dB < 1 || dA + dB !== n) {
    throw new Error(`${t.name}: ${n} requests reached upstream A ${dA} times and B ${dB} times (expected ${t.name === 'direct' ? 'A only' : 'both'})`)
  }
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '3' },
      modes: { type: 'string', default: Object.keys(MODES).join(',') },
      concurrency: { type: 'string', default: '64,256' },
      targets: { type: 'string', default: TARGETS.filter(t => t !== 'baseline').join(',') },
      baseline: { type: 'string' },
      json: { type: 'string' },
      'no-install': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      'no-record': { type: 'boolean', default: false },
      pin: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help) {
    console.log(`npm run bench -- proxy [--duration S=3] [--warmup S=8 per proxy and round] [--rounds N=3] [--modes ${Object.keys(MODES).join(',')}]
  [--concurrency 64,256] [--targets ${TARGETS.join(',')}] [--json FILE] [--no-install]
  [--cpu-prof DIR (the gateways run under node --cpu-prof; the last round's profiles are kept)] [--pin (proxy alone on the last CPU, the rest on the others)]
  [--baseline REF (also the gateway as built from git REF, info log level like 'gateway', compared side by side)]`)
    return
  }
  const durationS = Number(values.duration)
  const warmupS = Number(values.warmup)
  const rounds = Number(values.rounds)
  const modes = values.modes.split(',') as Mode[]
  const concs = values.concurrency.split(',').map(Number)
  // The warm-up is spread over a proxy's cells (each mode and concurrency), whole seconds for wrk.
  const cellWarmupS = warmupS === 0 ? 0 : Math.max(1, Math.round(warmupS / (modes.length * concs.length)))
  let names = values.targets.split(',') as TargetName[]
  for (const m of modes) if (!(m in MODES)) throw new Error(`unknown mode '${m}'; modes: ${Object.keys(MODES).join(', ')}`)
  for (const n of names) if (!TARGETS.includes(n)) throw new Error(`unknown target '${n}'; targets: ${TARGETS.join(', ')}`)
  if (values.baseline !== undefined && !names.includes('baseline')) names.push('baseline')
  if (values.baseline === undefined && names.includes('baseline')) throw new Error('target baseline needs --baseline REF')
  if (!Number.isInteger(durationS) || durationS < 1 || !Number.isInteger(warmupS) || warmupS < 0 || !(rounds >= 1) || concs.some(c => !(c >= 1))) throw new Error('--duration and --warmup are whole seconds (wrk takes no fractions; --warmup 0 skips it); --rounds and --concurrency are positive')

  const procs: Proc[] = []
  const strays: number[] = [] // nginx workers: killed by pid if the master leaves them behind
  let wrk: ChildProcess | null = null
  const dir = mkdtempSync(join(tmpdir(), 'swy-bench-proxy-'))
  chmodSync(dir, 0o755) // nginx workers run as nobody when the master is root
  let cleaned: Promise<void> | null = null
  const cleanup = (): Promise<void> => {
    cleaned ??= (async () => {
      wrk?.kill('SIGKILL')
      await Promise.all(procs.map(p => p.stop()))
      for (const pid of strays) if (alive(pid)) process.kill(pid, 'SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    })()
    return cleaned
  }
  const onExit = (): void => {
    // Last resort (an exception escaped or exit() was called): nothing may outlive the run.
    wrk?.kill('SIGKILL')
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
    for (const pid of strays) if (alive(pid)) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
    rmSync(dir, { recursive: true, force: true })
  }
  let interrupted = false
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted = true
    process.stderr.write(`\n${sig}: stopping everything\n`)
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
  }
  process.on('exit', onExit)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  const notes: string[] = []
  try {
    if (ensureCommand('wrk', 'wrk', ['-v'], !values['no-install']) === null) {
      throw new Error('wrk is not installed (Debian: apt-get install wrk); run as root to let the benchmark install it')
    }
    let nginx: string | null = null
    if (names.includes('nginx')) {
      nginx = ensureCommand('nginx', 'nginx', ['-v'], !values['no-install'])
      if (nginx === null) {
        process.stderr.write('nginx: skipped (not installed)\n')
        notes.push('nginx: skipped (not installed; the benchmark installs Debian\'s nginx when run as root)')
        names = names.filter(n => n !== 'nginx')
      }
    }

    const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url))
    // --pin: the proxy alone on the last CPU, upstreams and wrk on the others (taskset).
    const ncpu = cpus().length
    const pin = values.pin && ncpu >= 2 && hasCommand('taskset', ['-V'])
    const perf = perfCounts()
    if (!perf) notes.push('user instructions not counted: perf stat -e instructions:u does not work here')
    if (values.pin && !pin) notes.push('--pin ignored (needs 2 CPUs and taskset)')
    const proxyCpus = String(ncpu - 1)
    const restCpus = ncpu === 2 ? '0' : `0-${ncpu - 2}`
    const pinned = (cpuList: string, cmd: string, args: string[]): [string, string[]] => pin ? ['taskset', ['-c', cpuList, cmd, ...args]] : [cmd, args]
    const startOn = (cpuList: string, cmd: string, args: string[]): Proc => start(...pinned(cpuList, cmd, args))
    const upPorts = [await freePort(), await freePort()]
    for (const p of upPorts) procs.push(startOn(restCpus, process.execPath, [here('./lib/fast-upstream.js'), String(p), MODEL]))
    await Promise.all(upPorts.map(p => waitForPort(p)))
    const upUrls = upPorts.map(p => `http://127.0.0.1:${p}`)

    const targets: Target[] = []
    let baselineCli: string | undefined
    if (values.baseline !== undefined) {
      process.stderr.write(`building the baseline ${values.baseline}...\n`)
      const b = buildBaseline(values.baseline, dir)
      baselineCli = b.cli
      LABELS.baseline = `switchyard @ ${b.commit}`
      notes.push(`baseline: the gateway built from ${values.baseline} (${b.commit}), log level info like 'switchyard'`)
    }
    const setup = {
      baselineCli,
      dir,
      upstreams: upUrls,
      model: MODEL,
      nginx,
      start: (cmd: string, args: string[]): Proc => startOn(proxyCpus, cmd, args),
      nodeArgs: (kind: string): string[] => values['cpu-prof'] === undefined || !(kind.startsWith('gateway') || kind === 'baseline') ? [] : ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof'], '--cpu-prof-name', `${kind}.cpuprofile`],
      strays
    }
    // Portkey is a peer we do not control: when it is missing or misbehaves, the run goes on without it.
    const skipPortkey = (why: string): void => {
      process.stderr.write(`portkey: skipped (${why})\n`)
      notes.push(`Portkey: skipped (${why})`)
    }
    if (names.includes('portkey')) {
      const pk = findPortkey()
      if ('error' in pk) {
        skipPortkey(pk.error)
        names = names.filter(n => n !== 'portkey')
      } else notes.push(`Portkey: @portkey-ai/gateway ${pk.version} on @hono/node-server ${pk.nodeServer}, --headless, x-portkey-config loadbalance over both upstreams (weighted random)`)
    }
    const started = await startTargets(names, upUrls[0]!, setup, skipPortkey)
    procs.push(...started.procs)
    targets.push(...started.targets)

    process.stderr.write(`checking answers of ${targets.map(t => t.name).join(', ')} ...\n`)
    for (const t of [...targets]) {
      try {
        await verify(t, upPorts)
      } catch (err) {
        if (t.name !== 'portkey') throw err
        skipPortkey(`wrong answers: ${(err as Error).message.split('\n').slice(0, 3).join(' / ')}`)
        targets.splice(targets.indexOf(t), 1)
        await t.proc?.stop()
      }
    }
    names = names.filter(n => targets.some(t => t.name === n))

    const scripts = new Map<string, string>()
    const scriptFor = (t: Target, mode: Mode): string => {
      const key = Object.keys(t.headers).length === 0 ? mode : `${mode}-${t.name}`
      let path = scripts.get(key)
      if (path === undefined) {
        path = writePostScript(dir, key, bodyFor(mode), t.headers)
        scripts.set(key, path)
      }
      return path
    }
    const cells: Cell[] = []
    const total = rounds * modes.length * concs.length * targets.length
    const est = Math.round(rounds * modes.reduce((a, m) => a + (MODES[m].long ? 2 : 1), 0) * concs.length * targets.length * (durationS + 0.3) + rounds * modes.length * concs.length * targets.length * (cellWarmupS + 0.3) + rounds * targets.length * 1.5)
    process.stderr.write(`proxy: ${targets.length} targets x ${modes.length} modes x ${concs.length} concurrencies x ${rounds} rounds, ${durationS} s each (+${cellWarmupS} s warm-up each; every proxy restarted every round): about ${Math.ceil(est / 60)} min\n`)
    let k = 0

    const measure = async (t: Target, mode: Mode, conc: number, secs: number, windowed: boolean): Promise<{ w: WrkResult, cpuWindow: number, cpuWhole: number, units: number, startedWindow: number[], windowMs: number, instructions: number }> => {
      if (t.proc !== null && (t.proc.child.exitCode !== null || t.proc.child.signalCode !== null)) throw new Error(`${t.name} exited (${t.proc.child.exitCode ?? t.proc.child.signalCode})`)
      const cpu0 = cpuOf(t.pids)
      const run = runWrk({ url: t.url + PATH, script: scriptFor(t, mode), connections: conc, durationS: secs, cpus: pin ? restCpus : null })
      wrk = run.child
      const t0 = performance.now()
      let cpuWindow = NaN
      let units = NaN
      let startedWindow = [NaN, NaN]
      let windowMs = NaN
      let instructions = NaN
      if (windowed) {
        const sample = async (): Promise<{ cpu: number, st: UpStats[], at: number }> => {
          const c0 = cpuOf(t.pids)
          const at0 = performance.now()
          const st = await upstreamStatsAt(upPorts)
          return { cpu: (c0 + cpuOf(t.pids)) / 2, st, at: (at0 + performance.now()) / 2 }
        }
        const marginMs = Math.min(500, secs * 150)
        await sleep(t0 + marginMs - performance.now())
        const a = await sample()
        const counting = perf && t.pids.length > 0 ? userInstructions(t.pids, (secs * 1000 - 2 * marginMs) / 1000) : null
        await sleep(t0 + secs * 1000 - marginMs - performance.now())
        const b = await sample()
        instructions = counting === null ? NaN : await counting
        cpuWindow = b.cpu - a.cpu
        const delta = (k: keyof UpStats): number => b.st[0]![k] - a.st[0]![k] + b.st[1]![k] - a.st[1]![k]
        units = MODES[mode].stream ? delta('chunks') / MODES[mode].tokens : delta('done')
        startedWindow = [b.st[0]!.started - a.st[0]!.started, b.st[1]!.started - a.st[1]!.started]
        windowMs = b.at - a.at
      }
      const w = await run.result
      wrk = null
      return { w, cpuWindow, cpuWhole: cpuOf(t.pids) - cpu0, units, startedWindow, windowMs, instructions }
    }

    // Each round every proxy starts afresh, is warmed at every cell, then runs its cells back to
    // back. A Node process left idle while the others run has its heap shrunk by V8's memory
    // reducer, young generation included, and pays extra scavenges and major GCs for the seconds
    // after load comes back; interleaving the targets cell by cell put that transient in every
    // cell, a fresh process warmed at every mode and concurrency has none. The warm-up's
    // 256-stream cells are also why `serve` turns V8's allocation-site pretenuring off
    // (src/cli/heap-tuning.ts): with it on, the json cells after them promoted ~17% of every
    // scavenge. `--baseline 0f84657` (the last build with it on) shows that side by side: json
    // 0.84-0.86x the baseline's CPU per request, json8k 0.70-0.94x, streams unchanged.
    for (let round = 0; round < rounds; round++) {
      for (let j = 0; j < targets.length; j++) {
        const t = targets[(j + round) % targets.length]!
        if (round > 0 && t.proc !== null) {
          await t.proc.stop()
          const peer = await startPeer(t.name as PeerKind, setup)
          procs.push(peer.proc)
          Object.assign(t, { url: peer.url, proc: peer.proc, pids: peer.pids, headers: peer.headers })
          await verify(t, upPorts, false)
        }
        if (cellWarmupS > 0) {
          process.stderr.write(`round ${round + 1} ${t.name}: warming up, ${modes.length * concs.length} x ${cellWarmupS} s ... `)
          let bad = 0
          // Backwards, so the warm-up ends at the first cell measured: a proxy that does not cancel
          // upstream when wrk leaves (the socket floor, the bare proxy) would otherwise still be
          // relaying the last warm-up's 256-token streams through that cell.
          for (const mode of [...modes].reverse()) {
            for (const conc of [...concs].reverse()) {
              const wu = await measure(t, mode, conc, cellWarmupS, false)
              bad += wu.w.non2xx + wu.w.socketErrors
            }
          }
          process.stderr.write(bad > 0 ? `${bad} non-2xx or socket errors\n` : 'done\n')
        }
        for (const mode of modes) {
          for (const conc of concs) {
            k++
            process.stderr.write(`[${k}/${total}] round ${round + 1} ${t.name} ${mode} c=${conc} ... `)
            const m = await measure(t, mode, conc, MODES[mode].long ? 2 * durationS : durationS, true)
            const cell: Cell = {
              round,
              target: t.name,
              mode,
              conc,
              rps: m.w.rps,
              p50Ms: m.w.p50Ms,
              p99Ms: m.w.p99Ms,
              requests: m.w.requests,
              non2xx: m.w.non2xx,
              socketErrors: m.w.socketErrors,
              cpuMsPerReq: t.pids.length === 0 || !(m.units >= 1) ? NaN : m.cpuWindow / m.units,
              cpuMsPerReqWrk: t.pids.length === 0 ? NaN : m.cpuWhole / m.w.requests,
              kinstPerReq: m.units >= 1 ? m.instructions / m.units / 1000 : NaN,
              windowRps: m.units / (m.windowMs / 1000),
              startedInWindow: m.startedWindow[0]! + m.startedWindow[1]!,
              shareA: m.startedWindow[0]! / (m.startedWindow[0]! + m.startedWindow[1]!)
            }
            cells.push(cell)
            const errs = cell.non2xx + cell.socketErrors
            process.stderr.write(`${Math.round(cell.rps)} req/s, p50 ${cell.p50Ms.toFixed(2)} ms, cpu ${Number.isNaN(cell.cpuMsPerReq) ? '-' : cell.cpuMsPerReq.toFixed(3) + ' ms/req'}${errs > 0 ? `, ${cell.non2xx} NON-2XX, ${cell.socketErrors} SOCKET ERRORS` : ''}\n`)
          }
        }
      }
    }

    // Report: printed, and kept for docs/BENCHMARKS.md.
    let report = ''
    const say = (text: string): void => { console.log(text); report += text + '\n' }
    const keep = (text: string): void => { report += text + '\n' } // table() prints already
    say(`\nproxy — ${await machine()}`)
    say(`command: npm run bench -- proxy${argv.length > 0 ? ' ' + argv.join(' ') : ''}`)
    say(`wrk -t1 POST ${PATH}, ${durationS} s per cell (stream256 ${2 * durationS} s), median of ${rounds} round${rounds > 1 ? 's' : ''}; two fast upstreams (own processes); every round each proxy starts afresh and gets ${cellWarmupS} s of load at each cell before its cells run back to back (no idle spell before a cell)`)
    say(`CPU = proxy process${names.includes('nginx') ? ' (nginx: master + worker)' : ''} utime+stime over the middle of each run ÷ completions (streams: ÷ tokens sent / tokens per request)${perf ? '; user kinst/req = thousands of user-space instructions per request over the same window (perf stat)' : ''}\n`)
    for (const n of notes) say(n)
    const pick = (t: TargetName, mode: Mode, conc: number): Cell[] => cells.filter(c => c.target === t && c.mode === mode && c.conc === conc)
    const med = (cs: Cell[], f: (c: Cell) => number): number => {
      const xs = cs.map(f).filter(Number.isFinite)
      return xs.length === 0 ? NaN : median(xs)
    }
    const headers = ['target', 'mode', 'conc', 'req/s', 'p50 ms', 'p99 ms', 'proxy CPU ms/req', rounds > 1 ? 'CPU range' : '', 'CPU µs/token', perf ? 'user kinst/req' : '', 'errors'].filter(h => h !== '')
    const rows: Array<Array<string | number>> = []
    for (const mode of modes) {
      for (const conc of concs) {
        for (const t of targets) {
          const cs = pick(t.name, mode, conc)
          const cpu = med(cs, c => c.cpuMsPerReq)
          const ok = cs.map(c => c.cpuMsPerReq).filter(Number.isFinite)
          const lo = Math.min(...ok)
          const hi = Math.max(...ok)
          const range = Number.isNaN(cpu) ? '-' : `±${Math.round((hi - lo) / 2 / cpu * 100)}%`
          const errs = cs.reduce((a, c) => a + c.non2xx + c.socketErrors, 0)
          const row: Array<string | number> = [LABELS[t.name], mode, String(conc), Math.round(med(cs, c => c.rps)), med(cs, c => c.p50Ms), med(cs, c => c.p99Ms), cpu]
          if (rounds > 1) row.push(range)
          row.push(MODES[mode].stream ? cpu * 1000 / MODES[mode].tokens : NaN)
          if (perf) row.push(med(cs, c => c.kinstPerReq))
          row.push(String(errs))
          rows.push(row)
        }
      }
    }
    keep(table(headers, rows))

    const errors = cells.reduce((a, c) => a + c.non2xx + c.socketErrors, 0)
    if (errors > 0) say(`\nWARNING: ${errors} non-2xx responses or socket errors in total (see the errors column); the figures above are suspect`)
    const skewed = cells.filter(c => c.target !== 'direct' && c.startedInWindow >= 100 && Math.abs(c.shareA - 0.5) > 0.1)
    if (skewed.length > 0) say(`\nnote: ${skewed.length} runs sent more than 60% of their requests to one upstream (round robin expected ~50%)`)

    const gws = targets.filter(t => t.name === 'gateway' || t.name === 'gateway-warn')
    const json = modes.includes('json') ? concs : []
    // Paired: the ratio within each round (cells minutes apart drift together on a shared
    // machine), then the median over rounds, with the range of the per-round ratios.
    const ratio = (a: TargetName, b: TargetName, mode: Mode, conc: number, f: (c: Cell) => number = c => c.cpuMsPerReq): { r: number, lo: number, hi: number } => {
      const rs: number[] = []
      for (let round = 0; round < rounds; round++) {
        const x = cells.find(c => c.round === round && c.target === a && c.mode === mode && c.conc === conc)
        const y = cells.find(c => c.round === round && c.target === b && c.mode === mode && c.conc === conc)
        if (x !== undefined && y !== undefined && Number.isFinite(f(x) / f(y))) rs.push(f(x) / f(y))
      }
      return rs.length === 0 ? { r: NaN, lo: NaN, hi: NaN } : { r: median(rs), lo: Math.min(...rs), hi: Math.max(...rs) }
    }
    const show = (x: { r: number, lo: number, hi: number }, goal: number | null): string => Number.isNaN(x.r)
      ? '-'
      : `${fmt(x.r)}x${rounds > 1 ? ` (${fmt(x.lo)}-${fmt(x.hi)})` : ''}${goal === null ? '' : x.r <= goal ? ' PASS' : ' MISS'}`
    if (targets.some(t => t.name === 'baseline') && targets.some(t => t.name === 'gateway')) {
      say(`\nthis build ÷ ${LABELS.baseline}, both at log level info: CPU and user-space instructions per request (median of the per-round ratios, range in brackets)`)
      const bl: Array<Array<string | number>> = []
      for (const mode of modes) {
        for (const conc of concs) {
          bl.push([mode, String(conc), med(pick('gateway', mode, conc), c => c.cpuMsPerReq), med(pick('baseline', mode, conc), c => c.cpuMsPerReq), show(ratio('gateway', 'baseline', mode, conc), null),
            med(pick('gateway', mode, conc), c => c.kinstPerReq), med(pick('baseline', mode, conc), c => c.kinstPerReq), show(ratio('gateway', 'baseline', mode, conc, c => c.kinstPerReq), null)])
        }
      }
      keep(table(['mode', 'conc', 'CPU ms/req', 'baseline CPU ms/req', 'CPU ratio', 'user kinst/req', 'baseline kinst/req', 'instructions ratio'], bl))
    }
    if (gws.length > 0 && json.length > 0) {
      say(`\ngoal (json): gateway CPU/req <= 2x nginx and <= 1.2x the bare Node proxy${rounds > 1 ? ' (median of the per-round ratios, range in brackets)' : ''}`)
      const lines: Array<Array<string | number>> = []
      for (const gw of gws) {
        for (const conc of json) {
          lines.push([LABELS[gw.name], String(conc), med(pick(gw.name, 'json', conc), c => c.cpuMsPerReq), show(ratio(gw.name, 'nginx', 'json', conc), 2), show(ratio(gw.name, 'bare', 'json', conc), 1.2), show(ratio(gw.name, 'raw', 'json', conc), null), show(ratio('raw', 'nginx', 'json', conc), null), show(ratio(gw.name, 'portkey', 'json', conc), null)])
        }
      }
      keep(table(['gateway', 'conc', 'CPU ms/req', '÷ nginx (goal ≤2x)', '÷ bare (goal ≤1.2x)', '÷ Node floor', 'floor ÷ nginx', '÷ Portkey'], lines))
      if (modes.includes('json8k')) {
        say('\njson with an 8 KiB user message, for information: gateway CPU per request ÷ nginx, ÷ bare, ÷ the Node floor')
        const pl: Array<Array<string | number>> = []
        for (const gw of gws) {
          for (const conc of concs) {
            pl.push([LABELS[gw.name], String(conc), med(pick(gw.name, 'json8k', conc), c => c.cpuMsPerReq), show(ratio(gw.name, 'nginx', 'json8k', conc), null), show(ratio(gw.name, 'bare', 'json8k', conc), null), show(ratio(gw.name, 'raw', 'json8k', conc), null)])
          }
        }
        keep(table(['gateway', 'conc', 'CPU ms/req', '÷ nginx', '÷ bare', '÷ Node floor'], pl))
      }
      const streams = modes.filter(m => MODES[m].stream)
      if (streams.length > 0) {
        say('\nstreaming, for information: gateway CPU per request (so per token) ÷ nginx, ÷ bare and ÷ Portkey')
        const sl: Array<Array<string | number>> = []
        for (const gw of gws) {
          for (const mode of streams) {
            for (const conc of concs) {
              const g = med(pick(gw.name, mode, conc), c => c.cpuMsPerReq)
              sl.push([LABELS[gw.name], mode, String(conc), g * 1000 / MODES[mode].tokens, show(ratio(gw.name, 'nginx', mode, conc), null), show(ratio(gw.name, 'bare', mode, conc), null), show(ratio(gw.name, 'portkey', mode, conc), null)])
            }
          }
        }
        keep(table(['gateway', 'mode', 'conc', 'CPU µs/token', '÷ nginx', '÷ bare', '÷ Portkey'], sl))
      }
    }

    if (values.json !== undefined) {
      writeFileSync(values.json, JSON.stringify({ machine: await machine(), argv, durationS, warmupS, rounds, cells }, null, 2) + '\n')
      say(`\nraw results: ${values.json}`)
    }
    if (values['cpu-prof'] !== undefined) say(`\ngateway CPU profiles of the last round: ${values['cpu-prof']} (written when the gateway exits)`)
    if (values['no-record'] !== true) recordFigures('proxy', `## proxy\n\n\`\`\`\n${report.trim()}\n\`\`\``)
  } catch (err) {
    // Interrupted: the signal handler cleans up and exits; the wrk it killed is no error.
    if (interrupted) await new Promise(() => {})
    throw err
  } finally {
    await cleanup()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('exit', onExit)
  }
}
