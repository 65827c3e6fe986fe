/**
 * `routing-quality`: how well each policy uses the engines' prefix caches, and what that does to
 * latency, on 4 and 8 mock engines with the timing model on and KV caches small enough to be
 * contended. Workloads: shared-prefix, multi-turn and the Mooncake conversation trace
 * (time-compressed). Policies: round_robin, least_load, cache_aware, kv_approx, kv_dynamo
 * (Dynamo's cost, the baseline) and kv (the improved policy).
 *
 * Every run gets fresh processes, so caches start cold and runs do not see each other:
 *  - one mocker process (bench/lib/routing-mocker.ts) with N engines publishing KV events over
 *    ZMQ, which also counts the workload's ceiling (the cached share an infinite global cache
 *    would give for the exact token sequences the engines received);
 *  - one gateway process (bench/lib/routing-gateway.ts) subscribed to those events;
 *  - the load generator (runLoad) here.
 * Three processes, because the engines' simulation is the busiest of the three and, sharing an
 * event loop with the gateway, would delay routing decisions and the gateway's first byte; as
 * separate processes each is measured on its own clock and CPU.
 *
 * The machine is shared (2 cores, other sessions running): compare policies within one run of
 * this benchmark, not absolute milliseconds across runs.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { runLoad, type LoadOptionsInput, type LoadResult } from '../src/bench/index.js'
import { barChart, esc, PALETTE } from '../src/bench/report/svg.js'
import type { RoutingPolicyName } from '../src/routing/index.js'
import { recordFigures } from './lib/docs.js'
import type { RoutingGatewayConfig } from './lib/routing-gateway.js'
import type { RoutingMockerWorker } from './lib/routing-mocker.js'
import { fmt, machine, table } from './lib/table.js'

const MOCKER = new URL('./lib/routing-mocker.js', import.meta.url).pathname
const GATEWAY = new URL('./lib/routing-gateway.js', import.meta.url).pathname
const MODEL = 'mock-llm'
const ALL_POLICIES: RoutingPolicyName[] = ['round_robin', 'least_load', 'cache_aware', 'kv_approx', 'kv_dynamo', 'kv']
const WORKLOADS = ['shared-prefix', 'multi-turn', 'trace'] as const
type WorkloadName = typeof WORKLOADS[number]

interface Opts {
  speedup: number
  /** KV blocks per engine: trace, and the generated workloads (smaller: their working sets are smaller). */
  numGpuBlocks: number
  numGpuBlocksGenerated: number
  durationS: number
  durationGeneratedS: number
  drainS: number
  trace: string
  traceSpeedup: number
  traceStartS: number
  rate: number
  sessionRate: number
  /** Policies also run with session affinity on, on workloads that send session ids (multi-turn). */
  affinityPolicies: RoutingPolicyName[]
  kvOpts: Record<string, unknown>
}

interface Row {
  workers: number
  workload: WorkloadName
  /** The policy name, with "+affinity" when session affinity was on. */
  policy: string
  res: LoadResult
  ceiling: number
  stats: Record<string, unknown>
}

/** A forked child speaking the small IPC protocol of bench/lib/routing-*.ts. */
class Child {
  readonly proc: ChildProcess
  private readonly waiting = new Map<string, (m: any) => void>()
  constructor (file: string, arg: unknown) {
    const verbose = process.env.SWY_BENCH_VERBOSE !== undefined
    this.proc = fork(file, [JSON.stringify(arg)], { stdio: verbose ? 'inherit' : ['ignore', 'ignore', 'inherit', 'ipc'] })
    this.proc.on('message', (m: { type: string }) => { const w = this.waiting.get(m.type); this.waiting.delete(m.type); w?.(m) })
  }

  next<T> (type: string, timeoutMs = 30_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`child ${this.proc.pid} sent no '${type}' within ${timeoutMs} ms`)), timeoutMs)
      this.waiting.set(type, (m) => { clearTimeout(t); resolve(m as T) })
    })
  }

  async ask<T> (type: string): Promise<T> {
    const p = this.next<T>(type)
    this.proc.send({ type })
    return await p
  }

  stop (): Promise<void> {
    return new Promise<void>(resolve => {
      const c = this.proc
      if (c.exitCode !== null || c.signalCode !== null) { resolve(); return }
      c.once('exit', () => resolve())
      c.kill('SIGTERM')
      setTimeout(() => c.kill('SIGKILL'), 5000).unref()
    })
  }
}

async function waitForWorkers (url: string, n: number, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    try {
      const doc = await (await fetch(`${url}/workers`)).json() as { data: Array<{ state: string }> }
      if (doc.data.filter(w => w.state === 'healthy').length === n) return
    } catch { /* not listening yet */ }
    if (Date.now() > end) throw new Error(`gateway ${url} has not ${n} healthy workers after ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** The load of one workload: what each run sends (the same for every policy). */
function loadFor (workload: WorkloadName, o: Opts): Omit<LoadOptionsInput, 'url' | 'model'> {
  const common = { endpoint: 'completions' as const, stream: true, ignoreEos: true, seed: 7, durationS: workload === 'trace' ? o.durationS : o.durationGeneratedS, drainTimeoutS: o.drainS, scrapeMetrics: true, progress: true }
  switch (workload) {
    // 128 groups sharing a 3/4 prefix of ~4k tokens (393k prefix tokens): a quarter of them fits
    // one engine's cache (262k tokens) beside the running requests, all of them do not.
    case 'shared-prefix': return { ...common, workload: 'shared-prefix', numPrefixes: 128, promptsPerPrefix: 8, prefixRatio: 0.75, isl: { mean: 4096, stddev: 512 }, osl: { mean: 96, stddev: 32 }, requestRate: o.rate }
    // Conversations of 4 turns, each resending the history (x-session-id per session).
    case 'multi-turn': return { ...common, workload: 'multi-turn', numSessions: 1000, turns: 4, isl: { mean: 3072, stddev: 512 }, osl: { mean: 128, stddev: 32 }, requestRate: o.sessionRate }
    case 'trace': return { ...common, workload: 'trace', trace: o.trace, traceFormat: 'mooncake', traceSpeedup: o.traceSpeedup, traceStartS: o.traceStartS }
  }
}

async function measure (workers: number, workload: WorkloadName, policy: RoutingPolicyName, affinity: boolean, o: Opts, step: string): Promise<Row> {
  // The fleet's capacity stays that of 4 engines at --speedup: the arrival rate the load generator
  // can drive on this machine then saturates round robin at any fleet size.
  const mocker = new Child(MOCKER, { numWorkers: workers, model: MODEL, speedupRatio: engineSpeedup(o, workers), numGpuBlocks: workload === 'trace' ? o.numGpuBlocks : o.numGpuBlocksGenerated, heartbeatMs: 1000 })
  let gateway: Child | null = null
  try {
    const { workers: mw } = await mocker.next<{ workers: RoutingMockerWorker[] }>('ready')
    const gcfg: RoutingGatewayConfig = { policy, model: MODEL, affinity, workers: mw, kvOpts: policy === 'kv' ? o.kvOpts : {} }
    gateway = new Child(GATEWAY, gcfg)
    const { url } = await gateway.next<{ url: string }>('ready')
    await waitForWorkers(url, workers)
    // Let the ZMQ subscriptions settle (a SUB socket misses what is published before it joins).
    await new Promise(resolve => setTimeout(resolve, 300))
    await mocker.ask('reset')
    const label = affinity ? `${policy}+affinity` : policy
    console.error(`${step} ${workers} engines, ${workload}, ${label}`)
    const res = await runLoad({ url, model: MODEL, ...loadFor(workload, o) })
    const c = await mocker.ask<{ promptTokens: number, hitTokens: number }>('ceiling')
    const stats = await gateway.ask<{ policies: Record<string, unknown> }>('stats')
    const s = res.summary
    console.error(`  ${s.requests.ok} ok, ${s.requests.failed} failed; TTFT p50 ${fmt(s.latency.ttftMs?.p50 ?? NaN)} ms p99 ${fmt(s.latency.ttftMs?.p99 ?? NaN)} ms; cached ${fmt((s.tokens.cachedRatio ?? 0) * 100)}% (ceiling ${fmt(c.hitTokens / Math.max(1, c.promptTokens) * 100)}%)`)
    if (s.requests.failed > 0) console.error(`  errors: ${s.errors.examples.join('; ')}`)
    return { workers, workload, policy: label, res, ceiling: c.hitTokens / Math.max(1, c.promptTokens), stats: stats.policies[MODEL] as Record<string, unknown> ?? {} }
  } finally {
    await gateway?.stop()
    await mocker.stop()
  }
}

const engineSpeedup = (o: Opts, workers: number): number => o.speedup * 4 / workers

const p = (r: Row, k: 'ttftMs' | 'e2eMs', q: 'p50' | 'p99'): number => r.res.summary.latency[k]?.[q] ?? NaN
const cached = (r: Row): number => r.res.summary.tokens.cachedRatio ?? NaN

function tableFor (rows: Row[]): string {
  const rr = rows.find(r => r.policy === 'round_robin')
  return table(['policy', 'req/s', 'output tok/s', 'TTFT p50 ms', 'TTFT p99 ms', 'e2e p50 ms', 'e2e p99 ms', 'TTFT p50 vs RR', 'cached %', 'ceiling %', 'of ceiling %', 'ok', 'failed'], rows.map(r => {
    const s = r.res.summary
    return [r.policy, s.requestThroughput, s.outputTokenThroughput, p(r, 'ttftMs', 'p50'), p(r, 'ttftMs', 'p99'), p(r, 'e2eMs', 'p50'), p(r, 'e2eMs', 'p99'),
      rr === undefined ? NaN : p(r, 'ttftMs', 'p50') / p(rr, 'ttftMs', 'p50'), cached(r) * 100, r.ceiling * 100, cached(r) / r.ceiling * 100, String(s.requests.ok), String(s.requests.failed)]
  }))
}

/** The goals, on the trace rows of one fleet size. */
function verdicts (rows: Row[]): string[] {
  const by = (n: RoutingPolicyName): Row | undefined => rows.find(r => r.policy === n)
  const kv = by('kv')
  const rr = by('round_robin')
  const base = by('kv_dynamo')
  const out: string[] = []
  const tag = `${rows[0]!.workers} engines, trace:`
  if (kv !== undefined && rr !== undefined) {
    const x = p(kv, 'ttftMs', 'p50') / p(rr, 'ttftMs', 'p50')
    out.push(`${tag} kv TTFT p50 = ${fmt(x)}x round robin's (goal ≤ 0.5x): ${x <= 0.5 ? 'PASS' : 'MISS'}`)
  }
  if (kv !== undefined) {
    const x = cached(kv) / kv.ceiling
    out.push(`${tag} kv cached tokens = ${fmt(x * 100)}% of the ceiling (goal ≥ 85%): ${x >= 0.85 ? 'PASS' : 'MISS'}`)
  }
  if (kv !== undefined && base !== undefined) {
    const x = 1 - p(kv, 'ttftMs', 'p99') / p(base, 'ttftMs', 'p99')
    out.push(`${tag} kv TTFT p99 ${fmt(x * 100)}% below kv_dynamo's (goal ≥ 10%): ${x >= 0.1 ? 'PASS' : 'MISS'}`)
  }
  return out
}

function plot (groups: Row[][], header: string): string {
  const color = (policy: string): string => PALETTE[(ALL_POLICIES.indexOf(policy.replace('+affinity', '') as RoutingPolicyName) + (policy.endsWith('+affinity') ? 6 : 0)) % PALETTE.length]!
  let body = ''
  for (const rows of groups) {
    const title = `${rows[0]!.workload}, ${rows[0]!.workers} engines`
    body += `<h2>${esc(title)}</h2><div class="row">`
    body += barChart('TTFT p50', rows.map(r => ({ label: r.policy, value: p(r, 'ttftMs', 'p50'), color: color(r.policy) })), 'ms', 420)
    body += barChart('TTFT p99', rows.map(r => ({ label: r.policy, value: p(r, 'ttftMs', 'p99'), color: color(r.policy) })), 'ms', 420)
    body += barChart('cached tokens, % of the ceiling', rows.map(r => ({ label: r.policy, value: cached(r) / r.ceiling * 100, color: color(r.policy) })), '%', 420)
    body += barChart('output tokens/s', rows.map(r => ({ label: r.policy, value: r.res.summary.outputTokenThroughput, color: color(r.policy) })), 'tok/s', 420)
    body += '</div>'
  }
  return `<!doctype html><meta charset="utf-8"><title>routing-quality</title><style>body{font:13px system-ui,sans-serif;margin:24px} .row{display:flex;flex-wrap:wrap;gap:8px} svg text{font:11px system-ui,sans-serif} .title{font-weight:600} pre{white-space:pre-wrap}</style><h1>routing-quality</h1><pre>${esc(header)}</pre>${body}`
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      workers: { type: 'string', default: '4,8' },
      'generated-workers': { type: 'string' },
      workloads: { type: 'string', default: WORKLOADS.join(',') },
      policies: { type: 'string', default: ALL_POLICIES.join(',') },
      duration: { type: 'string', default: '60' },
      'duration-generated': { type: 'string', default: '40' },
      drain: { type: 'string', default: '45' },
      speedup: { type: 'string', default: '1' },
      'num-gpu-blocks': { type: 'string', default: '65536' },
      'num-gpu-blocks-generated': { type: 'string', default: '4096' },
      trace: { type: 'string', default: '/work/shared/traces/conversation_trace.jsonl' },
      'trace-speedup': { type: 'string', default: '5' },
      'trace-start': { type: 'string', default: '600' },
      rate: { type: 'string', default: '30' },
      'session-rate': { type: 'string', default: '5' },
      'affinity-policies': { type: 'string', default: 'round_robin,kv' },
      'kv-opts': { type: 'string', default: '{}' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: 'results/routing-quality' },
      'no-record': { type: 'boolean', default: false }
    }
  })
  const quick = values.quick
  const num = (k: keyof typeof values): number => {
    const v = Number(values[k])
    if (!(v > 0) && !(k === 'trace-start' && v === 0)) throw new Error(`--${k} must be a positive number, got ${String(values[k])}`)
    return v
  }
  const o: Opts = {
    speedup: num('speedup'),
    numGpuBlocks: Math.round(num('num-gpu-blocks')),
    numGpuBlocksGenerated: Math.round(num('num-gpu-blocks-generated')),
    durationS: quick ? Math.min(20, num('duration')) : num('duration'),
    durationGeneratedS: quick ? Math.min(15, num('duration-generated')) : num('duration-generated'),
    drainS: num('drain'),
    trace: values.trace,
    traceSpeedup: num('trace-speedup'),
    traceStartS: num('trace-start'),
    rate: num('rate'),
    sessionRate: num('session-rate'),
    affinityPolicies: values['affinity-policies'] === '' ? [] : values['affinity-policies'].split(',') as RoutingPolicyName[],
    kvOpts: JSON.parse(values['kv-opts']) as Record<string, unknown>
  }
  const counts = (quick && !argv.includes('--workers') ? '4' : values.workers).split(',').map(Number)
  if (counts.some(n => !Number.isInteger(n) || n < 1)) throw new Error(`--workers must list positive integers, got ${values.workers}`)
  const workloads = values.workloads.split(',') as WorkloadName[]
  for (const w of workloads) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}; accepted: ${WORKLOADS.join(', ')}`)
  const policies = values.policies.split(',') as RoutingPolicyName[]
  for (const pn of policies) if (!ALL_POLICIES.includes(pn)) throw new Error(`unknown policy ${pn}; accepted: ${ALL_POLICIES.join(', ')}`)

  // Fleet sizes for the generated workloads (shared-prefix, multi-turn): --workers unless given.
  const genCounts = values['generated-workers'] === undefined ? counts : values['generated-workers'].split(',').map(Number)
  if (genCounts.some(n => !Number.isInteger(n) || n < 1)) throw new Error(`--generated-workers must list positive integers, got ${String(values['generated-workers'])}`)
  const plan = counts.flatMap(n => workloads.filter(wl => wl === 'trace' || genCounts.includes(n)).map(wl => [n, wl] as const))
  for (const n of genCounts) if (!counts.includes(n)) plan.push(...workloads.filter(wl => wl !== 'trace').map(wl => [n, wl] as const))
  const total = plan.length * policies.length + plan.filter(([, wl]) => wl === 'multi-turn').length * o.affinityPolicies.length
  const groups: Row[][] = []
  let k = 0
  for (const [n, wl] of plan) {
    const rows: Row[] = []
    for (const pn of policies) rows.push(await measure(n, wl, pn, false, o, `[${++k}/${total}]`))
    if (wl === 'multi-turn') for (const pn of o.affinityPolicies) rows.push(await measure(n, wl, pn, true, o, `[${++k}/${total}]`))
    groups.push(rows)
  }

  const header = `routing-quality — ${await machine()}\n` +
    `command: node dist/bench/run.js routing-quality ${argv.join(' ')}\n` +
    `per run: fresh mocker process (N engines at speed-up ${o.speedup} × 4 / N, so every fleet has the capacity of 4 engines at ${o.speedup}; timing model on; KV blocks of 64 tokens per engine: ${o.numGpuBlocks} (trace) / ${o.numGpuBlocksGenerated} (generated workloads), KV events over ZMQ) + gateway process (session affinity off, except rows marked +affinity) + load generator; completions, stream, ignore_eos, ${o.durationS} s (trace) / ${o.durationGeneratedS} s (generated) of arrivals then up to ${o.drainS} s drain (requests still running then are cancelled and counted as failed).\n` +
    `workloads: shared-prefix (128 prefixes, ISL ~4096, 75% shared, OSL ~96, Poisson ${o.rate} req/s); multi-turn (4 turns, ISL ~3072 per turn + history, OSL ~128, ${o.sessionRate} new sessions/s); trace (Mooncake conversation trace from ${o.traceStartS} s, time ÷ ${o.traceSpeedup}).\n` +
    'ceiling = cached share of prompt tokens one infinite global prefix cache would give for the token sequences the engines received (64-token blocks, last token always computed).\n' +
    'The machine is shared and noisy (2 cores, other sessions running): compare the ratios between policies of one run, not absolute ms across runs.'
  console.log('\n' + header)
  let md = `## routing-quality\n\n${header.split('\n').join('\n\n')}\n`
  const allVerdicts: string[] = []
  for (const rows of groups) {
    const title = `${rows[0]!.workload}, ${rows[0]!.workers} engines`
    console.log(`\n${title}`)
    const t = tableFor(rows)
    md += `\n### ${title}\n\n${t}\n`
    if (rows[0]!.workload === 'trace') {
      const v = verdicts(rows)
      console.log(v.join('\n'))
      md += '\n' + v.map(l => `- ${l}`).join('\n') + '\n'
      allVerdicts.push(...v)
    }
  }
  mkdirSync(values.out, { recursive: true })
  const summary = groups.flat().map(r => ({ workers: r.workers, workload: r.workload, policy: r.policy, ceiling: r.ceiling, summary: r.res.summary, workerCounts: r.res.workers, generator: r.res.generator, stats: r.stats }))
  writeFileSync(`${values.out}/results.json`, JSON.stringify({ header, verdicts: allVerdicts, rows: summary }, null, 1))
  writeFileSync(`${values.out}/routing-quality.html`, plot(groups, header))
  console.error(`[bench] results in ${values.out}/results.json, plot in ${values.out}/routing-quality.html`)
  if (!values['no-record']) recordFigures('routing-quality', md)
}
