/**
 * The registrar's KV bridge: follows an engine's ZMQ KV event stream (vLLM / SGLang, DESIGN 4.2)
 * once, beside the engine, and republishes it on the NATS event plane (`switchyard.<ns>.kv.<worker>`,
 * kv-publisher.ts), so gateways take the worker's events from NATS like a mocker's: one decode
 * per fleet instead of one ZMQ subscription per gateway, and late or lossy gateways repair from
 * the publisher's snapshot (its BlockMirror) instead of the engine's replay buffer.
 *
 * - Ordering, gaps and engine restarts on the ZMQ side are the follower's (kv/zmq-follower.ts):
 *   batches reach the bridge in seq order, replayed ones included.
 * - One ZMQ batch becomes one NATS message (none when nothing in it is published).
 * - Dropped here, exactly as the index would drop them (kv/event-apply.ts): media other than the
 *   GPU, KV cache groups other than 0, unknown event types (`ignoredEvents`), and BlockStored whose
 *   token ids do not cover its blocks (`malformedEvents`). Block sizes are passed on as they are;
 *   each gateway skips what its index cannot hold.
 * - A ZMQ publisher restart publishes an AllBlocksCleared (and clears the mirror), so every gateway
 *   drops the worker's blocks and follows the new engine's from its start.
 * - A batch that fails to decode publishes the events decoded before the error (the index path
 *   keeps them applied too) and counts `decodeErrors`.
 *
 * @example
 * const bridge = new ZmqNatsBridge(nc, { namespace: 'default', workerId: '10.0.0.11:8000', endpoint: 'tcp://10.0.0.11:5557', replayEndpoint: 'tcp://10.0.0.11:5558' })
 * bridge.counters.storedBlocks; bridge.published
 * await bridge.close()
 */
import { Buffer } from 'node:buffer'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  KvBatchDecoder, KvOptionError, KvSourceCounters, isIndexedTier, loraOf, pairToBigInt, ZmqKvFollower,
  type DecodedBlocks, type InProcessKvEvent, type KvEventSink
} from '../kv/index.js'
import { checkNamespace } from './envelope.js'
import { NatsKvPublisher } from './kv-publisher.js'

export interface ZmqNatsBridgeOptions {
  /** Event plane namespace (one subject token). */
  namespace: string
  /** The worker id gateways know the engine by (its discovery record's id). */
  workerId: string
  /** The engine's ZMQ PUB endpoint, e.g. tcp://10.0.0.11:5557. */
  endpoint: string
  /** Its replay ROUTER endpoint; null or absent: batches lost on ZMQ stay lost. */
  replayEndpoint?: string | null
  /** Tokens per block for events that do not carry `block_size`; default: derived from the event. */
  blockSize?: number | null
  /** ZMQ topic prefix; default "" (vLLM's). */
  topic?: string
  /** ZMQ replay deadline, ms. Default 2000. */
  replayTimeoutMs?: number
  /** ZMQ reconnect interval, ms. Default 100. */
  reconnectIntervalMs?: number
  /** Batches ZMQ queues before dropping (they come back through replay). Default 10000. */
  receiveHighWaterMark?: number
  /** Largest snapshot chunk, bytes. Default NatsKvPublisher's. */
  snapshotChunkBytes?: number
}

const KEYS = new Set(['namespace', 'workerId', 'endpoint', 'replayEndpoint', 'blockSize', 'topic', 'replayTimeoutMs', 'reconnectIntervalMs', 'receiveHighWaterMark', 'snapshotChunkBytes'])

const CLEARED: InProcessKvEvent = Object.freeze({ type: 'AllBlocksCleared' })

/**
 * Decoded events (int32 hash pairs, reused scratch) → the `InProcessKvEvent` objects a
 * NatsKvPublisher takes (BigInt hashes, own token copies), collected per batch in `events`.
 */
export class InProcessEventCollector implements KvEventSink {
  events: InProcessKvEvent[]
  readonly counters: KvSourceCounters
  private readonly blockSize: number | null

  constructor (counters: KvSourceCounters, blockSize: number | null = null) {
    this.events = []
    this.counters = counters
    this.blockSize = blockSize
  }

  /** The events collected since the last call; starts a new batch. */
  take (): InProcessKvEvent[] {
    const out = this.events
    this.events = []
    return out
  }

  stored (ev: DecodedBlocks): void {
    const counters = this.counters
    counters.events++
    if (!isIndexedTier(ev)) {
      counters.ignoredEvents++
      return
    }
    const n = ev.count
    const bs = ev.blockSize > 0 ? ev.blockSize : this.blockSize ?? (n > 0 && ev.tokenCount % n === 0 ? ev.tokenCount / n : 0)
    if (n === 0 || bs <= 0 || ev.tokenCount !== n * bs) {
      counters.malformedEvents++
      return
    }
    const lora = loraOf(ev)
    this.events.push({
      type: 'BlockStored',
      blockHashes: hashesOf(ev),
      parentBlockHash: ev.hasParent ? pairToBigInt(ev.parent[0]!, ev.parent[1]!) : null,
      tokenIds: ev.tokens.slice(0, ev.tokenCount),
      blockSize: bs,
      loraName: lora,
      medium: null
    })
    counters.stores++
    counters.storedBlocks += n
  }

  removed (ev: DecodedBlocks): void {
    const counters = this.counters
    counters.events++
    if (!isIndexedTier(ev)) {
      counters.ignoredEvents++
      return
    }
    this.events.push({ type: 'BlockRemoved', blockHashes: hashesOf(ev), medium: null })
    counters.removals++
    counters.removedBlocks += ev.count
  }

  cleared (): void {
    this.counters.events++
    this.events.push(CLEARED)
    this.counters.clears++
  }

  unknown (): void {
    this.counters.events++
    this.counters.ignoredEvents++
  }
}

function hashesOf (ev: DecodedBlocks): bigint[] {
  const out = new Array<bigint>(ev.count)
  const e = ev.engine
  for (let i = 0; i < ev.count; i++) out[i] = pairToBigInt(e[2 * i]!, e[2 * i + 1]!)
  return out
}

export class ZmqNatsBridge {
  readonly workerId: string
  readonly endpoint: string
  readonly replayEndpoint: string | null
  /** ZMQ side (batches, gaps, replays, restarts...) and events by kind, as the index's sources count them. */
  readonly counters: KvSourceCounters
  readonly publisher: NatsKvPublisher
  private readonly decoder: KvBatchDecoder
  private readonly collector: InProcessEventCollector
  private readonly follower: ZmqKvFollower
  private closed: boolean

  constructor (nc: NatsConnection, opts: ZmqNatsBridgeOptions) {
    for (const key of Object.keys(opts)) {
      if (!KEYS.has(key)) throw new KvOptionError(`unknown ZMQ bridge option "${key}"; accepted: ${[...KEYS].join(', ')}`)
    }
    if (typeof opts.workerId !== 'string' || opts.workerId === '') throw new KvOptionError('workerId must be a non-empty string')
    const ns = checkNamespace(opts.namespace)
    const bs = opts.blockSize ?? null
    if (bs !== null && (!Number.isInteger(bs) || bs < 1)) throw new KvOptionError('blockSize must be a positive integer')
    this.workerId = opts.workerId
    this.endpoint = opts.endpoint
    this.replayEndpoint = opts.replayEndpoint ?? null
    this.counters = new KvSourceCounters()
    this.decoder = new KvBatchDecoder()
    this.collector = new InProcessEventCollector(this.counters, bs)
    this.closed = false
    this.publisher = new NatsKvPublisher(nc, { namespace: ns, workerId: opts.workerId, ...(opts.snapshotChunkBytes === undefined ? {} : { snapshotChunkBytes: opts.snapshotChunkBytes }) })
    const followerOpts = {
      endpoint: opts.endpoint,
      replayEndpoint: this.replayEndpoint,
      counters: this.counters,
      ...(opts.topic === undefined ? {} : { topic: opts.topic }),
      ...(opts.replayTimeoutMs === undefined ? {} : { replayTimeoutMs: opts.replayTimeoutMs }),
      ...(opts.reconnectIntervalMs === undefined ? {} : { reconnectIntervalMs: opts.reconnectIntervalMs }),
      ...(opts.receiveHighWaterMark === undefined ? {} : { receiveHighWaterMark: opts.receiveHighWaterMark })
    }
    try {
      this.follower = new ZmqKvFollower({
        apply: (_seq, payload) => { this.forward(payload) },
        restarted: () => { this.publisher.publish([CLEARED]) }
      }, followerOpts)
    } catch (err) {
      void this.publisher.close()
      throw err
    }
  }

  /** NATS messages published on the kv subject. */
  get published (): number {
    return this.publisher.published
  }

  /** Blocks the engine holds as far as its events tell (the snapshot a gateway would get). */
  get blocks (): number {
    return this.publisher.mirror.size
  }

  /** The last ZMQ batch forwarded (−1 before the first). */
  get lastSeq (): number {
    return this.follower.lastSeq
  }

  /** Stops following the engine and answering snapshots. Close it before the NATS connection. Idempotent. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.follower.close()
    await this.publisher.close()
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }

  private forward (payload: Buffer): void {
    try {
      this.decoder.decode(payload, this.collector)
    } finally {
      // Events decoded before a malformed one still go out: the index path keeps them applied too.
      const events = this.collector.take()
      if (events.length > 0) this.publisher.publish(events)
    }
  }
}
