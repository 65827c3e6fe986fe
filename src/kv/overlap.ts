/**
 * The answer of a KV index lookup, reused across requests so a lookup allocates nothing:
 * `counts[slot]` is how many leading blocks of the request worker `slot` holds (0 when none), and
 * `slots[0 .. size)` lists the slots with a non-zero count, in no particular order. The next lookup
 * resets only those entries, so the cost does not grow with the number of workers.
 *
 * @example
 * const scores = new OverlapScores()
 * index.lookup(keys, scores)
 * for (let i = 0; i < scores.size; i++) { const slot = scores.slots[i]!; use(slot, scores.counts[slot]!) }
 */
export class OverlapScores {
  counts: Int32Array
  slots: Int32Array
  size: number
  /** The longest match over all workers, in blocks. */
  longest: number

  constructor (slotCapacity = 64) {
    this.counts = new Int32Array(Math.max(1, slotCapacity))
    this.slots = new Int32Array(Math.max(1, slotCapacity))
    this.size = 0
    this.longest = 0
  }

  /** Matched blocks for `slot` (0 when none or unknown). */
  get (slot: number): number {
    return slot < this.counts.length ? this.counts[slot]! : 0
  }

  /** Zeroes the previous answer and makes room for slots below `slotCapacity`. */
  reset (slotCapacity: number): void {
    const counts = this.counts
    for (let i = 0; i < this.size; i++) counts[this.slots[i]!] = 0
    this.size = 0
    this.longest = 0
    if (slotCapacity > counts.length) {
      let cap = counts.length
      while (cap < slotCapacity) cap *= 2
      this.counts = new Int32Array(cap)
      this.slots = new Int32Array(cap)
    }
  }

  /** Records `depth` for every worker whose bit is set in `word` (bit b of word w is slot 32w + b). */
  record (word: number, w: number, depth: number): void {
    const counts = this.counts
    const slots = this.slots
    let d = word
    while (d !== 0) {
      const low = d & -d
      const slot = (w << 5) + 31 - Math.clz32(low)
      counts[slot] = depth
      slots[this.size++] = slot
      d ^= low
    }
    if (depth > this.longest) this.longest = depth
  }
}
