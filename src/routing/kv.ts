import { performance } from 'node:perf_hooks'
import { BlockKeyer, BlockKeys, KvIndex, OverlapScores } from '../kv/index.js'
import type { Worker } from '../registry/worker.js'
import { isExcluded, randomIndex, type Policy, type RouteRequest } from './policy.js'

export interface KvPolicyOptions {
  blockSize: number
  /** w in Dynamo's cost: weight of prefill work against decode load. */
  overlapWeight: number
  /** 0: lowest cost wins; > 0: sample with p ∝ exp(-normalised cost / T). */
  temperature: number
  /** Record routed blocks for workers without an event source (approximate mode). */
  approximate: 'off' | 'fallback' | 'always'
  /** Lifetime of an approximately recorded block. */
  approxTtlMs: number
  /**
   * 'dynamo': Dynamo's cost in blocks (DESIGN 5.1, the `kv_dynamo` baseline). 'predicted': the
   * predicted time to first token in ms (see `predictedCost`), the improved `kv`.
   */
  costModel: 'dynamo' | 'predicted'
  /** Prefill time per pass of T new tokens, ms: a·T² + b·T + c (Dynamo's fit of the mock engine, DESIGN 5.4). */
  prefillFit: readonly [number, number, number]
  /** The engines' token budget per pass (chunked prefill): a long prompt takes ceil(T / budget) passes. */
  maxBatchedTokens: number
  /** Decode time per pass at KV usage u: a·u² + b·u + c ms, at least 1 (DESIGN 5.4). */
  decodeFit: readonly [number, number, number]
  /** KV blocks per worker, to turn active blocks into usage; null: usage is taken as 0. */
  kvCapacityBlocks: number | null
  /**
   * Bounded load against herding on a hot prefix: a worker with more than (1 + ε) × mean + 1
   * requests in flight is skipped while a worker under the bound exists. 0 disables the guard.
   */
  boundedLoad: number
  /**
   * 'predicted': extra weight of this request's own uncached prefill. Recomputing a prefix that
   * another worker holds costs this request its TTFT and also takes that GPU time from every
   * request queued behind it there; 0 counts only this request's TTFT.
   */
  recomputeWeight: number
}

export const KV_POLICY_DEFAULTS: KvPolicyOptions = {
  blockSize: 64,
  overlapWeight: 1,
  temperature: 0,
  approximate: 'fallback',
  approxTtlMs: 120_000,
  costModel: 'dynamo',
  prefillFit: [4.209989e-7, 1.518344e-2, 16.50142],
  maxBatchedTokens: 8192,
  decodeFit: [-25.74, 54.01, 5.74],
  kvCapacityBlocks: null,
  boundedLoad: 0,
  recomputeWeight: 0
}

/** The improved policy's defaults (`kv`): predicted TTFT, recompute counted twice (see recomputeWeight), the herding guard on. */
export const KV_PREDICTED_DEFAULTS: Partial<KvPolicyOptions> = { costModel: 'predicted', boundedLoad: 1, recomputeWeight: 1 }

/**
 * Time (µs) and prediction figures of the last decision and their running totals, for /metrics:
 * plain numbers, updated in place (no allocation per decision). Tokenizing happens in the
 * frontend before `select()` and is not counted here.
 */
export class KvDecisionStats {
  decisions = 0
  /** Placements made by someone else (session affinity) and charged through `assign()`: not timed. */
  assigned = 0
  /** Sums over all decisions (select() calls), µs. */
  hashUs = 0
  lookupUs = 0
  selectUs = 0
  /** Sums of the chosen worker's predicted overlap and of the prompts' full blocks (decisions and assignments). */
  predictedBlocks = 0
  promptBlocks = 0
  /** Decisions the bounded-load guard changed (the cheapest worker was over the bound). */
  guarded = 0
  /** The last decision (observe these into histograms right after `select()`). */
  lastHashUs = 0
  lastLookupUs = 0
  lastSelectUs = 0
  /** Overlap blocks / request blocks of the last decision (0 for a prompt under one block). */
  lastPredictedHitRatio = 0
  /** The last decision's predicted TTFT in model ms ('predicted' cost model; 0 otherwise). */
  lastPredictedMs = 0
  /** Measured / predicted TTFT scale the 'predicted' model calibrates itself with, and its samples. */
  timeScale = 1
  calibrations = 0
}

/** What the index knows of each worker's events: true when a real event source feeds it. */
export interface KvEventCoverage {
  hasEvents (workerId: string): boolean
}

interface ApproxEntry { expires: number, workerId: string, engine: Int32Array, count: number }

/** When a request was routed and what its TTFT was predicted to be (model ms), for calibration. */
interface Prediction { at: number, ms: number }

/**
 * KV-aware routing (DESIGN 5.1). Overlaps come from the KV index (fed by engine events, or, for
 * workers without events, by recording what was routed to them: approximate mode, TTL
 * `approxTtlMs`). Active load is tracked per worker from dispatch to first token (prefill) and to
 * the end (decode). Two cost models:
 *
 * - `dynamo` (Dynamo's, the `kv_dynamo` baseline): cost = w × prefill_tokens / block_size +
 *   decode_blocks, prefill_tokens = tokens still prefilling there + this request's tokens not
 *   cached there; decode_blocks = blocks active there + this request's blocks not cached there.
 * - `predicted` (the improved `kv`): the predicted time to first token on the worker, in ms of the
 *   engine's timing fit: the prefill work queued there (decayed as time passes, at a rate
 *   calibrated from measured TTFTs, never above what is still waiting for its first token) plus
 *   this request's uncached tokens in chunked passes, each pass slowed by the worker's decode load.
 *   Dynamo's decode-block term counts a long context decoding as much as the same tokens still to
 *   prefill; on long-prompt traces it dominates the cost and sends requests away from their cache.
 *   A bounded-load guard (`boundedLoad`) keeps one hot prefix from herding everyone onto a worker.
 *
 * Lowest cost wins, ties at random; temperature > 0 samples with p ∝ exp(−normalised cost / T).
 */
export class KvPolicy implements Policy {
  readonly name: string
  readonly needs = 'tokens' as const
  readonly index: KvIndex
  readonly stats = new KvDecisionStats()
  private readonly opts: KvPolicyOptions
  private readonly predicted: boolean
  private readonly coverage: KvEventCoverage | null
  private readonly scores = new OverlapScores()
  private readonly keyer: BlockKeyer
  private readonly keys = new BlockKeys()
  private prefill = new Float64Array(64)
  private decode = new Float64Array(64)
  /** 'predicted': prefill tokens still queued (decayed estimate) and when it was last updated. */
  private backlog = new Float64Array(64)
  private backlogAt = new Float64Array(64)
  /** The worker's remote prefill (replica sync) when last looked at: growth joins the backlog. */
  private remoteSeen = new Float64Array(64)
  /** Model ms of one full-budget prefill pass: the drain rate is maxBatchedTokens per that (× timeScale). */
  private readonly fullPassMs: number
  private readonly predictions = new WeakMap<RouteRequest, Prediction>()
  private readonly approx: ApproxEntry[] = []
  private approxHead = 0
  /** The bounded-load guard's bound (requests in flight) for the current decision. */
  private loadBound = Infinity

  constructor (name: string, index: KvIndex, coverage: KvEventCoverage | null, opts: Partial<KvPolicyOptions> = {}) {
    this.name = name
    this.index = index
    this.coverage = coverage
    this.opts = { ...KV_POLICY_DEFAULTS, ...opts, blockSize: index.blockSize }
    this.predicted = this.opts.costModel === 'predicted'
    this.keyer = new BlockKeyer(index.blockSize)
    this.fullPassMs = prefillMs(this.opts, this.opts.maxBatchedTokens)
  }

  /** Counters for metrics (kept for callers of the first version). */
  get decisions (): number { return this.stats.decisions }
  get predictedBlocks (): number { return this.stats.predictedBlocks }
  get promptBlocks (): number { return this.stats.promptBlocks }

  setWorkers (workers: readonly Worker[]): void {
    let max = 0
    for (const w of workers) if (w.slot > max) max = w.slot
    if (max >= this.prefill.length) {
      const n = Math.max(max + 1, this.prefill.length * 2)
      this.prefill = grow(this.prefill, n)
      this.decode = grow(this.decode, n)
      this.backlog = grow(this.backlog, n)
      this.backlogAt = grow(this.backlogAt, n)
      this.remoteSeen = grow(this.remoteSeen, n)
    }
  }

  select (workers: readonly Worker[], req: RouteRequest): Worker | null {
    if (workers.length === 0) return null
    const t0 = performance.now()
    this.expireApprox(t0)
    const tokens = req.tokens
    const bs = this.opts.blockSize
    const isl = tokens === null ? req.tokenEstimate : tokens.length
    const reqBlocks = Math.floor(isl / bs)
    let t1 = t0
    if (tokens !== null) {
      const keys = this.keyer.keys(tokens, this.keys)
      t1 = performance.now()
      this.index.lookup(keys, this.scores)
    } else this.scores.reset(this.index.slotCapacity)
    const t2 = performance.now()
    this.loadBound = this.opts.boundedLoad > 0 ? boundOf(workers, req, this.opts.boundedLoad) : Infinity
    let best: Worker | null = null
    let bestCost = Infinity
    let bestOverlap = 0
    let guarded = false
    if (this.opts.temperature > 0) [best, bestOverlap, bestCost] = this.sample(workers, req, isl, reqBlocks, t2)
    else {
      // Two running minima: among workers under the load bound, and among those over it (used
      // only when every allowed worker is over it). Ties at random (reservoir sampling).
      let ties = 0
      let over: Worker | null = null
      let overCost = Infinity
      let overOverlap = 0
      let overTies = 0
      for (let i = 0; i < workers.length; i++) {
        const wk = workers[i]!
        if (isExcluded(req, wk)) continue
        const overlap = this.overlapOf(wk, reqBlocks)
        const cost = this.cost(wk, overlap, isl, reqBlocks, t2)
        // The ceiling holds after placement: this request must fit under it too.
        if (wk.inflightRequests + 1 <= this.loadBound) {
          if (cost < bestCost) { best = wk; bestCost = cost; bestOverlap = overlap; ties = 1 } else if (cost === bestCost && randomIndex(++ties) === 0) { best = wk; bestOverlap = overlap }
        } else if (cost < overCost) { over = wk; overCost = cost; overOverlap = overlap; overTies = 1 } else if (cost === overCost && randomIndex(++overTies) === 0) { over = wk; overOverlap = overlap }
      }
      if (best === null) { best = over; bestCost = overCost; bestOverlap = overOverlap } else guarded = overCost < bestCost
    }
    if (best === null) return null
    req.policyPrefill = isl - bestOverlap * bs
    req.policyBlocks = reqBlocks - bestOverlap + 1
    if (this.predicted) this.predictions.set(req, { at: t2, ms: bestCost })
    const t3 = performance.now()
    const st = this.stats
    st.decisions++
    st.predictedBlocks += bestOverlap
    st.promptBlocks += reqBlocks
    if (guarded) st.guarded++
    st.lastHashUs = (t1 - t0) * 1000
    st.lastLookupUs = (t2 - t1) * 1000
    st.lastSelectUs = (t3 - t2) * 1000
    st.hashUs += st.lastHashUs
    st.lookupUs += st.lastLookupUs
    st.selectUs += st.lastSelectUs
    st.lastPredictedHitRatio = reqBlocks === 0 ? 0 : bestOverlap / reqBlocks
    st.lastPredictedMs = this.predicted ? bestCost : 0
    return best
  }

  /**
   * The charge `select()` would have made had it picked `worker` (session affinity picks the
   * worker itself but the load accounting must still see the request).
   */
  assign (worker: Worker, req: RouteRequest): void {
    const tokens = req.tokens
    const bs = this.opts.blockSize
    const isl = tokens === null ? req.tokenEstimate : tokens.length
    const reqBlocks = Math.floor(isl / bs)
    if (tokens !== null) this.index.lookup(this.keyer.keys(tokens, this.keys), this.scores)
    else this.scores.reset(this.index.slotCapacity)
    const overlap = this.overlapOf(worker, reqBlocks)
    req.policyPrefill = isl - overlap * bs
    req.policyBlocks = reqBlocks - overlap + 1
    const now = performance.now()
    if (this.predicted) this.predictions.set(req, { at: now, ms: this.cost(worker, overlap, isl, reqBlocks, now) })
    this.stats.assigned++
    this.stats.predictedBlocks += overlap
    this.stats.promptBlocks += reqBlocks
  }

  /** Leading blocks of this request the worker holds (from the last lookup). */
  private overlapOf (wk: Worker, reqBlocks: number): number {
    const slot = this.index.slotOf(wk.id)
    return slot < 0 ? 0 : Math.min(this.scores.get(slot), reqBlocks)
  }

  private cost (wk: Worker, overlap: number, isl: number, reqBlocks: number, now: number): number {
    if (this.predicted) return this.predictedCost(wk, isl - overlap * this.opts.blockSize, reqBlocks - overlap, now)
    const bs = this.opts.blockSize
    const s = wk.slot
    return this.opts.overlapWeight * (this.prefill[s]! + wk.remotePrefillTokens + isl - overlap * bs) / bs + this.decode[s]! + wk.remoteDecodeBlocks + (reqBlocks - overlap)
  }

  /**
   * Predicted TTFT (model ms) of a request with `newTokens` uncached tokens on the worker in
   * `slot`: the queued prefill tokens and its own go through chunked passes together (requests
   * share a pass, so the fixed cost per pass is paid per budget, not per request), each pass also
   * paying the decode step of the requests running there (decode time grows with KV usage).
   * Other gateways' requests (replica sync) join the same decayed backlog when they appear.
   */
  predictedCost (wk: Worker, newTokens: number, newBlocks: number, now: number): number {
    const slot = wk.slot
    const tokens = this.backlogOf(wk, now) + newTokens
    const passes = Math.ceil(tokens / this.opts.maxBatchedTokens)
    const cap = this.opts.kvCapacityBlocks
    const active = this.decode[slot]! + wk.remoteDecodeBlocks
    const u = cap === null ? 0 : Math.min(1, (active + newBlocks) / cap)
    const ttft = prefillMs(this.opts, tokens) + (active > 0 ? passes * decodeMs(this.opts, u) : 0)
    return this.opts.recomputeWeight === 0 ? ttft : ttft + this.opts.recomputeWeight * prefillMs(this.opts, newTokens)
  }

  /**
   * Prefill tokens queued on `slot` now: the last estimate drained at one full pass per pass time
   * (calibrated to measured TTFTs), never above the tokens still waiting for their first token.
   */
  private backlogOf (wk: Worker, now: number): number {
    const slot = wk.slot
    const remote = wk.remotePrefillTokens
    if (remote > this.remoteSeen[slot]!) {
      // Another gateway queued prefill here since we last looked: it drains like our own.
      this.backlog[slot] = this.drained(slot, now, remote) + remote - this.remoteSeen[slot]!
      this.backlogAt[slot] = now
    }
    this.remoteSeen[slot] = remote
    return this.drained(slot, now, remote)
  }

  /** The backlog estimate drained up to `now`, never above the tokens still waiting for a first token. */
  private drained (slot: number, now: number, remote: number): number {
    const drainedTokens = (now - this.backlogAt[slot]!) / (this.fullPassMs * this.stats.timeScale) * this.opts.maxBatchedTokens
    const left = this.backlog[slot]! - drainedTokens
    const cap = this.prefill[slot]! + remote
    return left <= 0 ? 0 : left < cap ? left : cap
  }

  /** Temperature sampling over normalised costs (allocates; only used when temperature > 0). */
  private sample (workers: readonly Worker[], req: RouteRequest, isl: number, reqBlocks: number, now: number): [Worker | null, number, number] {
    const cand: Array<{ w: Worker, cost: number, overlap: number }> = []
    for (const wk of workers) {
      if (isExcluded(req, wk)) continue
      const overlap = this.overlapOf(wk, reqBlocks)
      cand.push({ w: wk, overlap, cost: this.cost(wk, overlap, isl, reqBlocks, now) })
    }
    if (cand.length === 0) return [null, 0, 0]
    const under = cand.filter(c => c.w.inflightRequests + 1 <= this.loadBound)
    const pool = under.length > 0 ? under : cand
    const min = Math.min(...pool.map(c => c.cost))
    const max = Math.max(...pool.map(c => c.cost))
    const span = max - min || 1
    const weights = pool.map(c => Math.exp(-((c.cost - min) / span) / this.opts.temperature))
    let r = Math.random() * weights.reduce((a, b) => a + b, 0)
    for (let i = 0; i < pool.length; i++) { r -= weights[i]!; if (r <= 0) return [pool[i]!.w, pool[i]!.overlap, pool[i]!.cost] }
    const last = pool[pool.length - 1]!
    return [last.w, last.overlap, last.cost]
  }

  onRouted (worker: Worker, req: RouteRequest): void {
    const s = worker.slot
    if (this.predicted) {
      const now = performance.now()
      this.backlog[s] = this.backlogOf(worker, now) + req.policyPrefill
      this.backlogAt[s] = now
    }
    this.prefill[s]! += req.policyPrefill
    this.decode[s]! += req.policyBlocks
    if (req.tokens !== null && this.opts.approximate !== 'off' && (this.opts.approximate === 'always' || this.coverage === null || !this.coverage.hasEvents(worker.id))) this.record(worker, req.tokens)
  }

  onFirstToken (worker: Worker, req: RouteRequest): void {
    this.endPrefill(worker, req, true)
  }

  onFinished (worker: Worker, req: RouteRequest): void {
    this.endPrefill(worker, req, false)
    this.decode[worker.slot]! -= req.policyBlocks
    req.policyBlocks = 0
  }

  /** The request's prefill is over (first token) or abandoned (ended before it). */
  private endPrefill (worker: Worker, req: RouteRequest, measured: boolean): void {
    const s = worker.slot
    if (this.predicted) {
      const p = this.predictions.get(req)
      if (p !== undefined) {
        this.predictions.delete(req)
        if (measured && p.ms > 0) calibrate(this.stats, (performance.now() - p.at) / p.ms)
      }
    }
    this.prefill[s]! -= req.policyPrefill
    req.policyPrefill = 0
  }

  /** Approximate mode: the routed prompt's blocks count as cached on the worker until the TTL. */
  private record (worker: Worker, tokens: Uint32Array): void {
    const keys = this.keyer.keys(tokens, this.keys)
    const count = keys.length
    if (count === 0) return
    // Our local keys repeat across positions; chain them so each block gets a unique id, as an
    // engine's sequence hash would.
    const engine = new Int32Array(2 * count)
    let hi = 0x12345678
    let lo = 0x9abcdef0 | 0
    for (let i = 0; i < count; i++) {
      hi = Math.imul(hi ^ keys.data[2 * i]!, 0x85ebca6b) ^ (lo >>> 13)
      lo = Math.imul(lo ^ keys.data[2 * i + 1]!, 0xc2b2ae35) ^ (hi >>> 16)
      engine[2 * i] = hi
      engine[2 * i + 1] = lo
    }
    const slot = this.index.addWorker(worker.id)
    this.index.storeBlocks(slot, engine, keys.data, count, null)
    this.approx.push({ expires: performance.now() + this.opts.approxTtlMs, workerId: worker.id, engine, count })
  }

  private expireApprox (now: number): void {
    const q = this.approx
    while (this.approxHead < q.length && q[this.approxHead]!.expires <= now) {
      const e = q[this.approxHead++]!
      const slot = this.index.slotOf(e.workerId)
      if (slot >= 0) this.index.removeBlocks(slot, e.engine, e.count)
    }
    if (this.approxHead > 1024 && this.approxHead * 2 > q.length) { q.splice(0, this.approxHead); this.approxHead = 0 }
  }

  close (): void {}
}

function grow (a: Float64Array, n: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(n)
  b.set(a)
  return b
}

/** Chunked prefill of `tokens` new tokens: full-budget passes plus the rest, each by the fit. */
export function prefillMs (o: KvPolicyOptions, tokens: number): number {
  if (tokens <= 0) return 0
  const [a, b, c] = o.prefillFit
  const budget = o.maxBatchedTokens
  const full = Math.floor(tokens / budget)
  const rest = tokens - full * budget
  const pass = (t: number): number => a * t * t + b * t + c
  return full * pass(budget) + (rest > 0 ? pass(rest) : 0)
}

export function decodeMs (o: KvPolicyOptions, u: number): number {
  const [a, b, c] = o.decodeFit
  return Math.max(1, a * u * u + b * u + c)
}

/** EWMA of measured / predicted TTFT, clamped: the drain rate of predicted backlogs. */
function calibrate (st: KvDecisionStats, ratio: number): void {
  if (!Number.isFinite(ratio) || ratio <= 0) return
  const r = Math.min(1000, Math.max(0.001, ratio))
  st.timeScale = st.calibrations++ === 0 ? r : st.timeScale * 0.9 + r * 0.1
}

/** The bounded-load guard's ceiling on in-flight requests: (1 + ε) × mean + 1 over the allowed workers. */
function boundOf (workers: readonly Worker[], req: RouteRequest, eps: number): number {
  let sum = 0
  let n = 0
  for (let i = 0; i < workers.length; i++) {
    const w = workers[i]!
    if (isExcluded(req, w)) continue
    sum += w.inflightRequests
    n++
  }
  return n === 0 ? Infinity : (1 + eps) * (sum + 1) / n + 1
}
