import { Lane, type Queued } from './lane.js'

export const HIGH = 0
export const MEDIUM = 1
export const LOW = 2
export const CLASS_NAMES = ['high', 'medium', 'low'] as const
export const USER_LANE = 0
export const INTERNAL_LANE = 1
export const LANE_NAMES = ['user', 'internal'] as const

/**
 * - `wdrr`: weighted deficit round robin over the classes (TENT's runtime queue, in tokens).
 * - `strict`: always the most urgent class first (for comparison: low can starve without aging).
 * - `fifo`: one queue in arrival order, priorities ignored, a head that does not fit blocks.
 */
export type QueueMode = 'wdrr' | 'strict' | 'fifo'

/** What a dispatch attempt of one entry came to. */
export const DISPATCHED = 0
/** This entry does not fit any worker's remaining window now; smaller ones might. */
export const NO_FIT = 1
/** No worker has room for anything: stop until a window frees. */
export const FULL = 2
export type DispatchResult = typeof DISPATCHED | typeof NO_FIT | typeof FULL

export interface SchedulerOptions {
  mode: QueueMode
  /** Credit weights of high, medium, low (default 4, 2, 1). */
  weights: readonly [number, number, number]
  /** Tokens of credit a weight of 1 earns per visit. */
  quantum: number
  /** A lane's credit is capped at `capVisits` visits' worth (or its head's size, if larger). */
  capVisits: number
  /** Per class, ms after which a waiting entry moves to the high class; 0: never. */
  agingMs: readonly [number, number, number]
}

export const DEFAULT_SCHEDULER: SchedulerOptions = { mode: 'wdrr', weights: [4, 2, 1], quantum: 4096, capVisits: 2, agingMs: [0, 10_000, 30_000] }

/**
 * The dispatch order of one model's queue: 3 classes x 2 lanes of FIFOs, and the deficit
 * round robin state (credit per lane, the class being visited). Knows nothing of workers: the
 * caller's `tryDispatch` says whether an entry found room. State survives between pumps, so a
 * window that frees one slot at a time still sees the weighted interleave.
 */
export class DispatchScheduler<E extends Queued> {
  readonly lanes: Lane<E>[] = []
  /** Credit per lane, index cls * 2 + lane. */
  readonly credit = new Float64Array(6)
  size = 0
  tokens = 0
  private cursor = 0
  private granted = false
  /** What the current visit granted each lane of its class, and whether it dispatched yet. */
  private readonly visitGrant = new Float64Array(2)
  private visitProgress = false
  /** Which lane of a class goes first on its next visit (alternates). */
  private readonly laneFirst = new Uint8Array(3)
  private pumping = false

  constructor (readonly opts: SchedulerOptions) {
    for (let i = 0; i < 6; i++) this.lanes.push(new Lane<E>())
  }

  enqueue (e: E): void {
    if (this.opts.mode === 'fifo') e.cls = MEDIUM
    else this.preempt(e.cls)
    this.lanes[e.cls * 2 + (this.opts.mode === 'fifo' ? USER_LANE : e.lane)]!.push(e)
    e.queued = true
    this.size++
    this.tokens += e.tokens
  }

  /** Takes a waiting entry out (timeout, client gone). */
  remove (e: E): void {
    if (!e.queued) return
    e.queued = false
    this.lanes[e.cls * 2 + (this.opts.mode === 'fifo' ? USER_LANE : e.lane)]!.forget(e)
    this.size--
    this.tokens -= e.tokens
  }

  /** Moves entries that waited past their class's threshold to the high class, oldest first. */
  age (now: number): number {
    if (this.opts.mode === 'fifo') return 0
    let moved = 0
    for (let cls = MEDIUM; cls <= LOW; cls++) {
      const limit = this.opts.agingMs[cls]!
      if (limit <= 0) continue
      for (let lane = 0; lane < 2; lane++) {
        const from = this.lanes[cls * 2 + lane]!
        for (let e = from.peek(); e !== undefined && now - e.arrival > limit; e = from.peek()) {
          from.shift()
          if (from.empty) this.credit[cls * 2 + lane] = 0
          e.cls = HIGH
          this.preempt(HIGH)
          this.lanes[HIGH * 2 + lane]!.push(e)
          moved++
        }
      }
    }
    return moved
  }

  /**
   * Work arrives in a class more urgent than the one being visited. If the visit reached its
   * class only by passing empty ones and has not dispatched anything yet (it is waiting for a
   * window), it is undone and the round restarts at the new class: otherwise a lone low request
   * that found the windows full would hold the turn, and the high requests arriving behind it
   * would wait for the low class's whole credit. A visit that already dispatched keeps its turn,
   * as deficit round robin must for its fairness bound.
   */
  private preempt (cls: number): void {
    if (this.opts.mode !== 'wdrr' || cls >= this.cursor || !this.granted || this.visitProgress) return
    for (let c = 0; c < this.cursor; c++) {
      if (!this.lanes[c * 2]!.empty || !this.lanes[c * 2 + 1]!.empty) return
    }
    const c = this.cursor
    for (let l = 0; l < 2; l++) this.credit[c * 2 + l] = Math.max(0, this.credit[c * 2 + l]! - this.visitGrant[l]!)
    this.granted = false
    this.cursor = cls
  }

  /**
   * Dispatches as many waiting entries as `tryDispatch` finds room for, in the mode's order.
   * Returns how many left the queue. Re-entrant calls (a dispatch that frees a window at once)
   * return 0; the outer pump carries on.
   */
  pump (tryDispatch: (e: E) => DispatchResult): number {
    if (this.pumping || this.size === 0) return 0
    this.pumping = true
    try {
      switch (this.opts.mode) {
        case 'wdrr': return this.pumpDrr(tryDispatch)
        case 'strict': return this.pumpStrict(tryDispatch)
        default: return this.pumpFifo(tryDispatch)
      }
    } finally {
      this.pumping = false
    }
  }

  private take (li: number, e: E): void {
    const lane = this.lanes[li]!
    lane.shift()
    e.queued = false
    this.size--
    this.tokens -= e.tokens
    if (lane.empty) this.credit[li] = 0
  }

  private pumpDrr (tryDispatch: (e: E) => DispatchResult): number {
    const { weights, quantum, capVisits } = this.opts
    let dispatched = 0
    // Visits in a row that dispatched nothing and left no lane short of credit: after a whole
    // cycle of those, every head is blocked by the windows and pumping again would spin.
    let fruitless = 0
    while (this.size > 0 && fruitless < 3) {
      const c = this.cursor
      if (!this.granted) {
        this.granted = true
        this.visitProgress = false
        const grant = weights[c]! * quantum
        for (let l = 0; l < 2; l++) {
          const li = c * 2 + l
          const head = this.lanes[li]!.peek()
          const before = this.credit[li]!
          if (head !== undefined) this.credit[li] = Math.min(before + grant, Math.max(grant * capVisits, head.tokens))
          this.visitGrant[l] = this.credit[li]! - before
        }
      }
      let progress = false
      let short = false
      const first = this.laneFirst[c]!
      for (let k = 0; k < 2; k++) {
        const li = c * 2 + (first ^ k)
        const lane = this.lanes[li]!
        for (let e = lane.peek(); e !== undefined; e = lane.peek()) {
          if (this.credit[li]! < e.tokens) { short = true; break }
          const r = tryDispatch(e)
          if (r === FULL) return dispatched
          if (r === NO_FIT) break
          this.credit[li] = this.credit[li]! - e.tokens
          this.take(li, e)
          dispatched++
          progress = true
          this.visitProgress = true
        }
      }
      this.laneFirst[c] = first ^ 1
      this.granted = false
      this.cursor = (c + 1) % 3
      fruitless = progress || short ? 0 : fruitless + 1
    }
    return dispatched
  }

  private pumpStrict (tryDispatch: (e: E) => DispatchResult): number {
    let dispatched = 0
    let again = true
    while (again && this.size > 0) {
      again = false
      for (let c = 0; c < 3 && !again; c++) {
        const first = this.laneFirst[c]!
        for (let k = 0; k < 2 && !again; k++) {
          const li = c * 2 + (first ^ k)
          const e = this.lanes[li]!.peek()
          if (e === undefined) continue
          const r = tryDispatch(e)
          if (r === FULL) return dispatched
          if (r === NO_FIT) continue
          this.take(li, e)
          this.laneFirst[c] = first ^ 1
          dispatched++
          // Back to the most urgent class after every dispatch.
          again = true
        }
      }
    }
    return dispatched
  }

  private pumpFifo (tryDispatch: (e: E) => DispatchResult): number {
    let dispatched = 0
    const li = MEDIUM * 2 + USER_LANE
    const lane = this.lanes[li]!
    for (let e = lane.peek(); e !== undefined; e = lane.peek()) {
      if (tryDispatch(e) !== DISPATCHED) break
      this.take(li, e)
      dispatched++
    }
    return dispatched
  }

  /** Waiting entries and tokens per class, for metrics. */
  depthByClass (): { requests: number[], tokens: number[] } {
    const requests = [0, 0, 0]
    const tokens = [0, 0, 0]
    for (let li = 0; li < 6; li++) {
      requests[li >> 1]! += this.lanes[li]!.size
      tokens[li >> 1]! += this.lanes[li]!.tokens
    }
    return { requests, tokens }
  }
}
