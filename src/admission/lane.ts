/** What a lane holds: the scheduler reads these fields, the controller adds its own. */
export interface Queued {
  /** Token weight: prompt tokens plus expected output tokens. */
  readonly tokens: number
  /** When the request first arrived (performance.now() ms); keeps its age across requeues. */
  readonly arrival: number
  /** Arrival order, to break ties between equal `arrival` stamps. */
  readonly seq: number
  /** Current class (0 high, 1 medium, 2 low); aging moves it to 0. */
  cls: number
  /** 0 user, 1 internal (requeued after a worker pushed back). */
  readonly lane: number
  /** Still waiting; cleared when dispatched or removed (timeout, disconnect). */
  queued: boolean
}

function before (a: Queued, b: Queued): boolean {
  return a.arrival < b.arrival || (a.arrival === b.arrival && a.seq < b.seq)
}

/**
 * A FIFO in arrival order. Appends are O(1) (new arrivals are the youngest); an entry that keeps
 * an older age (a requeue, or an aged request moving to the high class) is inserted in order.
 * Removal from the middle (timeout, client gone) is lazy: the entry is flagged and skipped, and
 * the array is compacted when the dead outnumber the live, so memory stays bounded.
 */
export class Lane<E extends Queued> {
  private items: E[] = []
  private head = 0
  /** Live entries. */
  size = 0
  /** Sum of live entries' tokens. */
  tokens = 0

  push (e: E): void {
    const items = this.items
    const n = items.length
    if (n === this.head || !before(e, items[n - 1]!)) items.push(e)
    else {
      // Binary search for the first entry younger than e, among [head, n).
      let lo = this.head
      let hi = n
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (before(e, items[mid]!)) hi = mid
        else lo = mid + 1
      }
      items.splice(lo, 0, e)
    }
    this.size++
    this.tokens += e.tokens
  }

  /** The oldest live entry, or undefined. */
  peek (): E | undefined {
    const items = this.items
    while (this.head < items.length) {
      const e = items[this.head]!
      if (e.queued) return e
      this.head++
    }
    this.reset()
    return undefined
  }

  /** Takes the head (call after `peek()` returned it). */
  shift (): E {
    const e = this.items[this.head++]!
    this.size--
    this.tokens -= e.tokens
    if (this.head === this.items.length) this.reset()
    return e
  }

  /** The entry was flagged `queued = false` elsewhere: account for it; it is skipped later. */
  forget (e: E): void {
    this.size--
    this.tokens -= e.tokens
    const dead = this.items.length - this.head - this.size
    if (dead > 64 && dead > this.size) this.compact()
  }

  /** Live entries, oldest first (for sweeps; allocates). */
  live (): E[] {
    const out: E[] = []
    for (let i = this.head; i < this.items.length; i++) if (this.items[i]!.queued) out.push(this.items[i]!)
    return out
  }

  get empty (): boolean {
    return this.size === 0
  }

  private compact (): void {
    const live = this.live()
    this.items = live
    this.head = 0
  }

  private reset (): void {
    this.items.length = 0
    this.head = 0
  }
}
