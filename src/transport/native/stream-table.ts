/**
 * A connection's open streams by id: an array indexed by the id's low bits.
 *
 * Why not a Map: the gateway opens the streams, so it picks their ids, and it can pick ids that
 * land in free slots; a lookup is then one array load and an id check. Every item of every stream
 * looks its stream up, once per engine pass, when the table is cold in the cache: a Map lookup
 * reads a hash bucket and then an entry (two cold lines; its builtin was ~3% of the user samples
 * on the native token path), while consecutive ids share an array line here.
 *
 * The table stays at most half full (it doubles past that), so a free id is found in a few steps;
 * it never shrinks. Live ids differ in their low log2(capacity) bits, so they still do after a
 * doubling, and growing only moves entries.
 */
export class StreamTable<S extends { readonly id: number }> {
  private slots: Array<S | undefined>
  private mask: number
  /** Streams in the table. */
  size = 0

  constructor (capacity = 64) {
    let n = 8
    while (n < capacity) n *= 2
    this.slots = new Array<S | undefined>(n).fill(undefined)
    this.mask = n - 1
  }

  get (id: number): S | undefined {
    const s = this.slots[id & this.mask]
    return s !== undefined && s.id === id ? s : undefined
  }

  /** The first id from `from` on (u32, never 0) whose slot is free; grows the table first if it is half full. */
  freeId (from: number): number {
    if ((this.size + 1) * 2 > this.slots.length) this.grow()
    let id = from >>> 0
    while (id === 0 || this.slots[id & this.mask] !== undefined) id = (id + 1) >>> 0
    return id
  }

  /** Adds `s`; its id must come from `freeId` (its slot free). */
  add (s: S): void {
    const i = s.id & this.mask
    if (this.slots[i] !== undefined) throw new Error(`stream table: slot of id ${s.id} is taken by ${this.slots[i]!.id}`)
    this.slots[i] = s
    this.size++
  }

  delete (id: number): boolean {
    const i = id & this.mask
    const s = this.slots[i]
    if (s === undefined || s.id !== id) return false
    this.slots[i] = undefined
    this.size--
    return true
  }

  clear (): void {
    this.slots.fill(undefined)
    this.size = 0
  }

  /** The streams, in slot order; deleting during the walk is safe. */
  * values (): IterableIterator<S> {
    const slots = this.slots
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]
      if (s !== undefined) yield s
    }
  }

  private grow (): void {
    const old = this.slots
    const n = old.length * 2
    const slots = new Array<S | undefined>(n).fill(undefined)
    const mask = n - 1
    for (let i = 0; i < old.length; i++) {
      const s = old[i]
      if (s !== undefined) slots[s.id & mask] = s
    }
    this.slots = slots
    this.mask = mask
  }
}
