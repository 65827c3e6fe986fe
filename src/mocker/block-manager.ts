/**
 * The simulated GPU KV cache: a fixed pool of blocks, reference counted while requests use them,
 * with a prefix cache keyed by sequence hash.
 *
 * A block whose last user lets go keeps its hash and joins an LRU of reusable cached blocks;
 * allocation takes never-cached blocks first, then evicts from the LRU's old end. Requests release
 * their blocks tail first, so within one request the tail is older than the head and shared
 * prefixes survive longest (vLLM's free-queue order). Every registration and eviction is reported
 * to the event collector.
 *
 * All per-block state lives in typed arrays indexed by block id; the LRU is an intrusive list.
 */
import type { KvEventCollector } from './kv-events.js'

const NIL = -1

export class BlockManager {
  readonly numBlocks: number
  readonly blockSize: number
  private readonly refCount: Int32Array
  private readonly hashOf: Array<bigint | null>
  private readonly lruPrev: Int32Array
  private readonly lruNext: Int32Array
  private lruHead: number
  private lruTail: number
  private lruSize: number
  private readonly freeStack: Int32Array
  private freeTop: number
  private readonly cached: Map<bigint, number>
  private readonly events: KvEventCollector
  /** Blocks held by at least one request. */
  activeBlocks: number
  /** Cached blocks evicted since creation (for tests and metrics). */
  evictions: number

  constructor (numBlocks: number, blockSize: number, events: KvEventCollector) {
    this.numBlocks = numBlocks
    this.blockSize = blockSize
    this.refCount = new Int32Array(numBlocks)
    this.hashOf = new Array<bigint | null>(numBlocks).fill(null)
    this.lruPrev = new Int32Array(numBlocks).fill(NIL)
    this.lruNext = new Int32Array(numBlocks).fill(NIL)
    this.lruHead = NIL
    this.lruTail = NIL
    this.lruSize = 0
    this.freeStack = new Int32Array(numBlocks)
    // Low ids first, so small tests read naturally.
    for (let i = 0; i < numBlocks; i++) this.freeStack[i] = numBlocks - 1 - i
    this.freeTop = numBlocks
    this.cached = new Map()
    this.events = events
    this.activeBlocks = 0
    this.evictions = 0
  }

  /** Blocks an allocation can take now: never-cached ones plus evictable cached ones. */
  get freeBlocks (): number {
    return this.freeTop + this.lruSize
  }

  get usage (): number {
    return this.activeBlocks / this.numBlocks
  }

  get cachedBlocks (): number {
    return this.cached.size
  }

  /** How many of `hashes` (from the first, at most `max`) are cached. */
  countCachedPrefix (hashes: readonly bigint[], max: number): number {
    const n = Math.min(max, hashes.length)
    let i = 0
    while (i < n && this.cached.has(hashes[i]!)) i++
    return i
  }

  /** Of the first `count` hashes (all cached), how many sit unused in the LRU (so count as free). */
  countIdleCached (hashes: readonly bigint[], count: number): number {
    let idle = 0
    for (let i = 0; i < count; i++) {
      if (this.refCount[this.cached.get(hashes[i]!)!] === 0) idle++
    }
    return idle
  }

  /** Takes a reference on the cached block for `hash` (which must be cached). */
  acquireCached (hash: bigint): number {
    const id = this.cached.get(hash)!
    if (this.refCount[id] === 0) {
      this.lruRemove(id)
      this.activeBlocks++
    }
    this.refCount[id]!++
    return id
  }

  /** A fresh block with one reference, evicting the least recently used cached block if needed; -1 if none. */
  allocate (): number {
    let id: number
    if (this.freeTop > 0) {
      id = this.freeStack[--this.freeTop]!
    } else if (this.lruHead !== NIL) {
      id = this.lruHead
      this.lruRemove(id)
      const hash = this.hashOf[id]!
      this.hashOf[id] = null
      this.cached.delete(hash)
      this.evictions++
      this.events.removed(hash)
    } else {
      return NIL
    }
    this.refCount[id] = 1
    this.activeBlocks++
    return id
  }

  /**
   * Drops one reference on each of `blocks[0 .. count)`, tail first. Cached blocks that become
   * unused join the LRU; uncached ones return to the free stack.
   */
  release (blocks: readonly number[], count: number = blocks.length): void {
    for (let i = count - 1; i >= 0; i--) {
      const id = blocks[i]!
      const left = --this.refCount[id]!
      if (left > 0) continue
      this.activeBlocks--
      if (this.hashOf[id] !== null) this.lruAppend(id)
      else this.freeStack[this.freeTop++] = id
    }
  }

  /**
   * Registers a full block under its sequence hash. False when the hash is already cached by
   * another block (two requests computed the same block at once): that copy stays private.
   */
  register (id: number, hash: bigint): boolean {
    if (this.hashOf[id] !== null || this.cached.has(hash)) return false
    this.cached.set(hash, id)
    this.hashOf[id] = hash
    return true
  }

  /** Forgets every cached hash (the blocks in use stay allocated) and reports AllBlocksCleared. */
  clear (): void {
    for (const id of this.cached.values()) {
      this.hashOf[id] = null
      if (this.refCount[id] === 0) {
        this.lruRemove(id)
        this.freeStack[this.freeTop++] = id
      }
    }
    this.cached.clear()
    this.events.cleared()
  }

  /** The cached hashes (tests compare them with a replay of the events). */
  cachedHashes (): Set<bigint> {
    return new Set(this.cached.keys())
  }

  refs (id: number): number {
    return this.refCount[id]!
  }

  /** Throws when internal counts disagree (used by property tests). */
  checkInvariants (): void {
    let active = 0
    let idleCached = 0
    for (let id = 0; id < this.numBlocks; id++) {
      const r = this.refCount[id]!
      if (r < 0) throw new Error(`block ${id} has negative refcount ${r}`)
      if (r > 0) active++
      else if (this.hashOf[id] !== null) idleCached++
    }
    if (active !== this.activeBlocks) throw new Error(`activeBlocks ${this.activeBlocks} but ${active} blocks referenced`)
    if (idleCached !== this.lruSize) throw new Error(`LRU holds ${this.lruSize} but ${idleCached} idle cached blocks`)
    if (active + this.lruSize + this.freeTop !== this.numBlocks) {
      throw new Error(`blocks leak: ${active} active + ${this.lruSize} idle cached + ${this.freeTop} free != ${this.numBlocks}`)
    }
    for (const [hash, id] of this.cached) {
      if (this.hashOf[id] !== hash) throw new Error(`cache map and block ${id} disagree`)
    }
  }

  private lruAppend (id: number): void {
    this.lruPrev[id] = this.lruTail
    this.lruNext[id] = NIL
    if (this.lruTail !== NIL) this.lruNext[this.lruTail] = id
    else this.lruHead = id
    this.lruTail = id
    this.lruSize++
  }

  private lruRemove (id: number): void {
    const prev = this.lruPrev[id]!
    const next = this.lruNext[id]!
    if (prev !== NIL) this.lruNext[prev] = next
    else this.lruHead = next
    if (next !== NIL) this.lruPrev[next] = prev
    else this.lruTail = prev
    this.lruPrev[id] = NIL
    this.lruNext[id] = NIL
    this.lruSize--
  }
}
