/**
 * vLLM-style continuous-batching scheduler over the simulated KV cache. Synchronous and clock-free:
 * `schedule()` plans a pass (at its start), `commit()` applies it (at its end, when the engine's
 * clock says the modeled pass time is over).
 *
 * Per pass (vLLM v1's order):
 * 1. Running requests, in admission order, each gets min(tokens it still needs, budget left) —
 *    a prefill chunk or one decode token. When the KV cache cannot hold them, the least important
 *    not-yet-scheduled running request (largest priority value, then latest arrival) is preempted
 *    by recompute: its blocks are released and it returns to the waiting queue.
 * 2. If nothing was preempted, waiting requests (by priority, then arrival) are admitted while
 *    budget, the sequence cap and free blocks allow; their prefix-cache hit is taken first, and the
 *    last prompt token is always computed (so a full hit still costs one token of prefill).
 * A request samples a token in the pass where its computed tokens reach its length.
 */
import { BlockHasher } from '../kv/hash.js'
import type { BlockManager } from './block-manager.js'
import type { KvEventCollector } from './kv-events.js'
import type { OutputVocab } from './output-vocab.js'
import { EngineRequest, RequestState } from './request.js'
import type { FinishReason } from './request.js'
import { WaitingQueue } from './waiting-queue.js'

export interface SchedulerConfig {
  blockSize: number
  maxNumSeqs: number
  maxNumBatchedTokens: number
  enablePrefixCaching: boolean
  eosProbability: number
  eosTokenId: number
}

/** Hooks for metrics; all optional work happens here so the scheduler stays metric-agnostic. */
export interface SchedulerObserver {
  onAdmitted (req: EngineRequest, queriedTokens: number, hitTokens: number): void
  onPreempted (req: EngineRequest): void
  onToken (req: EngineRequest, nowMs: number): void
  onFinished (req: EngineRequest, nowMs: number): void
}

/** One pass's plan; reused from pass to pass (arrays are overwritten by index, never reallocated). */
export class PassPlan {
  /** Entries [0, count) are this pass's; later slots are null or stale. */
  readonly reqs: Array<EngineRequest | null>
  readonly numNew: number[]
  count: number
  prefillTokens: number
  decodeTokens: number
  preemptions: number
  /** KV usage (active / total blocks) once this pass's blocks are allocated. */
  usage: number

  constructor () {
    this.reqs = []
    this.numNew = []
    this.count = 0
    this.prefillTokens = 0
    this.decodeTokens = 0
    this.preemptions = 0
    this.usage = 0
  }

  get scheduledTokens (): number {
    return this.prefillTokens + this.decodeTokens
  }

  reset (): void {
    this.count = 0
    this.prefillTokens = 0
    this.decodeTokens = 0
    this.preemptions = 0
    this.usage = 0
  }

  add (req: EngineRequest, numNew: number): void {
    this.reqs[this.count] = req
    this.numNew[this.count] = numNew
    this.count++
    if (req.decoding) this.decodeTokens += numNew
    else this.prefillTokens += numNew
  }
}

export class SchedulerTotals {
  preemptions = 0
  prefixQueriedTokens = 0
  prefixHitTokens = 0
  finished = 0
  cancelled = 0
  promptTokens = 0
  generatedTokens = 0
}

export class Scheduler {
  readonly config: SchedulerConfig
  readonly blocks: BlockManager
  readonly events: KvEventCollector
  readonly running: EngineRequest[]
  readonly waiting: WaitingQueue
  readonly totals: SchedulerTotals
  /** Live waiting requests and their tokens (cancelled ones leave the heap lazily). */
  numWaiting: number
  waitingTokens: number
  private readonly hasher: BlockHasher
  private readonly vocab: OutputVocab
  private readonly observer: SchedulerObserver | null

  constructor (config: SchedulerConfig, blocks: BlockManager, events: KvEventCollector, vocab: OutputVocab, observer: SchedulerObserver | null = null) {
    this.config = config
    this.blocks = blocks
    this.events = events
    this.running = []
    this.waiting = new WaitingQueue()
    this.totals = new SchedulerTotals()
    this.numWaiting = 0
    this.waitingTokens = 0
    this.hasher = new BlockHasher(config.blockSize)
    this.vocab = vocab
    this.observer = observer
  }

  get hasWork (): boolean {
    return this.running.length > 0 || this.numWaiting > 0
  }

  add (req: EngineRequest): void {
    if (this.config.enablePrefixCaching) this.hasher.extendSequenceHashes(req.tokens, req.numTokens, req.blockHashes)
    req.state = RequestState.WAITING
    this.waiting.push(req)
    this.numWaiting++
    this.waitingTokens += req.numTokens
    this.totals.promptTokens += req.numPromptTokens
  }

  /** Aborts a waiting or running request and frees its blocks now. False if it already ended. */
  cancel (req: EngineRequest, nowMs: number): boolean {
    if (req.state === RequestState.WAITING) {
      this.numWaiting--
      this.waitingTokens -= req.numTokens
    } else if (req.state === RequestState.RUNNING) {
      const at = this.running.indexOf(req)
      if (at >= 0) this.running.splice(at, 1)
    } else {
      return false
    }
    this.releaseBlocks(req)
    req.state = RequestState.CANCELLED
    req.finishReason = 'abort'
    this.totals.cancelled++
    this.observer?.onFinished(req, nowMs)
    notifyFinish(req, 'abort', '')
    return true
  }

  /** Fills `plan` for the next pass; false when there is nothing to run. */
  schedule (plan: PassPlan): boolean {
    plan.reset()
    const bs = this.config.blockSize
    const running = this.running
    let budget = this.config.maxNumBatchedTokens
    let preempted = false

    let i = 0
    while (i < running.length && budget > 0) {
      const req = running[i]!
      const numNew = Math.min(req.numTokens - req.numComputed, budget)
      let self = false
      while (!this.ensureBlocks(req, req.numComputed + numNew)) {
        const victim = this.pickVictim(i)
        this.preempt(victim)
        plan.preemptions++
        preempted = true
        if (victim === req) {
          self = true
          break
        }
      }
      if (self) continue
      plan.add(req, numNew)
      budget -= numNew
      i++
    }

    if (!preempted) {
      const prefixCaching = this.config.enablePrefixCaching
      while (budget > 0 && running.length < this.config.maxNumSeqs) {
        const req = this.waiting.peek()
        if (req === null) break
        let hitBlocks = 0
        let idleHits = 0
        if (prefixCaching) {
          // A preempted request has output tokens whose blocks were never hashed yet.
          this.hasher.extendSequenceHashes(req.tokens, req.numTokens, req.blockHashes)
          hitBlocks = this.blocks.countCachedPrefix(req.blockHashes, Math.floor((req.numTokens - 1) / bs))
          if (hitBlocks > 0) idleHits = this.blocks.countIdleCached(req.blockHashes, hitBlocks)
        }
        const hitTokens = hitBlocks * bs
        const numNew = Math.min(req.numTokens - hitTokens, budget)
        const need = Math.ceil((hitTokens + numNew) / bs) - hitBlocks
        if (need > this.blocks.freeBlocks - idleHits) break
        this.waiting.pop()
        this.numWaiting--
        this.waitingTokens -= req.numTokens
        // Hits first: taking them out of the LRU keeps the allocations below from evicting them.
        for (let h = 0; h < hitBlocks; h++) req.blocks.push(this.blocks.acquireCached(req.blockHashes[h]!))
        for (let n = 0; n < need; n++) req.blocks.push(this.blocks.allocate())
        req.numCachedBlocks = hitBlocks
        req.numComputed = hitTokens
        if (req.numCachedTokens < 0) req.numCachedTokens = hitTokens
        this.totals.prefixQueriedTokens += req.numTokens
        this.totals.prefixHitTokens += hitTokens
        this.observer?.onAdmitted(req, req.numTokens, hitTokens)
        req.state = RequestState.RUNNING
        running.push(req)
        plan.add(req, numNew)
        budget -= numNew
      }
    }
    plan.usage = this.blocks.usage
    return plan.count > 0
  }

  /** Applies a planned pass at time `nowMs`: advances requests, caches full blocks, samples tokens. */
  commit (plan: PassPlan, nowMs: number): void {
    for (let k = 0; k < plan.count; k++) {
      const req = plan.reqs[k]!
      // Cancelled while the pass ran.
      if (req.state !== RequestState.RUNNING) continue
      req.numComputed += plan.numNew[k]!
      if (this.config.enablePrefixCaching) this.cacheFullBlocks(req)
      if (req.numComputed >= req.numTokens) this.sample(req, nowMs)
    }
    const running = this.running
    let w = 0
    for (let r = 0; r < running.length; r++) {
      const req = running[r]!
      if (req.state === RequestState.RUNNING) running[w++] = req
    }
    running.length = w
    // Finished requests must not stay reachable through the reused plan.
    for (let k = 0; k < plan.count; k++) plan.reqs[k] = null
  }

  /** Ends every request (engine closing). */
  abortAll (nowMs: number): void {
    for (const req of [...this.running, ...this.waiting.live()]) this.cancel(req, nowMs)
  }

  private ensureBlocks (req: EngineRequest, tokens: number): boolean {
    const need = Math.ceil(tokens / this.config.blockSize) - req.blocks.length
    if (need <= 0) return true
    if (need > this.blocks.freeBlocks) return false
    for (let n = 0; n < need; n++) req.blocks.push(this.blocks.allocate())
    return true
  }

  // vLLM pops the newest running request; with priorities, the least important one.
  private pickVictim (from: number): EngineRequest {
    const running = this.running
    let best = running[running.length - 1]!
    for (let j = running.length - 2; j >= from; j--) {
      const r = running[j]!
      if (r.priority > best.priority || (r.priority === best.priority && r.arrival > best.arrival)) best = r
    }
    return best
  }

  private preempt (req: EngineRequest): void {
    const at = this.running.indexOf(req)
    this.running.splice(at, 1)
    this.releaseBlocks(req)
    req.numComputed = 0
    req.decoding = false
    req.numPreemptions++
    this.totals.preemptions++
    this.observer?.onPreempted(req)
    this.add(req)
    // add() counted the prompt again; a preemption is not new work.
    this.totals.promptTokens -= req.numPromptTokens
  }

  private releaseBlocks (req: EngineRequest): void {
    if (req.blocks.length > 0) this.blocks.release(req.blocks)
    req.blocks.length = 0
    req.numCachedBlocks = 0
  }

  private cacheFullBlocks (req: EngineRequest): void {
    const bs = this.config.blockSize
    const full = Math.floor(req.numComputed / bs)
    if (full <= req.numCachedBlocks) return
    this.hasher.extendSequenceHashes(req.tokens, full * bs, req.blockHashes)
    let runStart = -1
    for (let b = req.numCachedBlocks; b < full; b++) {
      if (this.blocks.register(req.blocks[b]!, req.blockHashes[b]!)) {
        if (runStart < 0) runStart = b
      } else if (runStart >= 0) {
        this.emitStored(req, runStart, b)
        runStart = -1
      }
    }
    if (runStart >= 0) this.emitStored(req, runStart, full)
    req.numCachedBlocks = full
  }

  private emitStored (req: EngineRequest, from: number, to: number): void {
    const bs = this.config.blockSize
    this.events.stored(
      req.blockHashes.slice(from, to),
      from > 0 ? req.blockHashes[from - 1]! : null,
      req.tokens.slice(from * bs, to * bs),
      bs
    )
  }

  private sample (req: EngineRequest, nowMs: number): void {
    const eos = !req.ignoreEos && req.numOutputTokens >= req.minTokens && this.config.eosProbability > 0 &&
      req.random() < this.config.eosProbability
    const vocab = this.vocab
    const pick = eos ? -1 : Math.floor(req.random() * vocab.size)
    const tokenId = eos ? this.config.eosTokenId : vocab.ids[pick]!
    req.appendToken(tokenId)
    req.decoding = true
    if (req.firstTokenMs < 0) req.firstTokenMs = nowMs
    this.totals.generatedTokens++
    this.observer?.onToken(req, nowMs)
    req.lastTokenMs = nowMs
    if (eos) {
      this.finish(req, 'stop', req.stop === null ? '' : req.stop.flush(), nowMs)
      return
    }
    const piece = vocab.pieces[pick]!
    let stopped = false
    let text = piece
    if (req.stop !== null) {
      stopped = req.stop.push(piece)
      text = req.stop.released
    }
    notifyToken(req, tokenId, text)
    if (req.state !== RequestState.RUNNING) return
    if (stopped) this.finish(req, 'stop', '', nowMs)
    else if (req.numOutputTokens >= req.maxTokens) this.finish(req, 'length', req.stop === null ? '' : req.stop.flush(), nowMs)
  }

  private finish (req: EngineRequest, reason: FinishReason, text: string, nowMs: number): void {
    this.releaseBlocks(req)
    req.state = RequestState.FINISHED
    req.finishReason = reason
    this.totals.finished++
    this.observer?.onFinished(req, nowMs)
    notifyFinish(req, reason, text)
  }
}

// A sink that throws must not leave the scheduler half-updated.
function notifyToken (req: EngineRequest, tokenId: number, text: string): void {
  try {
    req.sink.onToken(req, tokenId, text)
  } catch (err) {
    process.emitWarning(`mock engine: onToken of ${req.id} threw: ${(err as Error).message}`)
  }
}

function notifyFinish (req: EngineRequest, reason: FinishReason, text: string): void {
  try {
    req.sink.onFinish(req, reason, text)
  } catch (err) {
    process.emitWarning(`mock engine: onFinish of ${req.id} threw: ${(err as Error).message}`)
  }
}
