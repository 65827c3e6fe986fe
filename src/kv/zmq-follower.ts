/**
 * Follows one engine's KV event stream over ZMQ (vLLM's and SGLang's publisher, DESIGN 4.2) and
 * hands every batch, in sequence order, to a target: the index (`ZmqKvEventSource`) or the
 * registrar's NATS bridge (events/zmq-bridge.ts). What the target does with a payload is its own
 * business; ordering, loss and restarts are handled here once.
 *
 * - SUB on the engine's PUB endpoint: frames [topic, seq u64 BE, payload]. zeromq reconnects by
 *   itself; the follower never gives up on the endpoint until close().
 * - Sequence tracking: `lastLive` is the last seq seen on the live stream, `lastApplied` the last
 *   batch applied (live or replayed; replay can run ahead of the live stream).
 *   - seq ≤ lastLive: the live stream only rises within one publisher, so the engine restarted:
 *     the target is told (`restarted()`) and the new publisher's batches follow from its start.
 *   - seq > lastApplied + 1: batches were lost; a DEALER asks the replay ROUTER for everything from
 *     lastApplied + 1 (["", seq8] → ["", seq8, payload]… then the 0xFF…FF end marker). What replay
 *     cannot supply is counted in `lostBatches` and the state is kept: a lost batch affects only the
 *     blocks it touched, while clearing would throw away everything the worker holds.
 *   - The first batch after (re)connecting also catches up from seq 0 through replay, so a follower
 *     that starts after the engine learns what the engine still has in its replay buffer.
 *   - A restart that does not lower the seq (the new engine published more batches than we had seen
 *     before we reconnected) is caught after a TCP disconnect: the next batch that would continue
 *     the stream first asks replay for the batch we applied last and compares the bytes; a
 *     different payload means a different publisher.
 * - A target's `apply` that throws is counted (`decodeErrors`) and the stream goes on; a
 *   KvDecodeError is the engine's (expected, silent), anything else is ours and is warned about.
 *
 * @example
 * const f = new ZmqKvFollower({ apply (seq, payload) { ... }, restarted () { ... } }, { endpoint: 'tcp://10.0.0.5:5557', replayEndpoint: 'tcp://10.0.0.5:5558' })
 * await f.close()
 */
import { Buffer } from 'node:buffer'
import { Dealer, Subscriber } from 'zeromq'
import { KvSourceCounters } from './counters.js'
import { KvDecodeError, KvOptionError } from './errors.js'

/** What a follower feeds. Called synchronously, in seq order; `payload` is the raw batch bytes. */
export interface ZmqKvTarget {
  /**
   * Checked first for every live batch; false drops it before any sequence tracking (the target
   * counts it). Lets an owner whose worker is gone stop reacting before it closes the follower.
   */
  accepts?: () => boolean
  apply: (seq: number, payload: Buffer) => void
  /** The publisher restarted: what the target holds for this engine is void. */
  restarted: () => void
}

export interface ZmqKvFollowerOptions {
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
  /** Counters to update (shared with the target's); default a new set. */
  counters?: KvSourceCounters
}

const EMPTY = Buffer.alloc(0)

/** Validates the options the follower owns; throws KvOptionError. */
export function checkFollowerOptions (opts: ZmqKvFollowerOptions): void {
  if (typeof opts.endpoint !== 'string' || !/^[a-z]+:\/\/./.test(opts.endpoint)) {
    throw new KvOptionError(`endpoint must be a ZMQ endpoint such as tcp://host:5557, got ${JSON.stringify(opts.endpoint)}`)
  }
  const t = opts.replayTimeoutMs
  if (t !== undefined && (!Number.isInteger(t) || t < 1)) throw new KvOptionError('replayTimeoutMs must be a positive integer')
}

export class ZmqKvFollower {
  readonly endpoint: string
  readonly replayEndpoint: string | null
  readonly counters: KvSourceCounters
  private readonly target: ZmqKvTarget
  private readonly sub: Subscriber
  private readonly replayTimeoutMs: number
  private dealer: Dealer | null
  private lastLive: number
  private lastApplied: number
  /** The payload of the batch applied last, to recognise the publisher after a disconnect. */
  private lastPayload: Buffer | null
  private suspect: boolean
  private closed: boolean
  private readonly loop: Promise<void>

  constructor (target: ZmqKvTarget, opts: ZmqKvFollowerOptions) {
    checkFollowerOptions(opts)
    this.target = target
    this.endpoint = opts.endpoint
    this.replayEndpoint = opts.replayEndpoint ?? null
    this.replayTimeoutMs = opts.replayTimeoutMs ?? 2000
    this.counters = opts.counters ?? new KvSourceCounters()
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

  /** The last batch applied (−1 before the first, and right after a restart). */
  get lastSeq (): number {
    return this.lastApplied
  }

  /** Stops following; waits for the batch in hand to finish. Idempotent. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.sub.close()
    this.dropDealer()
    await this.loop
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
    if (this.target.accepts !== undefined && !this.target.accepts()) return
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
    this.target.restarted()
    this.lastApplied = -1
    this.lastPayload = null
  }

  private apply (seq: number, payload: Buffer): void {
    this.lastApplied = seq
    this.lastPayload = payload
    this.counters.batches++
    try {
      this.target.apply(seq, payload)
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
