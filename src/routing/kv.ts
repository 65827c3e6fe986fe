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
}

export const KV_POLICY_DEFAULTS: KvPolicyOptions = { blockSize: 64, overlapWeight: 1, temperature: 0, approximate: 'fallback', approxTtlMs: 120_000 }

/** What the index knows of each worker's events: true when a real event source feeds it. */
export interface KvEventCoverage {
  hasEvents (workerId: string): boolean
}

interface ApproxEntry { expires: number, workerId: string, engine: Int32Array, count: number }

/**
 * Dynamo's KV-aware cost (DESIGN 5.1): for each candidate worker
 *   cost = w × prefill_tokens / block_size + decode_blocks
 * prefill_tokens = tokens still prefilling there + this request's tokens not cached there;
 * decode_blocks = blocks active there + this request's blocks not cached there. Lowest cost wins,
 * ties at random. Overlaps come from the KV index (fed by engine events, or, for workers without
 * events, by recording what was routed to them: approximate mode, TTL `approxTtlMs`). Active
 * load is tracked per worker from dispatch to first token (prefill) and to the end (decode).
 */
export class KvPolicy implements Policy {
  readonly name: string
  readonly needs = 'tokens' as const
  readonly index: KvIndex
  private readonly opts: KvPolicyOptions
  private readonly coverage: KvEventCoverage | null
  private readonly scores = new OverlapScores()
  private readonly keyer: BlockKeyer
  private readonly keys = new BlockKeys()
  private prefill = new Float64Array(64)
  private decode = new Float64Array(64)
  private readonly approx: ApproxEntry[] = []
  private approxHead = 0
  /** Counters for metrics: decisions, and the sum of predicted overlap (blocks) and prompt blocks. */
  decisions = 0
  predictedBlocks = 0
  promptBlocks = 0

  constructor (name: string, index: KvIndex, coverage: KvEventCoverage | null, opts: Partial<KvPolicyOptions> = {}) {
    this.name = name
    this.index = index
    this.coverage = coverage
    this.opts = { ...KV_POLICY_DEFAULTS, ...opts, blockSize: index.blockSize }
    this.keyer = new BlockKeyer(index.blockSize)
  }

  setWorkers (workers: readonly Worker[]): void {
    let max = 0
    for (const w of workers) if (w.slot > max) max = w.slot
    if (max >= this.prefill.length) {
      const n = Math.max(max + 1, this.prefill.length * 2)
      const p = new Float64Array(n); p.set(this.prefill); this.prefill = p
      const d = new Float64Array(n); d.set(this.decode); this.decode = d
    }
  }

  select (workers: readonly Worker[], req: RouteRequest): Worker | null {
    if (workers.length === 0) return null
    this.expireApprox(performance.now())
    const tokens = req.tokens
    const bs = this.opts.blockSize
    const isl = tokens === null ? req.tokenEstimate : tokens.length
    const reqBlocks = Math.floor(isl / bs)
    if (tokens !== null) this.index.lookupTokens(tokens, this.scores)
    else this.scores.reset(this.index.slotCapacity)
    let best: Worker | null = null
    let bestCost = Infinity
    let bestOverlap = 0
    let ties = 0
    const sampling = this.opts.temperature > 0
    for (let i = 0; i < workers.length; i++) {
      const wk = workers[i]!
      if (isExcluded(req, wk)) continue
      if (sampling) continue
      const overlap = this.overlapOf(wk, reqBlocks)
      const cost = this.cost(wk, overlap, isl, reqBlocks)
      if (cost < bestCost) { best = wk; bestCost = cost; bestOverlap = overlap; ties = 1 } else if (cost === bestCost && randomIndex(++ties) === 0) { best = wk; bestOverlap = overlap }
    }
    if (sampling) [best, bestOverlap] = this.sample(workers, req, isl, reqBlocks)
    if (best === null) return null
    this.decisions++
    this.predictedBlocks += bestOverlap
    this.promptBlocks += reqBlocks
    req.policyPrefill = isl - bestOverlap * bs
    req.policyBlocks = reqBlocks - bestOverlap + 1
    return best
  }

  /** Leading blocks of this request the worker holds (from the last lookup). */
  private overlapOf (wk: Worker, reqBlocks: number): number {
    const slot = this.index.slotOf(wk.id)
    return slot < 0 ? 0 : Math.min(this.scores.get(slot), reqBlocks)
  }

  /** Dynamo's cost: w x prefill tokens / block size + decode blocks, with this request added. */
  private cost (wk: Worker, overlap: number, isl: number, reqBlocks: number): number {
    const bs = this.opts.blockSize
    return this.opts.overlapWeight * (this.prefill[wk.slot]! + isl - overlap * bs) / bs + this.decode[wk.slot]! + (reqBlocks - overlap)
  }

  /** Temperature sampling over normalised costs (allocates; only used when temperature > 0). */
  private sample (workers: readonly Worker[], req: RouteRequest, isl: number, reqBlocks: number): [Worker | null, number] {
    const cand: Array<{ w: Worker, cost: number, overlap: number }> = []
    for (const wk of workers) {
      if (isExcluded(req, wk)) continue
      const overlap = this.overlapOf(wk, reqBlocks)
      cand.push({ w: wk, overlap, cost: this.cost(wk, overlap, isl, reqBlocks) })
    }
    if (cand.length === 0) return [null, 0]
    const min = Math.min(...cand.map(c => c.cost))
    const max = Math.max(...cand.map(c => c.cost))
    const span = max - min || 1
    const weights = cand.map(c => Math.exp(-((c.cost - min) / span) / this.opts.temperature))
    let r = Math.random() * weights.reduce((a, b) => a + b, 0)
    for (let i = 0; i < cand.length; i++) { r -= weights[i]!; if (r <= 0) return [cand[i]!.w, cand[i]!.overlap] }
    const last = cand[cand.length - 1]!
    return [last.w, last.overlap]
  }

  onRouted (worker: Worker, req: RouteRequest): void {
    this.prefill[worker.slot]! += req.policyPrefill
    this.decode[worker.slot]! += req.policyBlocks
    if (req.tokens !== null && this.opts.approximate !== 'off' && (this.opts.approximate === 'always' || this.coverage === null || !this.coverage.hasEvents(worker.id))) this.record(worker, req.tokens)
  }

  onFirstToken (worker: Worker, req: RouteRequest): void {
    this.prefill[worker.slot]! -= req.policyPrefill
    req.policyPrefill = 0
  }

  onFinished (worker: Worker, req: RouteRequest): void {
    this.prefill[worker.slot]! -= req.policyPrefill
    this.decode[worker.slot]! -= req.policyBlocks
    req.policyPrefill = 0
    req.policyBlocks = 0
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
