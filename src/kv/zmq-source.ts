/**
 * Follows one engine's KV events over ZMQ (vLLM's and SGLang's publisher, DESIGN 4.2) and applies
 * them to the index for one worker. The stream itself (SUB, sequence tracking, gap replay through
 * the engine's DEALER/ROUTER, restart detection) is `ZmqKvFollower` (zmq-follower.ts); this class
 * is its index-applying target:
 * - a batch is decoded straight into the index (`KvBatchDecoder` → `WorkerEventApplier`); batches
 *   that fail to decode are counted (`decodeErrors`) and skipped, events before the error stay applied;
 * - an engine restart clears the worker's blocks, and the new publisher's batches apply from its start;
 * - once the worker is gone from the index (its slot may name another worker), batches are counted
 *   in `orphanBatches` and touch nothing, not even the sequence state.
 *
 * @example
 * const src = new ZmqKvEventSource(index, { workerId: 'w0', endpoint: 'tcp://10.0.0.5:5557', replayEndpoint: 'tcp://10.0.0.5:5558' })
 * src.counters.gaps; src.blocks
 * await src.close()
 */
import { BlockKeyer } from './block-keys.js'
import { KvSourceCounters } from './counters.js'
import { KvOptionError } from './errors.js'
import { WorkerEventApplier } from './event-apply.js'
import { KvBatchDecoder } from './event-decoder.js'
import type { KvIndex } from './kv-index.js'
import { checkFollowerOptions, ZmqKvFollower, type ZmqKvFollowerOptions, type ZmqKvTarget } from './zmq-follower.js'

export interface ZmqKvEventSourceOptions extends Omit<ZmqKvFollowerOptions, 'counters'> {
  /** The worker these events describe (added to the index if new). */
  workerId: string
}

const KEYS = new Set(['workerId', 'endpoint', 'replayEndpoint', 'topic', 'replayTimeoutMs', 'reconnectIntervalMs', 'receiveHighWaterMark'])

export class ZmqKvEventSource {
  readonly workerId: string
  readonly slot: number
  readonly endpoint: string
  readonly replayEndpoint: string | null
  readonly counters: KvSourceCounters
  private readonly index: KvIndex
  private readonly decoder: KvBatchDecoder
  private readonly applier: WorkerEventApplier
  private readonly follower: ZmqKvFollower

  constructor (index: KvIndex, opts: ZmqKvEventSourceOptions) {
    for (const key of Object.keys(opts)) {
      if (!KEYS.has(key)) throw new KvOptionError(`unknown KV event source option "${key}"; accepted: ${[...KEYS].join(', ')}`)
    }
    if (typeof opts.workerId !== 'string' || opts.workerId === '') throw new KvOptionError('workerId must be a non-empty string')
    // Before addWorker: a rejected source must leave no worker behind.
    checkFollowerOptions(opts)
    this.index = index
    this.workerId = opts.workerId
    this.slot = index.addWorker(opts.workerId)
    this.endpoint = opts.endpoint
    this.replayEndpoint = opts.replayEndpoint ?? null
    this.counters = new KvSourceCounters()
    this.decoder = new KvBatchDecoder()
    this.applier = new WorkerEventApplier(index, this.slot, new BlockKeyer(index.blockSize), this.counters)
    const target: ZmqKvTarget = {
      accepts: () => {
        if (index.workerId(this.slot) === this.workerId) return true
        this.counters.orphanBatches++
        return false
      },
      apply: (_seq, payload) => { this.decoder.decode(payload, this.applier) },
      restarted: () => { index.clearWorker(this.slot) }
    }
    this.follower = new ZmqKvFollower(target, { ...opts, counters: this.counters })
  }

  /** Blocks the index holds for this worker. */
  get blocks (): number {
    return this.index.blockCount(this.slot)
  }

  /** The last batch applied (−1 before the first). */
  get lastSeq (): number {
    return this.follower.lastSeq
  }

  /** Stops following the engine. The worker's blocks stay in the index (`index.removeWorker` drops them). Idempotent. */
  async close (): Promise<void> {
    await this.follower.close()
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }
}
