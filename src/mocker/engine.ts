/**
 * The mock engine: a scheduler over a simulated KV cache, driven pass by pass on a real or virtual
 * clock, with in-process listeners for KV events and forward-pass metrics.
 *
 * Pass loop (real clock): plan the pass now; its modeled end is `start + passMs`, where `start` is
 * the previous pass's end when we are on schedule (so timer lateness does not accumulate) or now
 * after idling or falling far behind. A pass whose end has already passed arms no timer. Between
 * passes the loop yields with setImmediate so requests that arrived meanwhile join the next pass.
 * Virtual clock: the clock jumps by the modeled pass time, nothing sleeps.
 */
import { randomBytes } from 'node:crypto'
import { builtinTokenizer } from '../tokenize/index.js'
import type { Tokenizer } from '../tokenize/index.js'
import { BlockManager } from './block-manager.js'
import { RealClock, VirtualClock } from './clock.js'
import type { Clock } from './clock.js'
import { MockerClosedError, MockerRequestError } from './errors.js'
import { KvEventBatch, KvEventCollector } from './kv-events.js'
import type { KvEventListener } from './kv-events.js'
import { resolveEngineOptions } from './options.js'
import type { MockEngineOptions, ResolvedEngineOptions } from './options.js'
import { buildOutputVocab } from './output-vocab.js'
import type { OutputVocab } from './output-vocab.js'
import { ForwardPassMetrics } from './pass-metrics.js'
import type { PassListener } from './pass-metrics.js'
import { EngineMetrics } from './prom-metrics.js'
import { EngineRequest, RequestState } from './request.js'
import type { FinishReason, RequestSink, RequestUsage } from './request.js'
import { PassPlan, Scheduler } from './scheduler.js'
import { StopMatcher } from './stop-strings.js'
import { passMs } from './timing.js'

/** Beyond this lag behind the modeled schedule, restart the schedule from now instead of catching up. */
const CATCH_UP_LIMIT_MS = 100

// PAUSED: virtual clock at the limit set by runUntil, with work left.
const LoopState = { IDLE: 0, QUEUED: 1, IN_PASS: 2, PAUSED: 3, CLOSED: 4 } as const
type LoopStateValue = typeof LoopState[keyof typeof LoopState]

export interface GenerateInput {
  /** Prompt token ids (already templated and tokenized). */
  promptTokens: ArrayLike<number>
  /** Default: the engine's defaultMaxTokens, capped by maxModelLen. */
  maxTokens?: number | null
  /** EOS is not sampled before this many tokens. */
  minTokens?: number
  ignoreEos?: boolean
  stop?: readonly string[] | null
  /** Lower runs first; default 0. */
  priority?: number
  /** Mixed into the output seed (OpenAI's `seed`). */
  seed?: number | null
  requestId?: string
}

export interface GenerateResult {
  id: string
  text: string
  tokenIds: number[]
  finishReason: FinishReason
  usage: RequestUsage
  arrivalMs: number
  /** Engine clock time of each generated token (ms). */
  tokenTimesMs: number[]
  finishMs: number
}

export interface GenerateOptions {
  signal?: AbortSignal
  /** Called with each text delta as it is produced. */
  onText?: (text: string) => void
}

export class MockEngine {
  readonly options: ResolvedEngineOptions
  readonly model: string
  readonly tokenizer: Tokenizer
  readonly clock: Clock
  readonly blocks: BlockManager
  readonly scheduler: Scheduler
  readonly metrics: EngineMetrics
  readonly vocab: OutputVocab
  private readonly events: KvEventCollector
  private readonly plan: PassPlan
  private readonly pass: ForwardPassMetrics
  private readonly kvListeners: KvEventListener[]
  private readonly passListeners: PassListener[]
  private idleWaiters: Array<() => void>
  private virtualLimitMs: number
  private readonly idPrefix: string
  private loopState: LoopStateValue
  private timer: NodeJS.Timeout | null
  private heartbeat: NodeJS.Timeout | null
  private passEndMs: number
  private nextStartMs: number
  private lastPassMs: number
  private kvSeq: number
  private requestCount: number
  private readonly boundPass: () => void
  private readonly boundFinishPass: () => void

  constructor (opts: MockEngineOptions = {}) {
    const o = resolveEngineOptions(opts)
    this.options = o
    this.model = o.model
    this.tokenizer = opts.tokenizer ?? builtinTokenizer()
    this.clock = o.clock === 'virtual' ? new VirtualClock() : new RealClock()
    this.events = new KvEventCollector()
    this.blocks = new BlockManager(o.numGpuBlocks, o.blockSize, this.events)
    this.vocab = buildOutputVocab(this.tokenizer)
    this.metrics = new EngineMetrics(o.model, () => this.scheduler)
    this.scheduler = new Scheduler({
      blockSize: o.blockSize,
      maxNumSeqs: o.maxNumSeqs,
      maxNumBatchedTokens: o.maxNumBatchedTokens,
      enablePrefixCaching: o.enablePrefixCaching,
      eosProbability: o.eosProbability,
      eosTokenId: this.tokenizer.eosTokenId ?? 0
    }, this.blocks, this.events, this.vocab, this.metrics)
    this.plan = new PassPlan()
    this.pass = new ForwardPassMetrics(o.workerId, o.dpRank, o.numGpuBlocks)
    this.kvListeners = []
    this.passListeners = []
    this.idleWaiters = []
    this.virtualLimitMs = Infinity
    this.idPrefix = randomBytes(6).toString('hex') + '-'
    this.loopState = LoopState.IDLE
    this.timer = null
    this.heartbeat = null
    this.passEndMs = 0
    this.nextStartMs = -1
    this.lastPassMs = 0
    this.kvSeq = 0
    this.requestCount = 0
    this.boundPass = () => this.runPass()
    this.boundFinishPass = () => this.finishPass()
    if (o.clock === 'real' && o.heartbeatMs > 0) {
      this.heartbeat = setInterval(() => this.beat(), o.heartbeatMs)
      this.heartbeat.unref()
    }
  }

  get closed (): boolean {
    return this.loopState === LoopState.CLOSED
  }

  /**
   * Queues a request; output goes to `sink` at the end of each pass. Throws MockerRequestError
   * for a request the engine cannot serve.
   *
   * @example
   * const req = engine.submit({ promptTokens: ids, maxTokens: 16 }, sink)
   * engine.cancel(req) // client went away
   */
  submit (input: GenerateInput, sink: RequestSink, context: unknown = null): EngineRequest {
    if (this.loopState === LoopState.CLOSED) throw new MockerClosedError()
    const o = this.options
    const prompt = input.promptTokens
    const n = prompt.length
    if (n === 0) throw new MockerRequestError('the prompt is empty', 'prompt')
    if (n >= o.maxModelLen) {
      throw new MockerRequestError(`the prompt has ${n} tokens; this model's maximum context length is ${o.maxModelLen} tokens`, 'prompt')
    }
    if (!(prompt instanceof Uint32Array)) {
      for (let i = 0; i < n; i++) {
        const t = prompt[i]!
        if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) throw new MockerRequestError(`prompt token ${i} is not a token id`, 'prompt')
      }
    }
    let maxTokens: number
    if (input.maxTokens === undefined || input.maxTokens === null) {
      maxTokens = Math.min(o.defaultMaxTokens, o.maxModelLen - n)
    } else {
      maxTokens = input.maxTokens
      if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new MockerRequestError('max_tokens must be a positive integer', 'max_tokens')
      if (n + maxTokens > o.maxModelLen) {
        throw new MockerRequestError(
          `this model's maximum context length is ${o.maxModelLen} tokens; the prompt has ${n} and max_tokens asks for ${maxTokens}`, 'max_tokens')
      }
    }
    const minTokens = Math.min(input.minTokens ?? 0, maxTokens)
    const stops = input.stop
    const stop = stops !== undefined && stops !== null && stops.length > 0 ? new StopMatcher(stops.filter((s) => s.length > 0)) : null
    const id = input.requestId ?? this.idPrefix + String(this.requestCount)
    const arrival = this.requestCount++
    const req = new EngineRequest(
      id, arrival, prompt, maxTokens, minTokens, input.ignoreEos ?? false, input.priority ?? 0, stop,
      outputSeed(o.seed, prompt, input.seed ?? 0), this.clock.now(), sink, context)
    this.scheduler.add(req)
    this.wake()
    return req
  }

  /** Runs a request to the end and returns its output (tests, library use). */
  async generate (input: GenerateInput, opts: GenerateOptions = {}): Promise<GenerateResult> {
    return await new Promise<GenerateResult>((resolve, reject) => {
      const collector = new CollectingSink(this, resolve, opts.onText ?? null)
      let req: EngineRequest
      try {
        req = this.submit(input, collector)
      } catch (err) {
        reject(err)
        return
      }
      const signal = opts.signal
      if (signal !== undefined) {
        if (signal.aborted) this.cancel(req)
        else {
          const onAbort = (): void => { this.cancel(req) }
          signal.addEventListener('abort', onAbort, { once: true })
          collector.detach = () => signal.removeEventListener('abort', onAbort)
        }
      }
    })
  }

  /** Aborts a request and frees its KV blocks at once; false if it had already ended. */
  cancel (req: EngineRequest): boolean {
    return this.scheduler.cancel(req, this.clock.now())
  }

  /** Subscribes to KV event batches (one per pass that produced events). Returns the unsubscribe function. */
  onKvEvents (listener: KvEventListener): () => void {
    return addListener(this.kvListeners, listener)
  }

  /** Subscribes to forward-pass metrics (every pass, and heartbeats while idle). */
  onPass (listener: PassListener): () => void {
    return addListener(this.passListeners, listener)
  }

  /** Drops the prefix cache (vLLM's /reset_prefix_cache); publishes AllBlocksCleared. */
  resetPrefixCache (): void {
    this.blocks.clear()
    this.flushKvEvents()
  }

  /** Resolves when no request is waiting or running (virtual clock: after the simulated passes). */
  async idle (): Promise<void> {
    if (this.loopState === LoopState.IDLE || this.loopState === LoopState.CLOSED) return
    if (this.loopState === LoopState.PAUSED) throw new MockerRequestError('the virtual clock is paused by runUntil; call runUntil to advance it')
    await this.settled()
  }

  /**
   * Virtual clock only, for replaying timed arrivals: runs passes until the clock reaches `ms`
   * (a pass that starts before `ms` completes) or no work is left, then moves an idle clock to `ms`.
   * From the first call on, the engine advances only through runUntil; `runUntil(Infinity)`
   * lets it run free again and resolves when idle.
   *
   * @example
   * for (const r of trace) { await engine.runUntil(r.timestampMs); engine.submit(r.input, sink) }
   */
  async runUntil (ms: number): Promise<void> {
    const clock = this.clock
    if (!(clock instanceof VirtualClock)) throw new MockerRequestError('runUntil needs the virtual clock')
    if (this.loopState === LoopState.CLOSED) return
    this.virtualLimitMs = ms
    if (this.loopState === LoopState.PAUSED) {
      this.loopState = LoopState.QUEUED
      setImmediate(this.boundPass)
    }
    if (this.loopState !== LoopState.IDLE) await this.settled()
    if (this.loopState === LoopState.IDLE && Number.isFinite(ms) && clock.now() < ms) clock.advance(ms - clock.now())
  }

  private async settled (): Promise<void> {
    await new Promise<void>((resolve) => { this.idleWaiters.push(resolve) })
  }

  /** Aborts in-flight requests (finish reason "abort") and stops the loop. Idempotent. */
  async close (): Promise<void> {
    if (this.loopState === LoopState.CLOSED) return
    this.loopState = LoopState.CLOSED
    if (this.timer !== null) clearTimeout(this.timer)
    if (this.heartbeat !== null) clearInterval(this.heartbeat)
    this.timer = null
    this.heartbeat = null
    this.scheduler.abortAll(this.clock.now())
    this.wakeIdleWaiters()
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }

  private wake (): void {
    if (this.loopState !== LoopState.IDLE) return
    this.loopState = LoopState.QUEUED
    setImmediate(this.boundPass)
  }

  private runPass (): void {
    if (this.loopState === LoopState.CLOSED) return
    if (this.clock.virtual && this.clock.now() >= this.virtualLimitMs) {
      this.loopState = LoopState.PAUSED
      this.wakeIdleWaiters()
      return
    }
    const plan = this.plan
    if (!this.scheduler.schedule(plan)) {
      this.flushKvEvents()
      this.goIdle()
      return
    }
    this.loopState = LoopState.IN_PASS
    const ms = passMs(plan.prefillTokens, plan.decodeTokens > 0, plan.usage, this.options.speedupRatio)
    this.lastPassMs = ms
    const clock = this.clock
    if (clock instanceof VirtualClock) {
      clock.advance(ms)
      this.finishPass()
      return
    }
    const now = clock.now()
    const start = this.nextStartMs >= 0 && now - this.nextStartMs < CATCH_UP_LIMIT_MS ? this.nextStartMs : now
    this.passEndMs = start + ms
    const wait = this.passEndMs - now
    if (wait > 0) this.timer = setTimeout(this.boundFinishPass, wait)
    else this.finishPass()
  }

  private finishPass (): void {
    this.timer = null
    if (this.loopState === LoopState.CLOSED) return
    const now = this.clock.now()
    const plan = this.plan
    const pass = this.pass
    pass.scheduledRequests = plan.count
    pass.scheduledPrefillTokens = plan.prefillTokens
    pass.scheduledDecodeTokens = plan.decodeTokens
    pass.preemptions = plan.preemptions
    this.scheduler.commit(plan, now)
    this.nextStartMs = this.clock.virtual ? -1 : this.passEndMs
    pass.passIndex++
    pass.idle = false
    pass.passMs = this.lastPassMs
    this.flushKvEvents()
    this.emitPass(now)
    // A sink or listener may have closed the engine.
    if ((this.loopState as LoopStateValue) === LoopState.CLOSED) return
    if (this.scheduler.hasWork) {
      this.loopState = LoopState.QUEUED
      setImmediate(this.boundPass)
    } else {
      this.goIdle()
    }
  }

  private goIdle (): void {
    this.loopState = LoopState.IDLE
    this.nextStartMs = -1
    this.wakeIdleWaiters()
  }

  private wakeIdleWaiters (): void {
    if (this.idleWaiters.length === 0) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    this.virtualLimitMs = Infinity
    for (const w of waiters) w()
  }

  private flushKvEvents (): void {
    const events = this.events.take()
    if (events === null) return
    const batch = new KvEventBatch(this.kvSeq++, this.clock.unixSeconds(), events, this.options.dpRank)
    for (const l of this.kvListeners) {
      try {
        l(batch)
      } catch (err) {
        process.emitWarning(`mock engine: KV event listener threw: ${(err as Error).message}`)
      }
    }
  }

  private emitPass (now: number): void {
    const pass = this.pass
    const s = this.scheduler
    pass.timestampMs = now
    pass.runningRequests = s.running.length
    pass.waitingRequests = s.numWaiting
    pass.waitingTokens = s.waitingTokens
    pass.kvActiveBlocks = this.blocks.activeBlocks
    pass.kvUsage = this.blocks.usage
    pass.prefixCacheHitRate = s.totals.prefixQueriedTokens === 0 ? 0 : s.totals.prefixHitTokens / s.totals.prefixQueriedTokens
    for (const l of this.passListeners) {
      try {
        l(pass)
      } catch (err) {
        process.emitWarning(`mock engine: pass listener threw: ${(err as Error).message}`)
      }
    }
  }

  private beat (): void {
    if (this.loopState !== LoopState.IDLE) return
    const pass = this.pass
    pass.idle = true
    pass.passMs = 0
    pass.scheduledRequests = 0
    pass.scheduledPrefillTokens = 0
    pass.scheduledDecodeTokens = 0
    pass.preemptions = 0
    this.emitPass(this.clock.now())
  }
}

/** Creates an engine. @example const engine = createMockEngine({ speedupRatio: 10 }) */
export function createMockEngine (opts: MockEngineOptions = {}): MockEngine {
  return new MockEngine(opts)
}

function addListener<T> (list: T[], listener: T): () => void {
  list.push(listener)
  return () => {
    const at = list.indexOf(listener)
    if (at >= 0) list.splice(at, 1)
  }
}

// One prompt gives one answer for a given engine seed, whichever worker serves it and whenever.
function outputSeed (engineSeed: number, prompt: ArrayLike<number>, requestSeed: number): number {
  let h = 0x811c9dc5 ^ engineSeed
  for (let i = 0; i < prompt.length; i++) h = Math.imul(h ^ prompt[i]!, 0x01000193)
  h = Math.imul(h ^ (requestSeed >>> 0), 0x01000193)
  return h >>> 0
}

class CollectingSink implements RequestSink {
  private readonly engine: MockEngine
  private readonly resolve: (r: GenerateResult) => void
  private readonly onText: ((text: string) => void) | null
  private text: string
  private readonly tokenIds: number[]
  private readonly tokenTimesMs: number[]
  detach: (() => void) | null

  constructor (engine: MockEngine, resolve: (r: GenerateResult) => void, onText: ((text: string) => void) | null) {
    this.engine = engine
    this.resolve = resolve
    this.onText = onText
    this.text = ''
    this.tokenIds = []
    this.tokenTimesMs = []
    this.detach = null
  }

  onToken (req: EngineRequest, tokenId: number, text: string): void {
    this.tokenIds.push(tokenId)
    this.tokenTimesMs.push(req.lastTokenMs)
    if (text.length > 0) {
      this.text += text
      this.onText?.(text)
    }
  }

  onFinish (req: EngineRequest, reason: FinishReason, text: string): void {
    if (text.length > 0) {
      this.text += text
      this.onText?.(text)
    }
    // EOS is a generated token that produces no text: count and time it too.
    if (req.numOutputTokens > this.tokenIds.length && req.state !== RequestState.CANCELLED) {
      this.tokenIds.push(req.tokens[req.numTokens - 1]!)
      this.tokenTimesMs.push(req.lastTokenMs)
    }
    this.detach?.()
    this.resolve({
      id: req.id,
      text: this.text,
      tokenIds: this.tokenIds,
      finishReason: reason,
      usage: req.usage,
      arrivalMs: req.arrivalMs,
      tokenTimesMs: this.tokenTimesMs,
      finishMs: this.engine.clock.now()
    })
  }
}
