/**
 * One worker's view of its cached blocks: the engine's hash of each block → the tree node it
 * occupies, so a BlockStored naming a parent by engine hash and a BlockRemoved are O(1) (DESIGN 5.2).
 *
 * Entries (one per engine hash) live in typed arrays and sit on a doubly-linked list in eviction
 * order, oldest first. That order serves the per-worker memory bound: the index evicts from the
 * oldest end when a worker holds more than `maxBlocks`. A store event's blocks are queued tail
 * first (the last block of the event is evicted before the first), like vLLM's free queue, so a
 * forced eviction takes a sequence's tail before the prefix other requests share.
 *
 * An entry whose parent the worker did not know (missed events) is kept with node DETACHED: it
 * counts as held, removals find it, but no lookup can reach it — which is right, since a prefix
 * match needs every earlier block and the worker lacks one.
 */
import { PairMap } from './pair-map.js'

export const DETACHED = -2
const NIL = -1

export class WorkerBlocks {
  readonly id: string
  readonly slot: number
  /** Engine hash → entry. */
  readonly byEngineHash: PairMap
  /** Per entry: its tree node (or DETACHED), its engine hash, its list links. */
  node: Int32Array
  engHi: Int32Array
  engLo: Int32Array
  prev: Int32Array
  next: Int32Array
  /** Oldest and newest entries. */
  head: number
  tail: number
  /** Held blocks (entries). */
  size: number
  private freeHead: number
  private used: number
  /**
   * Nodes this worker holds through more than one engine hash (same tokens under the same parent,
   * e.g. blocks that differ only by extra keys we do not hash): node → extra entries. Rare, so a Map
   * created on first need.
   */
  aliases: Map<number, number> | null

  constructor (id: string, slot: number) {
    this.id = id
    this.slot = slot
    this.byEngineHash = new PairMap()
    const cap = 64
    this.node = new Int32Array(cap)
    this.engHi = new Int32Array(cap)
    this.engLo = new Int32Array(cap)
    this.prev = new Int32Array(cap)
    this.next = new Int32Array(cap)
    this.head = NIL
    this.tail = NIL
    this.size = 0
    this.freeHead = NIL
    this.used = 0
    this.aliases = null
  }

  /** A new entry for engine hash (hi, lo) at `node`, not yet on the eviction list. */
  alloc (hi: number, lo: number, node: number): number {
    let e = this.freeHead
    if (e !== NIL) this.freeHead = this.next[e]!
    else {
      if (this.used === this.node.length) this.grow()
      e = this.used++
    }
    this.node[e] = node
    this.engHi[e] = hi
    this.engLo[e] = lo
    this.prev[e] = NIL
    this.next[e] = NIL
    this.size++
    return e
  }

  free (e: number): void {
    this.next[e] = this.freeHead
    this.freeHead = e
    this.size--
  }

  /**
   * Puts entry `e` on the eviction list just older than `newer` (an entry already listed), or at
   * the newest end when `newer` is NIL.
   */
  place (e: number, newer: number): void {
    if (newer === NIL) {
      this.prev[e] = this.tail
      this.next[e] = NIL
      if (this.tail !== NIL) this.next[this.tail] = e
      else this.head = e
      this.tail = e
      return
    }
    const older = this.prev[newer]!
    this.prev[e] = older
    this.next[e] = newer
    this.prev[newer] = e
    if (older !== NIL) this.next[older] = e
    else this.head = e
  }

  unlink (e: number): void {
    const p = this.prev[e]!
    const n = this.next[e]!
    if (p !== NIL) this.next[p] = n
    else this.head = n
    if (n !== NIL) this.prev[n] = p
    else this.tail = p
  }

  /** Counts one more entry on `node` beyond the first (the node's bit is already set). */
  addAlias (node: number): void {
    const a = this.aliases ??= new Map()
    a.set(node, (a.get(node) ?? 0) + 1)
  }

  /** Drops one alias of `node`; false when it had none (the caller then clears the node's bit). */
  dropAlias (node: number): boolean {
    const a = this.aliases
    if (a === null) return false
    const n = a.get(node)
    if (n === undefined) return false
    if (n === 1) a.delete(node)
    else a.set(node, n - 1)
    return true
  }

  /** Forgets every entry (the caller has released their nodes). */
  reset (): void {
    this.byEngineHash.clear()
    this.head = NIL
    this.tail = NIL
    this.size = 0
    this.freeHead = NIL
    this.used = 0
    this.aliases = null
    if (this.node.length > 4096) {
      // Give back the memory of a large cache: a cleared worker usually refills slowly.
      const cap = 64
      this.node = new Int32Array(cap)
      this.engHi = new Int32Array(cap)
      this.engLo = new Int32Array(cap)
      this.prev = new Int32Array(cap)
      this.next = new Int32Array(cap)
    }
  }

  private grow (): void {
    const cap = this.node.length * 2
    this.node = grow(this.node, cap)
    this.engHi = grow(this.engHi, cap)
    this.engLo = grow(this.engLo, cap)
    this.prev = grow(this.prev, cap)
    this.next = grow(this.next, cap)
  }
}

export { NIL as NO_ENTRY }

function grow (a: Int32Array, size: number): Int32Array {
  const b = new Int32Array(size)
  b.set(a)
  return b
}
