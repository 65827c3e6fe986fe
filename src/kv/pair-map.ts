/**
 * A hash map from a 64-bit key, given as two int32 halves (hi, lo), to a non-negative int32.
 *
 * Why not `Map<bigint, number>`: a BigInt key costs an allocation per lookup and hashes slowly;
 * why not a string key: building it allocates too. Here keys and values live in one Int32Array
 * (open addressing, linear probing, deletion by backward shift so no tombstones pile up), so get,
 * set and delete allocate nothing and a map of n entries costs about 24·n bytes.
 *
 * @example
 * const m = new PairMap()
 * m.set(hi, lo, 7)
 * m.get(hi, lo) // 7, or -1 when absent
 */

const EMPTY = -1
const MIN_CAPACITY = 16

/** Mixes the two halves into a table index; engine hashes may be small sequential ids, so mix both. */
export function pairSlot (hi: number, lo: number, mask: number): number {
  let h = Math.imul(lo ^ Math.imul(hi, 0x85ebca77), 0x9e3779b1)
  h ^= h >>> 15
  return h & mask
}

export class PairMap {
  /** [hi, lo, value] per slot; value −1 marks an empty slot. */
  private table: Int32Array
  private mask: number
  private count: number

  constructor (initialCapacity = MIN_CAPACITY) {
    let cap = MIN_CAPACITY
    while (cap < initialCapacity * 2) cap *= 2
    this.table = newTable(cap)
    this.mask = cap - 1
    this.count = 0
  }

  get size (): number {
    return this.count
  }

  /** The value stored for (hi, lo), or −1. */
  get (hi: number, lo: number): number {
    const t = this.table
    const mask = this.mask
    let i = pairSlot(hi, lo, mask)
    for (;;) {
      const v = t[3 * i + 2]!
      if (v === EMPTY) return EMPTY
      if (t[3 * i + 1] === lo && t[3 * i] === hi) return v
      i = (i + 1) & mask
    }
  }

  /** Sets (hi, lo) to `value` (≥ 0), replacing any previous value. */
  set (hi: number, lo: number, value: number): void {
    if ((this.count + 1) * 2 > this.mask + 1) this.grow()
    const t = this.table
    const mask = this.mask
    let i = pairSlot(hi, lo, mask)
    for (;;) {
      const v = t[3 * i + 2]!
      if (v === EMPTY) {
        t[3 * i] = hi
        t[3 * i + 1] = lo
        t[3 * i + 2] = value
        this.count++
        return
      }
      if (t[3 * i + 1] === lo && t[3 * i] === hi) {
        t[3 * i + 2] = value
        return
      }
      i = (i + 1) & mask
    }
  }

  /** Removes (hi, lo); returns its value, or −1 when it was absent. */
  delete (hi: number, lo: number): number {
    const t = this.table
    const mask = this.mask
    let i = pairSlot(hi, lo, mask)
    for (;;) {
      const v = t[3 * i + 2]!
      if (v === EMPTY) return EMPTY
      if (t[3 * i + 1] === lo && t[3 * i] === hi) {
        this.removeAt(i)
        this.count--
        return v
      }
      i = (i + 1) & mask
    }
  }

  /** Forgets every entry; shrinks back when the table had grown large, so a cleared worker gives memory back. */
  clear (): void {
    if (this.mask + 1 > 4096) {
      this.table = newTable(MIN_CAPACITY)
      this.mask = MIN_CAPACITY - 1
    } else {
      this.table.fill(EMPTY)
    }
    this.count = 0
  }

  // Backward-shift deletion: move later entries of the same probe run into the hole.
  private removeAt (hole: number): void {
    const t = this.table
    const mask = this.mask
    let i = hole
    let j = hole
    for (;;) {
      j = (j + 1) & mask
      if (t[3 * j + 2] === EMPTY) break
      const home = pairSlot(t[3 * j]!, t[3 * j + 1]!, mask)
      // Entry j may fill hole i only if its home slot is not in the cyclic range (i, j].
      const movable = i <= j ? (home <= i || home > j) : (home <= i && home > j)
      if (movable) {
        t[3 * i] = t[3 * j]!
        t[3 * i + 1] = t[3 * j + 1]!
        t[3 * i + 2] = t[3 * j + 2]!
        i = j
      }
    }
    t[3 * i + 2] = EMPTY
  }

  private grow (): void {
    const old = this.table
    const cap = (this.mask + 1) * 2
    const t = newTable(cap)
    const mask = cap - 1
    for (let k = 2; k < old.length; k += 3) {
      const v = old[k]!
      if (v === EMPTY) continue
      const hi = old[k - 2]!
      const lo = old[k - 1]!
      let i = pairSlot(hi, lo, mask)
      while (t[3 * i + 2] !== EMPTY) i = (i + 1) & mask
      t[3 * i] = hi
      t[3 * i + 1] = lo
      t[3 * i + 2] = v
    }
    this.table = t
    this.mask = mask
  }
}

function newTable (cap: number): Int32Array {
  return new Int32Array(3 * cap).fill(EMPTY)
}
