/**
 * Follows an embedded engine's KV events in process (no sockets, no loss): the mock engine's
 * `engine.onKvEvents(fn)`, or anything shaped like it. kv does not import the mocker (DESIGN 3),
 * so the engine is described structurally here; the mocker's MockEngine satisfies it.
 *
 * Hashes arrive as BigInts here; each is split into int32 halves once (a DataView write, no
 * allocation) and the rest is the same path as ZMQ events.
 *
 * @example
 * const src = new InProcessKvEventSource(index, engine, { workerId: 'mock-0' })
 * await src.close()
 */
import { BlockKeyer, splitU64 } from './block-keys.js'
import { KvSourceCounters } from './counters.js'
import { KvOptionError } from './errors.js'
import { WorkerEventApplier } from './event-apply.js'
import { DecodedBlocks } from './event-decoder.js'
import type { KvIndex } from './kv-index.js'

export interface InProcessBlockStored {
  readonly type: 'BlockStored'
  readonly blockHashes: readonly bigint[]
  readonly parentBlockHash: bigint | null
  /** Tokens of all stored blocks, concatenated. */
  readonly tokenIds: ArrayLike<number>
  readonly blockSize: number
  readonly loraName?: string | null
  readonly medium?: string | null
}

export interface InProcessBlockRemoved {
  readonly type: 'BlockRemoved'
  readonly blockHashes: readonly bigint[]
  readonly medium?: string | null
}

export interface InProcessAllBlocksCleared {
  readonly type: 'AllBlocksCleared'
}

export type InProcessKvEvent = InProcessBlockStored | InProcessBlockRemoved | InProcessAllBlocksCleared

export interface InProcessKvBatch {
  readonly seq: number
  readonly events: readonly InProcessKvEvent[]
}

/** What an embedded engine offers: a subscription to its KV event batches, returning the unsubscribe function. */
export interface InProcessKvEngine {
  onKvEvents (listener: (batch: InProcessKvBatch) => void): () => void
}

export interface InProcessKvEventSourceOptions {
  workerId: string
}

export class InProcessKvEventSource {
  readonly workerId: string
  readonly slot: number
  readonly counters: KvSourceCounters
  private readonly index: KvIndex
  private readonly applier: WorkerEventApplier
  private readonly ev: DecodedBlocks
  /** Token scratch for events whose tokens are not a Uint32Array. */
  private ownTokens: Uint32Array
  private unsubscribe: (() => void) | null

  constructor (index: KvIndex, engine: InProcessKvEngine, opts: InProcessKvEventSourceOptions) {
    if (typeof opts.workerId !== 'string' || opts.workerId === '') throw new KvOptionError('workerId must be a non-empty string')
    this.index = index
    this.workerId = opts.workerId
    this.slot = index.addWorker(opts.workerId)
    this.counters = new KvSourceCounters()
    this.applier = new WorkerEventApplier(index, this.slot, new BlockKeyer(index.blockSize), this.counters)
    this.ev = new DecodedBlocks()
    this.ownTokens = new Uint32Array(1024)
    this.unsubscribe = engine.onKvEvents((batch) => { this.onBatch(batch) })
  }

  get blocks (): number {
    return this.index.blockCount(this.slot)
  }

  /** Unsubscribes; the worker's blocks stay in the index. Idempotent. */
  async close (): Promise<void> {
    this.unsubscribe?.()
    this.unsubscribe = null
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }

  private onBatch (batch: InProcessKvBatch): void {
    // Removed from the index (the slot may name another worker now): see ZmqKvEventSource.
    if (this.index.workerId(this.slot) !== this.workerId) {
      this.counters.orphanBatches++
      return
    }
    this.counters.batches++
    for (const e of batch.events) {
      switch (e.type) {
        case 'BlockStored': this.applier.stored(this.fill(e.blockHashes, e.medium, e)); break
        case 'BlockRemoved': this.applier.removed(this.fill(e.blockHashes, e.medium, null)); break
        case 'AllBlocksCleared': this.applier.cleared(); break
        default: this.applier.unknown()
      }
    }
  }

  private fill (hashes: readonly bigint[], medium: string | null | undefined, stored: InProcessBlockStored | null): DecodedBlocks {
    const ev = this.ev
    ev.clear()
    const n = hashes.length
    if (ev.engine.length < 2 * n) ev.engine = new Int32Array(Math.max(2 * n, 2 * ev.engine.length))
    for (let i = 0; i < n; i++) splitU64(hashes[i]!, ev.engine, 2 * i)
    ev.count = n
    ev.gpu = medium === undefined || medium === null || medium === 'GPU'
    if (stored === null) return ev
    if (stored.parentBlockHash !== null) {
      splitU64(stored.parentBlockHash, ev.parent, 0)
      ev.hasParent = true
    }
    const tokens = stored.tokenIds
    if (tokens instanceof Uint32Array) ev.tokens = tokens
    else {
      if (this.ownTokens.length < tokens.length) this.ownTokens = new Uint32Array(Math.max(tokens.length, 2 * this.ownTokens.length))
      const own = this.ownTokens
      for (let i = 0; i < tokens.length; i++) own[i] = tokens[i]!
      ev.tokens = own
    }
    ev.tokenCount = tokens.length
    ev.blockSize = stored.blockSize
    ev.loraName = stored.loraName ?? null
    return ev
  }
}
