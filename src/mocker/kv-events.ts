/**
 * KV cache events as the block manager produces them, in vLLM's vocabulary (DESIGN 4.2), and the
 * per-pass collector that batches them in order. Block hashes are our sequence hashes (u64 bigint).
 */

export class BlockStored {
  readonly type = 'BlockStored'
  readonly blockHashes: bigint[]
  readonly parentBlockHash: bigint | null
  /** Tokens of all stored blocks, concatenated (blockHashes.length × blockSize). */
  readonly tokenIds: Uint32Array
  readonly blockSize: number
  readonly loraId: null = null
  readonly medium = 'GPU'
  readonly loraName: null = null

  constructor (blockHashes: bigint[], parentBlockHash: bigint | null, tokenIds: Uint32Array, blockSize: number) {
    this.blockHashes = blockHashes
    this.parentBlockHash = parentBlockHash
    this.tokenIds = tokenIds
    this.blockSize = blockSize
  }
}

export class BlockRemoved {
  readonly type = 'BlockRemoved'
  readonly blockHashes: bigint[]
  readonly medium = 'GPU'

  constructor (blockHashes: bigint[]) {
    this.blockHashes = blockHashes
  }
}

export class AllBlocksCleared {
  readonly type = 'AllBlocksCleared'
}

export type KvEvent = BlockStored | BlockRemoved | AllBlocksCleared

/** One pass's events; `seq` counts batches from 0 per engine (the ZMQ publisher keeps its own). */
export class KvEventBatch {
  readonly seq: number
  /** Unix seconds (virtual clock: seconds since its epoch). */
  readonly ts: number
  readonly events: KvEvent[]
  readonly dpRank: number

  constructor (seq: number, ts: number, events: KvEvent[], dpRank: number) {
    this.seq = seq
    this.ts = ts
    this.events = events
    this.dpRank = dpRank
  }
}

export type KvEventListener = (batch: KvEventBatch) => void

/**
 * Collects events during a pass in the order they happen. Consecutive removals share one
 * BlockRemoved, as vLLM batches evictions; a store or clear in between starts a new one.
 */
export class KvEventCollector {
  private events: KvEvent[]
  private lastRemoved: BlockRemoved | null

  constructor () {
    this.events = []
    this.lastRemoved = null
  }

  get pending (): number {
    return this.events.length
  }

  stored (hashes: bigint[], parent: bigint | null, tokenIds: Uint32Array, blockSize: number): void {
    this.lastRemoved = null
    this.events.push(new BlockStored(hashes, parent, tokenIds, blockSize))
  }

  removed (hash: bigint): void {
    if (this.lastRemoved === null) {
      this.lastRemoved = new BlockRemoved([])
      this.events.push(this.lastRemoved)
    }
    this.lastRemoved.blockHashes.push(hash)
  }

  cleared (): void {
    this.lastRemoved = null
    this.events.push(new AllBlocksCleared())
  }

  /** Hands over the events collected so far (null when there were none). */
  take (): KvEvent[] | null {
    if (this.events.length === 0) return null
    const out = this.events
    this.events = []
    this.lastRemoved = null
    return out
  }
}
