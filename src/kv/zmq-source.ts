/**
 * Follows one engine's KV events over ZMQ (vLLM's and SGLang's publisher, DESIGN 4.2) and applies
 * them to the index for one worker.
 *
 * - SUB on the engine's PUB endpoint: frames [topic, seq u64 BE, payload]. zeromq reconnects by
 *   itself; the source never gives up on the endpoint until close().
 * - Sequence tracking: `lastLive` is the last seq seen on the live stream, `lastApplied` the last
 *   batch applied (live or replayed; replay can run ahead of the live stream).
 *   - seq ≤ lastLive: the live stream only rises within one publisher, so the engine restarted:
 *     the worker's blocks are cleared and the new publisher's batches are applied from its start.
 *   - seq > lastApplied + 1: batches were lost; a DEALER asks the replay ROUTER for everything from
 *     lastApplied + 1 (["", seq8] → ["", seq8, payload]… then the 0xFF…FF end marker). What replay
 *     cannot supply is counted in `lostBatches` and the state is kept: a lost batch affects only the
 *     blocks it touched, while clearing would throw away everything the worker holds.
 *   - The first batch after (re)connecting also catches up from seq 0 through replay, so a source
 *     that starts after the engine learns what the engine still has in its replay buffer.
 *   - A restart that does not lower the seq (the new engine published more batches than we had seen
 *     before we reconnected) is caught after a TCP disconnect: the next batch that would continue
 *     the stream first asks replay for the batch we applied last and compares the bytes; a
 *     different payload means a different publisher.
 * - Batches that fail to decode are counted (`decodeErrors`) and skipped; events before the error
 *   stay applied.
 *
 * @example
 * const src = new ZmqKvEventSource(index, { workerId: 'w0', endpoint: 'tcp://10.0.0.5:5557', replayEndpoint: 'tcp://10.0.0.5:5558' })
 * src.counters.gaps; src.blocks
 * await src.close()
 */
import { Dealer, Subscriber } from 'zeromq'
import { BlockKeyer } from './block-keys.js'
import { KvSourceCounters } from './counters.js'
import { KvDecodeError, KvOptionError } from './errors.js'
import { WorkerEventApplier } from './event-apply.js'
import { KvBatchDecoder } from './event-decoder.js'
import type { KvIndex } from './kv-index.js'

export interface ZmqKvEventSourceOptions {
  /** The worker these events describe (added to the index if new). */
  workerId: string
  /** The engine's PUB endpoint, e.g. tcp://10.0.0.5:5557. */
  endpoint: string
  /** The engine's replay ROUTER endpoint; null or absent: lost batches stay lost. */
  replayEndpoint?: string | null
  /** Topic prefix to subscribe to; default "" (everything, vLLM's default topic). */
  topic?: string
  /** How long a replay may take before it is abandoned, ms. Default 2000. */
  replayTimeoutMs?: number
  /** ZMQ reconnect interval, ms. Default 100 (zeromq's). */
  reconnectIntervalMs?: number
  /** Batches ZMQ queues before dropping (dropped ones come back through replay). Default 10000. */
  receiveHighWaterMark?: number
}

const KEYS = new Set(['workerId', 'endpoint', 'replayEndpoint', 'topic', 'replayTimeoutMs', 'reconnectIntervalMs', 'receiveHighWaterMark'])
const EMPTY = Buffer.alloc(0)

export class ZmqKvEventSource {
  readonly workerId: string
  readonly slot: number
  readonly endpoint: string
  readonly replayEndpoint: string | null
  readonly counters: KvSourceCounters
  private readonly index: KvIndex
  private readonly sub: Subscriber
  private readonly decoder: KvBatchDecoder
  private readonly applier: WorkerEventApplier
  private readonly replayTimeoutMs: number
  private dealer: Dealer | null
  private lastLive: number
  private lastApplied: number
  /** The payload of the batch applied last, to recognise the publisher after a disconnect. */
  private lastPayload: Buffer | null
  private suspect: boolean
  private closed: boolean
  private readonly loop: Promise<void>

  constructor (index: KvIndex, opts: ZmqKvEventSourceOptions) {
    for (const key of Object.keys(opts)) {
      if (!KEYS.has(key)) throw new KvOptionError(`unknown KV event source option "${key}"; accepted: ${[...KEYS].join(', ')}`)
    }
    if (typeof opts.workerId !== 'string' || opts.workerId === '') throw new KvOptionError('workerId must be a non-empty string')
    if (typeof opts.endpoint !== 'string' || !/^[a-z]+:\/\/./.test(opts.endpoint)) {
      throw new KvOptionError(`endpoint must be a ZMQ endpoint such as tcp://host:5557, got ${JSON.stringify(opts.endpoint)}`)
    }
    const replayTimeoutMs = opts.replayTimeoutMs ?? 2000
    if (!Number.isInteger(replayTimeoutMs) || replayTimeoutMs < 1) throw new KvOptionError('replayTimeoutMs must be a positive integer')
    this.index = index
    this.workerId = opts.workerId
    this.slot = index.addWorker(opts.workerId)
    this.endpoint = opts.endpoint
    this.replayEndpoint = opts.replayEndpoint ?? null
    this.replayTimeoutMs = replayTimeoutMs
    this.counters = new KvSourceCounters()
    this.decoder = new KvBatchDecoder()
    this.applier = new WorkerEventApplier(index, this.slot, new BlockKeyer(index.blockSize), this.counters)
    this.dealer = null
    this.lastLive = -1
    this.lastApplied = -1
    this.lastPayload = null
    this.suspect = false
    this.closed = false
    this.sub = new Subscriber({
      linger: 0,
      receiveHighWaterMark: opts.receiveHighWaterMark ?? 10000,
      reconnectInterval: opts.reconnectIntervalMs ?? 100
    })
    this.sub.events.on('disconnect', () => { this.suspect = true })
    this.sub.connect(opts.endpoint)
    this.sub.subscribe(opts.topic ?? '')
    this.loop = this.run()
  }

  /** Blocks the index holds for this worker. */
  get blocks (): number {
    return this.index.blockCount(this.slot)
  }

  /** The last batch applied (−1 before the first). */
  get lastSeq (): number {
    return this.lastApplied
  }

  /** Stops following the engine. The worker's blocks stay in the index (`index.removeWorker` drops them). Idempotent. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.sub.close()
    this.dropDealer()
    await this.loop
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }

  private async run (): Promise<void> {
    try {
      for await (const frames of this.sub) {
        if (this.closed) break
        await this.onBatch(frames)
      }
    } catch (err) {
      if (!this.closed) process.emitWarning(`KV events from ${this.endpoint}: subscriber failed: ${(err as Error).message}`)
    }
  }

  private async onBatch (frames: Buffer[]): Promise<void> {
    // The worker was removed from the index (its slot may already name another worker): the owner
    // should close this source; until then its batches go nowhere.
    if (this.index.workerId(this.slot) !== this.workerId) {
      this.counters.orphanBatches++
      return
    }
    const seqFrame = frames[1]
    const payload = frames[2]
    if (frames.length < 3 || seqFrame === undefined || seqFrame.length !== 8 || payload === undefined) {
      this.counters.decodeErrors++
      return
    }
    const seq = readSeq(seqFrame)
    if (this.lastLive >= 0 && seq <= this.lastLive) this.restarted()
    else if (this.suspect && this.lastPayload !== null && seq > this.lastApplied) {
      // Reconnected after a disconnect and the stream seems to continue: make sure it is the same publisher.
      if (!await this.samePublisher()) this.restarted()
    }
    this.suspect = false
    this.lastLive = seq
    if (seq <= this.lastApplied) return // already applied through replay
    if (seq > this.lastApplied + 1) {
      if (this.lastApplied >= 0) this.counters.gaps++
      if (this.replayEndpoint !== null && !this.closed) await this.replayFrom(this.lastApplied + 1, null)
      if (this.closed || seq <= this.lastApplied) return
      if (this.lastApplied >= 0) this.counters.lostBatches += seq - this.lastApplied - 1
    }
    this.apply(seq, payload)
  }

  private restarted (): void {
    this.counters.restarts++
    this.index.clearWorker(this.slot)
    this.lastApplied = -1
    this.lastPayload = null
  }

  private apply (seq: number, payload: Buffer): void {
    this.lastApplied = seq
    this.lastPayload = payload
    this.counters.batches++
    try {
      this.decoder.decode(payload, this.applier)
    } catch (err) {
      this.counters.decodeErrors++
      // A decode error is the engine's; anything else is ours, but must not stop the stream either.
      if (!(err instanceof KvDecodeError)) process.emitWarning(`KV events from ${this.endpoint}: batch ${seq} failed: ${(err as Error).message}`)
    }
  }

  /** Asks replay for the batch applied last and compares it; true when it is ours or cannot be checked. */
  private async samePublisher (): Promise<boolean> {
    if (this.replayEndpoint === null) return true
    return await this.replayFrom(this.lastApplied, this.lastPayload)
  }

  /**
   * Applies what the replay socket holds from `from` on. With `expect`, the first batch must be
   * seq `from` with exactly these bytes (the publisher check); returns false when it is not.
   */
  private async replayFrom (from: number, expect: Buffer | null): Promise<boolean> {
    const counters = this.counters
    counters.replays++
    const dealer = this.replayDealer()
    try {
      await dealer.send([EMPTY, seqFrameOf(from)])
      let first = expect !== null
      for (;;) {
        const frames = await dealer.receive()
        const s = frames[1]
        if (s === undefined || s.length !== 8) throw new Error('malformed replay reply')
        if (isEndMarker(s)) return !first // an empty answer to the publisher check: it has no such batch
        const seq = readSeq(s)
        const payload = frames[2] ?? EMPTY
        if (first) {
          first = false
          if (seq === from) {
            if (!payload.equals(expect!)) {
              this.dropDealer() // the rest of this answer must not reach the next request
              return false
            }
            continue
          }
        }
        if (seq <= this.lastApplied) continue
        if (this.lastApplied >= 0 && seq > this.lastApplied + 1) counters.lostBatches += seq - this.lastApplied - 1
        this.apply(seq, payload)
        counters.replayedBatches++
      }
    } catch (err) {
      if (!this.closed) {
        counters.replayFailures++
        process.emitWarning(`KV events from ${this.endpoint}: replay from ${this.replayEndpoint ?? ''} failed: ${(err as Error).message}`)
      }
      this.dropDealer()
      return true
    }
  }

  private replayDealer (): Dealer {
    if (this.dealer === null) {
      this.dealer = new Dealer({ linger: 0, receiveTimeout: this.replayTimeoutMs, sendTimeout: this.replayTimeoutMs })
      this.dealer.connect(this.replayEndpoint!)
    }
    return this.dealer
  }

  private dropDealer (): void {
    this.dealer?.close()
    this.dealer = null
  }
}

/** A u64 BE sequence frame as a number (exact below 2^53; vLLM's sequences start at 0). */
function readSeq (b: Buffer): number {
  return b.readUInt32BE(0) * 0x100000000 + b.readUInt32BE(4)
}

function isEndMarker (b: Buffer): boolean {
  return b.readUInt32BE(0) === 0xffffffff && b.readUInt32BE(4) === 0xffffffff
}

function seqFrameOf (seq: number): Buffer {
  const b = Buffer.allocUnsafe(8)
  b.writeUInt32BE(Math.floor(seq / 0x100000000), 0)
  b.writeUInt32BE(seq >>> 0, 4)
  return b
}
