/**
 * The KV index (DESIGN 5.2): which worker holds which prefix of cached blocks, fed by engine KV
 * events and asked, per request, how many leading blocks each worker already has.
 *
 * - Tree: radix-tree.ts (edges keyed by our local block hash, workers as a bitset per node).
 * - Per worker: worker-blocks.ts (engine hash → node, eviction order, memory bound).
 * - Workers are named by string id and addressed on the hot path by a dense slot (small integer,
 *   reused after removal) that is also their bit in the tree's bitsets.
 * - Keys are int32 (hi, lo) pairs (block-keys.ts); no BigInt anywhere on the store or lookup path.
 *
 * Memory bound: a worker holding more than `maxBlocksPerWorker` blocks loses its oldest stored ones
 * (store order, each event tail first — see worker-blocks.ts). Engines report their own evictions,
 * so the bound only bites when removals were lost or the engine's cache is larger than configured;
 * `evictions` counts it.
 *
 * One index serves workers of one block size (keys of different block sizes never match).
 *
 * @example
 * const index = new KvIndex({ blockSize: 16 })
 * const w = index.addWorker('worker-0')
 * // ... event sources call storeBlocks / removeBlocks / clearWorker ...
 * const scores = new OverlapScores()
 * index.lookupTokens(promptTokenIds, scores)
 * scores.get(w) // leading blocks worker-0 holds
 */
import { BlockKeyer, BlockKeys, splitU64 } from './block-keys.js'
import { KvOptionError, KvWorkerNotFoundError } from './errors.js'
import { OverlapScores } from './overlap.js'
import { NO_NODE, RadixTree } from './radix-tree.js'
import { DETACHED, NO_ENTRY, WorkerBlocks } from './worker-blocks.js'
import { pairToBigInt } from './xxh3.js'

export interface KvIndexOptions {
  /** Tokens per KV block of the workers this index serves. */
  blockSize: number
  /** Blocks kept per worker before its oldest are evicted. Default 2^20 (16 M tokens at block size 16). */
  maxBlocksPerWorker?: number
  /** Initial node capacity (grows by doubling). Default 4096. */
  initialNodes?: number
}

const KEYS = new Set(['blockSize', 'maxBlocksPerWorker', 'initialNodes'])

export class KvIndex {
  readonly blockSize: number
  readonly maxBlocksPerWorker: number
  /** Root of the base model's blocks; LoRA adapters get their own roots (`rootFor`). */
  readonly baseRoot: number
  private readonly tree: RadixTree
  private readonly workers: Array<WorkerBlocks | null>
  private readonly slotsById: Map<string, number>
  private readonly freeSlots: number[]
  private readonly adapterRoots: Map<string, number>
  /** Lookup scratch: the bitset of workers still matching. */
  private active: Int32Array
  private readonly keyer: BlockKeyer
  private readonly tokenKeys: BlockKeys
  /** Blocks dropped by the per-worker memory bound. */
  evictions: number
  /** Blocks stored under a parent the worker did not hold (kept, but unreachable by lookups). */
  detachedBlocks: number
  /** Removed engine hashes the worker did not hold. */
  unknownRemovals: number
  /** Blocks currently held, summed over workers. */
  totalBlocks: number

  constructor (opts: KvIndexOptions) {
    for (const key of Object.keys(opts)) {
      if (!KEYS.has(key)) throw new KvOptionError(`unknown KV index option "${key}"; accepted: ${[...KEYS].join(', ')}`)
    }
    this.keyer = new BlockKeyer(opts.blockSize)
    this.blockSize = opts.blockSize
    const max = opts.maxBlocksPerWorker ?? 1 << 20
    if (!Number.isInteger(max) || max < 1 || max > 2 ** 30) {
      throw new KvOptionError(`maxBlocksPerWorker must be an integer from 1 to 2^30, got ${String(max)}`)
    }
    this.maxBlocksPerWorker = max
    this.tree = new RadixTree(opts.initialNodes ?? 4096)
    this.baseRoot = this.tree.addRoot()
    this.workers = []
    this.slotsById = new Map()
    this.freeSlots = []
    this.adapterRoots = new Map()
    this.active = new Int32Array(1)
    this.tokenKeys = new BlockKeys(256)
    this.evictions = 0
    this.detachedBlocks = 0
    this.unknownRemovals = 0
    this.totalBlocks = 0
  }

  // --- workers ---

  /** The slot of worker `id`, adding the worker when it is new. Slots are dense and reused after removal. */
  addWorker (id: string): number {
    const known = this.slotsById.get(id)
    if (known !== undefined) return known
    let slot: number
    if (this.freeSlots.length > 0) {
      // Lowest free slot first, so the bitsets stay as narrow as the live worker count allows.
      let best = 0
      for (let i = 1; i < this.freeSlots.length; i++) if (this.freeSlots[i]! < this.freeSlots[best]!) best = i
      slot = this.freeSlots[best]!
      this.freeSlots[best] = this.freeSlots[this.freeSlots.length - 1]!
      this.freeSlots.pop()
    } else {
      slot = this.workers.length
      this.workers.push(null)
      this.tree.ensureSlots(slot + 1)
      if (this.active.length < this.tree.stride) this.active = new Int32Array(this.tree.stride)
    }
    this.workers[slot] = new WorkerBlocks(id, slot)
    this.slotsById.set(id, slot)
    return slot
  }

  /** The slot of worker `id`, or −1. */
  slotOf (id: string): number {
    return this.slotsById.get(id) ?? -1
  }

  /** The id of the worker in `slot`, or null. */
  workerId (slot: number): string | null {
    return this.workers[slot]?.id ?? null
  }

  /** Removes worker `id` and all its blocks; false when unknown. Its slot may be given to a later worker. */
  removeWorker (id: string): boolean {
    const slot = this.slotsById.get(id)
    if (slot === undefined) return false
    this.clearWorker(slot)
    this.workers[slot] = null
    this.slotsById.delete(id)
    this.freeSlots.push(slot)
    return true
  }

  get workerCount (): number {
    return this.slotsById.size
  }

  /** One more than the highest slot ever used: size OverlapScores with it. */
  get slotCapacity (): number {
    return this.workers.length
  }

  /** Blocks held by the worker in `slot`. */
  blockCount (slot: number): number {
    return this.worker(slot).size
  }

  /** Live tree nodes (including roots). */
  get nodeCount (): number {
    return this.tree.size
  }

  /**
   * The root for a LoRA adapter's blocks (`null`: the base model). Blocks of different adapters
   * never match. With `create` false, an unknown adapter gives −1.
   */
  rootFor (lora: string | null, create = false): number {
    if (lora === null) return this.baseRoot
    let root = this.adapterRoots.get(lora)
    if (root === undefined) {
      if (!create) return NO_NODE
      root = this.tree.addRoot()
      this.adapterRoots.set(lora, root)
    }
    return root
  }

  // --- events ---

  /**
   * Applies a BlockStored for the worker in `slot`: `count` blocks, block i with engine hash
   * (engine[2i], engine[2i+1]) and our key (keys[2i], keys[2i+1]), each the child of the previous;
   * the first is the child of the block whose engine hash is (parent[0], parent[1]), or of `root`
   * when `parent` is null. Returns the number of blocks newly held.
   */
  storeBlocks (slot: number, engine: Int32Array, keys: Int32Array, count: number, parent: Int32Array | null, root: number = this.baseRoot): number {
    const w = this.worker(slot)
    const tree = this.tree
    let node = root
    if (parent !== null) {
      const e = w.byEngineHash.get(parent[0]!, parent[1]!)
      node = e === NO_ENTRY ? DETACHED : w.node[e]!
    }
    let added = 0
    // Each block of the event goes just older than the previous one: the event's tail is evicted first.
    let newer = NO_ENTRY
    for (let i = 0; i < count; i++) {
      if (node !== DETACHED) node = tree.child(node, keys[2 * i]!, keys[2 * i + 1]!)
      else this.detachedBlocks++
      const hi = engine[2 * i]!
      const lo = engine[2 * i + 1]!
      let e = w.byEngineHash.get(hi, lo)
      if (e !== NO_ENTRY) {
        // Stored again (replay overlap, or the engine recomputed it): refresh its place in the
        // eviction order, and move it if its block changed. Blocks apply one by one, so a hash
        // repeated within one event ends up naming its last block.
        const old = w.node[e]!
        if (old !== node) {
          w.node[e] = node
          this.hold(w, node)
          this.letGo(w, old)
        }
        if (e === newer) continue
        w.unlink(e)
      } else {
        e = w.alloc(hi, lo, node)
        w.byEngineHash.set(hi, lo, e)
        this.hold(w, node)
        this.totalBlocks++
        added++
      }
      w.place(e, newer)
      newer = e
    }
    while (w.size > this.maxBlocksPerWorker) {
      this.dropEntry(w, w.head)
      this.evictions++
    }
    return added
  }

  /** Applies a BlockRemoved for the worker in `slot`; returns how many of the `count` hashes it held. */
  removeBlocks (slot: number, engine: Int32Array, count: number): number {
    const w = this.worker(slot)
    let removed = 0
    for (let i = 0; i < count; i++) {
      const e = w.byEngineHash.get(engine[2 * i]!, engine[2 * i + 1]!)
      if (e === NO_ENTRY) {
        this.unknownRemovals++
        continue
      }
      this.dropEntry(w, e)
      removed++
    }
    return removed
  }

  /** AllBlocksCleared, an engine restart, or a resync: the worker holds nothing. */
  clearWorker (slot: number): void {
    const w = this.worker(slot)
    for (let e = w.head; e !== NO_ENTRY; e = w.next[e]!) this.letGo(w, w.node[e]!)
    this.totalBlocks -= w.size
    w.reset()
  }

  // --- lookups ---

  /**
   * How many leading blocks of the request (our keys, from its first block) each worker holds:
   * fills `out` and returns the longest match. Walks the tree from `root` while some worker still
   * matches; a worker's count is the depth at which it stopped matching.
   */
  lookup (keys: BlockKeys, out: OverlapScores, root: number = this.baseRoot): number {
    out.reset(this.workers.length)
    const n = keys.length
    if (n === 0 || root === NO_NODE) return 0
    const k = keys.data
    const tree = this.tree
    const first = tree.findChild(root, k[0]!, k[1]!)
    if (first === NO_NODE) return 0
    return tree.stride <= 2 ? this.walkNarrow(k, n, first, out) : this.walkWide(k, n, first, out)
  }

  /**
   * The walk for up to 64 worker slots: the set of still-matching workers is one or two int32
   * words kept in locals (measured ~2× faster than the general loop over `active`).
   */
  private walkNarrow (k: Int32Array, n: number, first: number, out: OverlapScores): number {
    const tree = this.tree
    const bits = tree.bits
    const two = tree.stride === 2
    const keyHi = tree.keyHi
    const keyLo = tree.keyLo
    const hint = tree.hint
    const childCount = tree.childCount
    let node = first
    let a0 = two ? bits[2 * node]! : bits[node]!
    let a1 = two ? bits[2 * node + 1]! : 0
    if ((a0 | a1) === 0) return 0
    let depth = 1
    for (let i = 1; i < n; i++) {
      const hi = k[2 * i]!
      const lo = k[2 * i + 1]!
      // tree.findChild, inlined by hand: the hint usually answers without touching the edge table.
      let child = hint[node]!
      if (child === NO_NODE || keyLo[child] !== lo || keyHi[child] !== hi) {
        const c = childCount[node]!
        child = c === 0 || (c === 1 && child !== NO_NODE) ? NO_NODE : tree.findEdge(node, hi, lo)
        if (child === NO_NODE) break
      }
      const b0 = a0 & (two ? bits[2 * child]! : bits[child]!)
      const b1 = two ? a1 & bits[2 * child + 1]! : 0
      if (b0 !== a0) out.record(a0 & ~b0, 0, depth)
      if (b1 !== a1) out.record(a1 & ~b1, 1, depth)
      a0 = b0
      a1 = b1
      if ((a0 | a1) === 0) return depth
      node = child
      depth++
    }
    if (a0 !== 0) out.record(a0, 0, depth)
    if (a1 !== 0) out.record(a1, 1, depth)
    return depth
  }

  /** The walk for any number of worker slots: the still-matching set lives in `active`. */
  private walkWide (k: Int32Array, n: number, first: number, out: OverlapScores): number {
    const tree = this.tree
    const bits = tree.bits
    const stride = tree.stride
    const act = this.active
    let node = first
    let any = 0
    for (let w = 0; w < stride; w++) {
      const b = bits[node * stride + w]!
      act[w] = b
      any |= b
    }
    if (any === 0) return 0
    const keyHi = tree.keyHi
    const keyLo = tree.keyLo
    const hint = tree.hint
    const childCount = tree.childCount
    let depth = 1
    for (let i = 1; i < n; i++) {
      const hi = k[2 * i]!
      const lo = k[2 * i + 1]!
      let child = hint[node]!
      if (child === NO_NODE || keyLo[child] !== lo || keyHi[child] !== hi) {
        const c = childCount[node]!
        child = c === 0 || (c === 1 && child !== NO_NODE) ? NO_NODE : tree.findEdge(node, hi, lo)
        if (child === NO_NODE) break
      }
      any = 0
      const base = child * stride
      for (let w = 0; w < stride; w++) {
        const a = act[w]!
        if (a === 0) continue
        const b = a & bits[base + w]!
        if (b !== a) out.record(a & ~b, w, depth)
        act[w] = b
        any |= b
      }
      if (any === 0) return depth
      node = child
      depth++
    }
    for (let w = 0; w < stride; w++) if (act[w] !== 0) out.record(act[w]!, w, depth)
    return depth
  }

  /** `lookup` from token ids (hashes full blocks with the index's block size; `lora` picks the adapter's root). */
  lookupTokens (tokens: ArrayLike<number>, out: OverlapScores, lora: string | null = null): number {
    return this.lookup(this.keyer.keys(tokens, this.tokenKeys), out, this.rootFor(lora))
  }

  // --- inspection (tests, diagnostics; allocates) ---

  /** The engine hashes the worker in `slot` holds, oldest first. */
  engineHashes (slot: number): bigint[] {
    const w = this.worker(slot)
    const out: bigint[] = []
    for (let e = w.head; e !== NO_ENTRY; e = w.next[e]!) out.push(pairToBigInt(w.engHi[e]!, w.engLo[e]!))
    return out
  }

  /** Whether the worker in `slot` holds the block with engine hash `h`. */
  holds (slot: number, h: bigint): boolean {
    const pair = new Int32Array(2)
    splitU64(h, pair, 0)
    return this.worker(slot).byEngineHash.get(pair[0]!, pair[1]!) !== NO_ENTRY
  }

  private worker (slot: number): WorkerBlocks {
    const w = this.workers[slot]
    if (w === undefined || w === null) throw new KvWorkerNotFoundError(slot)
    return w
  }

  /** One more entry of `w` on `node`. */
  private hold (w: WorkerBlocks, node: number): void {
    if (node === DETACHED) return
    if (!this.tree.setBit(node, w.slot)) w.addAlias(node)
  }

  /** One entry of `w` fewer on `node`; the last one clears the worker's bit (and may free nodes). */
  private letGo (w: WorkerBlocks, node: number): void {
    if (node === DETACHED) return
    if (w.aliases !== null && w.dropAlias(node)) return
    this.tree.clearBit(node, w.slot)
  }

  private dropEntry (w: WorkerBlocks, e: number): void {
    w.byEngineHash.delete(w.engHi[e]!, w.engLo[e]!)
    w.unlink(e)
    this.letGo(w, w.node[e]!)
    w.free(e)
    this.totalBlocks--
  }
}
