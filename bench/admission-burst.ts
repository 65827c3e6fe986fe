/**
 * `admission-burst` (seed 004, TENT's burst test adapted to requests): a few mock engines with
 * dispatch windows; each burst sends a block of low-priority requests and right behind it a
 * smaller block of high-priority ones, all before reading any answer; the next burst starts when
 * the last answer is in. Modes, each on a fresh gateway and mocker:
 * - `none`: no queue in the gateway (windows unlimited): everything is dispatched at once and
 *   waits in the engines' own FCFS queues (the engines do not see the priority);
 * - `fifo`: the gateway queues in arrival order, windows = the engines' max_num_seqs;
 * - `wdrr`: the gateway's priority queue (weighted deficit round robin 4:2:1), same windows;
 * - `strict` (optional): strict priority, same windows.
 * Per mode and class: mean, p50, p99, p99.9 latency (send to last byte, client clock); total
 * output-token throughput. Goal: wdrr high-priority mean ≤ 0.4x the no-queue high mean, and
 * throughput at most 3% below no-queue.
 */
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'
import { recordFigures } from './lib/docs.js'
import { freePortRange, waitForWorkers } from './lib/fleet.js'
import { cpuMs, freePort, start, waitForPort, type Proc } from './lib/proc.js'
import { fmt, machine, table } from './lib/table.js'

const CLI = new URL('../src/cli/main.js', import.meta.url).pathname
const MODES = ['none', 'fifo', 'wdrr', 'strict'] as const
type Mode = typeof MODES[number]
const GOAL_HIGH_RATIO = 0.4
const GOAL_THROUGHPUT_LOSS = 0.03

interface Opts { engines: number, seqs: number, window: number, bursts: number, low: number, high: number, isl: number, osl: number, speedup: number }

interface Sample { cls: 'high' | 'low', ms: number, ok: boolean }

interface ModeResult {
  mode: Mode
  samples: Sample[]
  wallMs: number
  outputTokens: number
  failed: number
  gatewayCpuMs: number
}

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

function gatewayFlags (mode: Mode, window: number): string[] {
  if (mode === 'none') return ['--max-inflight-requests', String(1 << 24)]
  return ['--max-inflight-requests', String(window), '--queue-policy', mode]
}

async function runMode (mode: Mode, o: Opts, step: string): Promise<ModeResult> {
  const basePort = await freePortRange(o.engines)
  const gwPort = await freePort()
  const mocker = start(process.execPath, [CLI, 'mocker', '--num-workers', String(o.engines), '--port', String(basePort), '--speedup-ratio', String(o.speedup), '--max-num-seqs', String(o.seqs)])
  let gateway: Proc | null = null
  const agent = new Agent({ connections: null, keepAliveTimeout: 30_000 })
  try {
    for (let i = 0; i < o.engines; i++) await waitForPort(basePort + i)
    const workers = Array.from({ length: o.engines }, (_, i) => ['--worker', `mock-llm=http://127.0.0.1:${basePort + i}`]).flat()
    gateway = start(process.execPath, [CLI, 'serve', '--port', String(gwPort), '--log-level', 'warn', '--policy', 'least_load', ...workers, ...gatewayFlags(mode, o.window)])
    await waitForPort(gwPort)
    await waitForWorkers(gwPort, o.engines)
    const url = `http://127.0.0.1:${gwPort}/v1/completions`
    let n = 0
    const one = async (cls: 'high' | 'low'): Promise<Sample & { tokens: number }> => {
      // A distinct prompt per request: prefix caching must not make some requests cheaper.
      const prompt = `r${n++} ` + 'tok '.repeat(o.isl - 1)
      const t0 = performance.now()
      try {
        const res = await request(url, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json', 'x-priority': cls },
          body: JSON.stringify({ model: 'mock-llm', prompt, max_tokens: o.osl, ignore_eos: true })
        })
        const doc = await res.body.json() as { usage?: { completion_tokens?: number } }
        return { cls, ms: performance.now() - t0, ok: res.statusCode === 200, tokens: doc.usage?.completion_tokens ?? 0 }
      } catch {
        return { cls, ms: performance.now() - t0, ok: false, tokens: 0 }
      }
    }
    // Warm-up burst, not measured.
    await Promise.all(Array.from({ length: o.engines * o.seqs }, () => one('low')))
    const samples: Sample[] = []
    let outputTokens = 0
    let failed = 0
    const g0 = cpuMs(gateway.child.pid!)
    const t0 = performance.now()
    for (let b = 0; b < o.bursts; b++) {
      process.stderr.write(`\r${step} ${mode}: burst ${b + 1}/${o.bursts}   `)
      const all: Array<Promise<Sample & { tokens: number }>> = []
      for (let i = 0; i < o.low; i++) all.push(one('low'))
      for (let i = 0; i < o.high; i++) all.push(one('high'))
      for (const s of await Promise.all(all)) {
        samples.push(s)
        outputTokens += s.tokens
        if (!s.ok) failed++
      }
    }
    const wallMs = performance.now() - t0
    process.stderr.write('\n')
    return { mode, samples, wallMs, outputTokens, failed, gatewayCpuMs: cpuMs(gateway.child.pid!) - g0 }
  } finally {
    await agent.close()
    await gateway?.stop()
    await mocker.stop()
  }
}

function stats (xs: number[]): { mean: number, p50: number, p99: number, p999: number } {
  const s = [...xs].sort((a, b) => a - b)
  return { mean: xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length), p50: percentile(s, 0.5), p99: percentile(s, 0.99), p999: percentile(s, 0.999) }
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      modes: { type: 'string', default: 'none,fifo,wdrr' },
      engines: { type: 'string', default: '2' },
      seqs: { type: 'string', default: '16' },
      window: { type: 'string' },
      bursts: { type: 'string', default: '5' },
      low: { type: 'string', default: '320' },
      high: { type: 'string', default: '16' },
      isl: { type: 'string', default: '256' },
      osl: { type: 'string', default: '64' },
      speedup: { type: 'string', default: '4' },
      'no-record': { type: 'boolean', default: false }
    }
  })
  const modes = values.modes.split(',').map(s => s.trim()) as Mode[]
  for (const m of modes) if (!(MODES as readonly string[]).includes(m)) throw new Error(`--modes takes ${MODES.join(',')}, got '${m}'`)
  const seqs = Number(values.seqs)
  const o: Opts = { engines: Number(values.engines), seqs, window: values.window === undefined ? seqs : Number(values.window), bursts: Number(values.bursts), low: Number(values.low), high: Number(values.high), isl: Number(values.isl), osl: Number(values.osl), speedup: Number(values.speedup) }
  for (const [k, v] of Object.entries(o)) if (!(v > 0) || (k !== 'speedup' && !Number.isInteger(v))) throw new Error(`--${k} must be a positive ${k === 'speedup' ? 'number' : 'integer'}, got ${v}`)
  const results: ModeResult[] = []
  for (const [i, m] of modes.entries()) results.push(await runMode(m, o, `[${i + 1}/${modes.length}]`))

  const header = `admission-burst — ${await machine()}\ncommand: npm run bench -- admission-burst ${argv.join(' ')}\n${o.engines} mock engines (max_num_seqs ${o.seqs}, speed-up ${o.speedup}) in one mocker process, one gateway (least_load; windows of ${o.window} requests per engine in the queueing modes); ${o.bursts} bursts of ${o.low} low- then ${o.high} high-priority completions (x-priority header; ISL ${o.isl}, OSL ${o.osl} exact, distinct prompts), all sent before any answer is read; latency = send to last byte`
  const none = results.find(r => r.mode === 'none')
  const rows: Array<Array<string | number>> = []
  for (const r of results) {
    const tput = r.outputTokens / (r.wallMs / 1000)
    for (const cls of ['high', 'low'] as const) {
      const st = stats(r.samples.filter(s => s.cls === cls && s.ok).map(s => s.ms))
      const base = none === undefined ? NaN : stats(none.samples.filter(s => s.cls === cls && s.ok).map(s => s.ms)).mean
      rows.push([r.mode, cls, r.samples.filter(s => s.cls === cls).length, st.mean, st.p50, st.p99, st.p999, st.mean / base, cls === 'high' ? tput : '', cls === 'high' && none !== undefined ? tput / (none.outputTokens / (none.wallMs / 1000)) : '', cls === 'high' ? r.gatewayCpuMs / r.samples.length : '', cls === 'high' ? String(r.failed) : ''])
    }
  }
  const t = table(['mode', 'class', 'requests', 'mean ms', 'p50 ms', 'p99 ms', 'p99.9 ms', 'mean vs none', 'output tok/s', 'tok/s vs none', 'gateway CPU ms/req', 'errors'], rows)
  let verdict = ''
  const wdrr = results.find(r => r.mode === 'wdrr')
  if (none !== undefined && wdrr !== undefined) {
    const hi = stats(wdrr.samples.filter(s => s.cls === 'high' && s.ok).map(s => s.ms)).mean / stats(none.samples.filter(s => s.cls === 'high' && s.ok).map(s => s.ms)).mean
    const loss = 1 - (wdrr.outputTokens / wdrr.wallMs) / (none.outputTokens / none.wallMs)
    verdict = `\nwdrr high-priority mean latency: ${fmt(hi)}x no-queue (goal ≤ ${GOAL_HIGH_RATIO}x): ${hi <= GOAL_HIGH_RATIO ? 'PASS' : 'MISS'}\n` +
      `wdrr throughput vs no-queue: ${loss >= 0 ? '-' : '+'}${fmt(Math.abs(loss) * 100)}% (goal: loss ≤ ${GOAL_THROUGHPUT_LOSS * 100}%): ${loss <= GOAL_THROUGHPUT_LOSS ? 'PASS' : 'MISS'}`
  }
  console.log('\n' + header + '\n\n' + t + verdict)
  if (!values['no-record']) recordFigures('admission-burst', `## admission-burst\n\n${header.replace('\n', '\n\n')}\n\n${t}\n${verdict}\n`)
}
