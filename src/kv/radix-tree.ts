/**
 * The shape of the KV index (DESIGN 5.2): a tree whose edges are labelled by our local block hash
 * (XXH3-64 of one block's tokens), so the path from a root spells a token prefix block by block,
 * and each node carries the set of workers that hold that block.
 *
 * Why local hashes on edges rather than sequence hashes as global keys: the path already encodes
 * the prefix, so a key only needs to be unique among siblings. Storing a block under a known parent
 * and looking up a request both need one hash per block (no chain hash), and the request side can
 * stop hashing where the tree stops.
 *
 * Layout (struct of arrays, node ids are indices; nothing per node is a JS object):
 * - parent, key (hi, lo), child count, worker count, `hint`: the most recently used child (added
 *   or walked through), checked before the edge table — most nodes have one child, and at a branch
 *   the popular way is usually the last one taken, so walking a path touches only these arrays
 *   (consecutive ids when a chain was stored in one event);
 * - one open-addressing edge table mapping (parent, key) → child for every edge;
 * - the worker set as a bitset of `stride` int32 words per node (stride grows with the worker
 *   slots in use: 1 word up to 32 workers, 2 up to 64, ...). A lookup ANDs these words along the
 *   path, a few instructions per block whatever the worker count up to 32·stride.
 * Memory per node: about 28 + 4·stride bytes, plus ~8 bytes of edge table.
 *
 * A node is freed when no worker holds it and it has no children; the free cascades to parents.
 * Roots (parent −1) are never freed.
 */

export const NO_NODE = -1
const EMPTY = -1

export class RadixTree {
  parent: Int32Array
  keyHi: Int32Array
  keyLo: Int32Array
  childCount: Int32Array
  workerCount: Int32Array
  hint: Int32Array
  /** Free-list link of free nodes. */
  private link: Int32Array
  /** Worker bitsets, `stride` words per node. */
  bits: Int32Array
  stride: number
  private capacity: number
  /** Ids below this have been handed out at least once. */
  private highWater: number
  private freeHead: number
  /** Live nodes (including roots). */
  size: number
  /** Edge table: child node id per slot, −1 empty. */
  private edges: Int32Array
  private edgeMask: number
  private edgeCount: number

  constructor (initialNodes = 1024) {
    const cap = Math.max(16, initialNodes)
    this.capacity = cap
    this.parent = new Int32Array(cap)
    this.keyHi = new Int32Array(cap)
    this.keyLo = new Int32Array(cap)
    this.childCount = new Int32Array(cap)
    this.workerCount = new Int32Array(cap)
    this.hint = new Int32Array(cap)
    this.link = new Int32Array(cap)
    this.stride = 1
    this.bits = new Int32Array(cap)
    this.highWater = 0
    this.freeHead = NO_NODE
    this.size = 0
    let edgeCap = 16
    while (edgeCap < cap * 2) edgeCap *= 2
    this.edges = new Int32Array(edgeCap).fill(EMPTY)
    this.edgeMask = edgeCap - 1
    this.edgeCount = 0
  }

  /** A new root (for the base model or a LoRA adapter); roots are never freed. */
  addRoot (): number {
    const id = this.alloc()
    this.parent[id] = NO_NODE
    return id
  }

  /** The child of `node` keyed (hi, lo), or NO_NODE. */
  findChild (node: number, hi: number, lo: number): number {
    const h = this.hint[node]!
    if (h !== NO_NODE && this.keyLo[h] === lo && this.keyHi[h] === hi) return h
    const n = this.childCount[node]!
    if (n === 0 || (n === 1 && h !== NO_NODE)) return NO_NODE
    return this.findEdge(node, hi, lo)
  }

  /**
   * Probes the edge table (the hint missed) and makes the child found the node's hint: the hint is
   * the most recently used child, so the path requests keep walking (a shared system prompt or
   * document) is served from the node arrays alone.
   */
  findEdge (node: number, hi: number, lo: number): number {
    const edges = this.edges
    const mask = this.edgeMask
    let i = edgeSlot(node, lo, mask)
    for (;;) {
      const c = edges[i]!
      if (c === EMPTY) return NO_NODE
      if (this.keyLo[c] === lo && this.parent[c] === node && this.keyHi[c] === hi) {
        this.hint[node] = c
        return c
      }
      i = (i + 1) & mask
    }
  }

  /** The child of `node` keyed (hi, lo), created when absent. */
  child (node: number, hi: number, lo: number): number {
    const found = this.findChild(node, hi, lo)
    if (found !== NO_NODE) return found
    const c = this.alloc()
    this.parent[c] = node
    this.keyHi[c] = hi
    this.keyLo[c] = lo
    this.childCount[node]!++
    this.hint[node] = c
    this.insertEdge(c, node, lo)
    return c
  }

  /** Makes room for worker slots below `slots` (widens every node's bitset when needed). */
  ensureSlots (slots: number): void {
    const need = Math.max(1, Math.ceil(slots / 32))
    if (need <= this.stride) return
    let stride = this.stride
    while (stride < need) stride *= 2
    const old = this.bits
    const oldStride = this.stride
    const bits = new Int32Array(this.capacity * stride)
    for (let n = 0; n < this.highWater; n++) {
      for (let w = 0; w < oldStride; w++) bits[n * stride + w] = old[n * oldStride + w]!
    }
    this.bits = bits
    this.stride = stride
  }

  /** Sets worker `slot`'s bit on `node`; false when it was already set. */
  setBit (node: number, slot: number): boolean {
    const at = node * this.stride + (slot >>> 5)
    const m = 1 << (slot & 31)
    const word = this.bits[at]!
    if ((word & m) !== 0) return false
    this.bits[at] = word | m
    this.workerCount[node]!++
    return true
  }

  hasBit (node: number, slot: number): boolean {
    return (this.bits[node * this.stride + (slot >>> 5)]! & (1 << (slot & 31))) !== 0
  }

  /** Clears worker `slot`'s bit on `node`, then frees the node (and empty ancestors) if nothing needs it. */
  clearBit (node: number, slot: number): void {
    const at = node * this.stride + (slot >>> 5)
    const m = 1 << (slot & 31)
    const word = this.bits[at]!
    if ((word & m) === 0) return
    this.bits[at] = word & ~m
    this.workerCount[node]!--
    this.release(node)
  }

  /** Frees `node` and then its ancestors while they have neither workers nor children. */
  release (node: number): void {
    let n = node
    while (this.workerCount[n] === 0 && this.childCount[n] === 0) {
      const p = this.parent[n]!
      if (p === NO_NODE) return // a root
      this.removeEdge(n, p)
      this.childCount[p]!--
      if (this.hint[p] === n) this.hint[p] = NO_NODE
      this.free(n)
      n = p
    }
  }

  private alloc (): number {
    let id = this.freeHead
    if (id !== NO_NODE) {
      this.freeHead = this.link[id]!
    } else {
      if (this.highWater === this.capacity) this.growNodes()
      id = this.highWater++
    }
    this.childCount[id] = 0
    this.workerCount[id] = 0
    this.hint[id] = NO_NODE
    this.size++
    return id
  }

  private free (id: number): void {
    // Bits are already zero: a node is freed only when its worker count is 0.
    this.parent[id] = NO_NODE
    this.link[id] = this.freeHead
    this.freeHead = id
    this.size--
  }

  private insertEdge (child: number, node: number, lo: number): void {
    if ((this.edgeCount + 1) * 2 > this.edgeMask + 1) this.growEdges()
    const edges = this.edges
    const mask = this.edgeMask
    let i = edgeSlot(node, lo, mask)
    while (edges[i] !== EMPTY) i = (i + 1) & mask
    edges[i] = child
    this.edgeCount++
  }

  private removeEdge (child: number, node: number): void {
    const edges = this.edges
    const mask = this.edgeMask
    let i = edgeSlot(node, this.keyLo[child]!, mask)
    while (edges[i] !== child) i = (i + 1) & mask
    // Backward-shift deletion (see pair-map.ts).
    let hole = i
    let j = i
    for (;;) {
      j = (j + 1) & mask
      const c = edges[j]!
      if (c === EMPTY) break
      const home = edgeSlot(this.parent[c]!, this.keyLo[c]!, mask)
      const movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j)
      if (movable) {
        edges[hole] = c
        hole = j
      }
    }
    edges[hole] = EMPTY
    this.edgeCount--
  }

  private growEdges (): void {
    const old = this.edges
    const cap = (this.edgeMask + 1) * 2
    const edges = new Int32Array(cap).fill(EMPTY)
    const mask = cap - 1
    for (let k = 0; k < old.length; k++) {
      const c = old[k]!
      if (c === EMPTY) continue
      let i = edgeSlot(this.parent[c]!, this.keyLo[c]!, mask)
      while (edges[i] !== EMPTY) i = (i + 1) & mask
      edges[i] = c
    }
    this.edges = edges
    this.edgeMask = mask
  }

  private growNodes (): void {
    const cap = this.capacity * 2
    this.parent = grow(this.parent, cap)
    this.keyHi = grow(this.keyHi, cap)
    this.keyLo = grow(this.keyLo, cap)
    this.childCount = grow(this.childCount, cap)
    this.workerCount = grow(this.workerCount, cap)
    this.hint = grow(this.hint, cap)
    this.link = grow(this.link, cap)
    this.bits = grow(this.bits, cap * this.stride)
    this.capacity = cap
  }
}

/** Edge table slot of (parent, key): the key's low half is already a uniform hash. */
export function edgeSlot (node: number, lo: number, mask: number): number {
  return (lo ^ Math.imul(node, 0x9e3779b1)) & mask
}

function grow (a: Int32Array, size: number): Int32Array {
  const b = new Int32Array(size)
  b.set(a)
  return b
}
