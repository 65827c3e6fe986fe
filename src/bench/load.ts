/**
 * `runLoad`: the load generator as a library call. Resolves options, builds the workload and
 * the HTTP pool, runs the warm-up and the measured pass, scrapes the gateway's per-worker
 * counters around it and returns every record with its summary.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { Pool } from 'undici'
import { loadTokenizer } from '../tokenize/index.js'
import type { ClientContext, RequestHandler } from './client.js'
import { requestShape } from './body.js'
import { scrapeWorkerRequests, workerDelta } from './gateway-metrics.js'
import { describeOptions, PRIORITY_VALUES, resolveLoadOptions, type LoadOptions, type LoadOptionsInput } from './options.js'
import { Progress, type ProgressStream } from './progress.js'
import { createPromptFactory } from './prompts.js'
import type { RequestRecord } from './records.js'
import { RESULTS_VERSION, type LoadResult } from './results.js'
import { mixSeed, STREAM } from './rng.js'
import { LoadPass, type ArrivalMode } from './run.js'
import { Samples, statsOf } from './stats.js'
import { cdfs, runDurationMs, summarize, summarizeByPriority, timeline } from './summary.js'
import { createWorkload, SyntheticWorkload } from './workloads/index.js'

export interface RunHooks {
  /** Aborting stops new requests and cancels those in flight; runLoad still returns what it has. */
  signal?: AbortSignal
  /** Each measured request as it finishes. */
  onRecord?: (rec: RequestRecord) => void
  /** Where progress and warnings are written when options.progress is set (default stderr). */
  progressStream?: ProgressStream
  /** Every warning also goes here. */
  onWarning?: (message: string) => void
}

/** Open-loop runs have no natural bound on requests in flight; this many connections is plenty. */
const OPEN_LOOP_CONNECTIONS = 4096
const WARMUP_CONCURRENCY = 16
/** Event-loop delay p99 above lagWarnMs × this says the generator itself was slow. */
const LOOP_DELAY_FACTOR = 2
/** About one second of event-loop samples at the 5 ms resolution. */
const MIN_LOOP_SAMPLES = 200

function arrivalMode (o: LoadOptions): ArrivalMode {
  if (o.concurrency !== null) return 'closed'
  if (o.requestRate !== null) return 'poisson'
  return 'trace'
}

/**
 * Runs a benchmark and returns its results.
 *
 * @example
 * const r = await runLoad({ url: 'http://127.0.0.1:8000', model: 'qwen', stream: true, concurrency: 16, numRequests: 200, isl: 1024, osl: 128 })
 * console.log(r.summary.latency.ttftMs?.p50, r.summary.outputTokenThroughput)
 */
export async function runLoad (input: LoadOptionsInput, hooks: RunHooks = {}): Promise<LoadResult> {
  const opts = resolveLoadOptions(input)
  const tokenizer = opts.tokenizer ?? await loadTokenizer(opts.tokenizerDir)
  const prompts = createPromptFactory(tokenizer)
  const workload = await createWorkload(opts, prompts)
  const shape = requestShape(opts)
  const mode = arrivalMode(opts)
  // One spare connection for the /metrics scrape.
  const connections = opts.maxConnections ?? (mode === 'closed' ? opts.concurrency! + 1 : OPEN_LOOP_CONNECTIONS)
  const pool = new Pool(shape.origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 30_000
  })
  const warnings: string[] = []
  const out = hooks.progressStream ?? process.stderr
  let progress: Progress | null = null
  const warn = (m: string): void => {
    hooks.onWarning?.(m)
    if (progress !== null) progress.warn(m)
    else if (opts.progress) out.write(`warning: ${m}\n`)
  }
  const active = new Set<RequestHandler>()
  let pass: LoadPass | null = null
  const onAbort = (): void => { pass?.stop('aborted', false) }
  hooks.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    if (hooks.signal?.aborted === true) throw hooks.signal.reason

    let warmupRequests = 0
    if (opts.warmup > 0) {
      const warmCtx: ClientContext = { dispatcher: pool, stream: opts.stream, chat: opts.endpoint === 'chat', timeoutMs: opts.requestTimeoutS * 1000, tokenizer, itls: new Samples(), active }
      pass = new LoadPass({
        opts,
        workload: new SyntheticWorkload({ ...opts, priorityMix: null }, prompts, mixSeed(opts.seed, STREAM.warmup)),
        shape,
        ctx: warmCtx,
        mode: 'closed',
        concurrency: Math.min(opts.warmup, opts.concurrency ?? WARMUP_CONCURRENCY),
        connections,
        limit: opts.warmup,
        durationMs: null,
        onRecord: null,
        warn
      })
      if (opts.progress) progress = startProgress(pass, 'warmup', opts.warmup, null, out)
      await pass.run()
      progress?.close()
      progress = null
      warmupRequests = pass.records.length
    }

    const before = opts.scrapeMetrics ? await scrapeWorkerRequests(pool, shape.basePath, shape.headers) : null
    const itls = new Samples(4096)
    const ctx: ClientContext = { dispatcher: pool, stream: opts.stream, chat: opts.endpoint === 'chat', timeoutMs: opts.requestTimeoutS * 1000, tokenizer, itls, active }
    const limit = Math.min(
      opts.numRequests ?? (opts.durationS !== null ? Infinity : workload.naturalRequests),
      workload.timed && mode === 'trace' ? workload.naturalRequests : Infinity
    )
    pass = new LoadPass({
      opts,
      workload,
      shape,
      ctx,
      mode,
      concurrency: opts.concurrency ?? 0,
      connections,
      limit,
      durationMs: opts.durationS === null ? null : opts.durationS * 1000,
      onRecord: hooks.onRecord ?? null,
      warn
    })
    const startedAt = new Date().toISOString()
    const loop = monitorEventLoopDelay({ resolution: 5 })
    loop.enable()
    const cpu0 = process.cpuUsage()
    if (opts.progress) progress = startProgress(pass, 'bench', Number.isFinite(limit) ? limit : null, opts.durationS, out)
    // The warm-up may have been interrupted: then the measured pass has nothing to do.
    if (!isAborted(hooks.signal)) await pass.run()
    progress?.close()
    progress = null
    const cpu = process.cpuUsage(cpu0)
    loop.disable()
    const after = opts.scrapeMetrics ? await scrapeWorkerRequests(pool, shape.basePath, shape.headers) : null

    warnings.push(...pass.warnings)
    const records = pass.records
    const lag = statsOf(pass.lags.sorted())
    const behind = lag !== null && lag.p99 > opts.lagWarnMs
    if (behind && warnings.length === 0) {
      const m = `dispatch lag p99 was ${lag.p99.toFixed(1)} ms (threshold ${opts.lagWarnMs} ms): the generator fell behind its schedule`
      warnings.push(m)
      warn(m)
    }
    // An empty histogram reports huge sentinels; a short run may have no samples at all.
    const loopDelay = loop.count === 0 ? { p50: 0, p99: 0, max: 0 } : { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 }
    // A short run's few samples are dominated by start-up (JIT, first connections): not worth a warning.
    if (loop.count >= MIN_LOOP_SAMPLES && loopDelay.p99 > opts.lagWarnMs * LOOP_DELAY_FACTOR) {
      const m = `the generator's event loop was delayed ${loopDelay.p99.toFixed(1)} ms at p99: client-side latency may be inflated (run fewer requests per process or more processes)`
      warnings.push(m)
      warn(m)
    }
    const durationMs = runDurationMs(records)
    const slo = { ttftMs: opts.sloTtftMs, tpotMs: opts.sloTpotMs, e2eMs: opts.sloE2eMs }
    return {
      version: RESULTS_VERSION,
      startedAt,
      options: describeOptions(opts),
      mode,
      workload: { kind: workload.kind, tokenizer: tokenizer.name, exactPromptLengths: prompts.exact, naturalRequests: workload.naturalRequests },
      priorityValues: opts.priorityMix === null ? null : PRIORITY_VALUES,
      warmupRequests,
      summary: summarize(records, durationMs, slo, itls),
      perPriority: summarizeByPriority(records, durationMs, slo),
      generator: {
        dispatchLagMs: lag,
        eventLoopDelayMs: loopDelay,
        cpuMs: { user: cpu.user / 1000, system: cpu.system / 1000 },
        behindSchedule: behind,
        warnings
      },
      workers: workerDelta(before, after),
      timeline: timeline(records),
      cdf: cdfs(records, itls),
      records
    }
  } finally {
    progress?.close()
    hooks.signal?.removeEventListener('abort', onAbort)
    for (const h of [...active]) h.cancel('runLoad ended')
    await pool.close()
  }
}

function isAborted (signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}

function startProgress (pass: LoadPass, label: string, total: number | null, durationS: number | null, out: ProgressStream): Progress {
  const p = new Progress(() => ({
    label,
    done: pass.done,
    failed: pass.failed,
    total,
    inflight: pass.inflight,
    outputTokens: pass.outputTokens,
    elapsedMs: pass.t0 === 0 ? 0 : performance.now() - pass.t0,
    durationS
  }), out)
  p.start()
  return p
}
