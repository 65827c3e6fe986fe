/**
 * A worker's side of the `kv` topic: publishes its KV event batches in the compact wire form
 * (kv-wire.ts) on `switchyard.<ns>.kv.<worker>`, keeps a mirror of its blocks, and answers
 * snapshot requests on `switchyard.<ns>.kvsnap.<worker>` with every block it holds.
 *
 * Snapshot replies are several messages (chunks, each an envelope whose payload is
 * `{ events, last }`, the envelope's seq being the last kv seq the snapshot includes) followed by an
 * empty message: the requester uses `requestMany` with the sentinel strategy.
 *
 * @example
 * const pub = new NatsKvPublisher(nc, { namespace: 'default', workerId: '10.0.0.5:8000' })
 * engine.onKvEvents((batch) => pub.publish(batch.events))
 * await pub.close()
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import type { InProcessKvEvent } from '../kv/index.js'
import { EnvelopeWriter, newPublisherId, subjectFor } from './envelope.js'
import { BlockMirror, toWire, type WireKvEvent } from './kv-wire.js'

export interface NatsKvPublisherOptions {
  namespace: string
  workerId: string
  /** Largest snapshot chunk, bytes (approximate). Default 256 KiB (NATS's default max payload is 1 MiB). */
  snapshotChunkBytes?: number
}

export class NatsKvPublisher {
  readonly workerId: string
  readonly mirror: BlockMirror
  /** Messages published and snapshot requests answered, for tests and status. */
  published: number
  snapshots: number
  private readonly nc: NatsConnection
  private readonly writer: EnvelopeWriter
  private readonly snapWriter: EnvelopeWriter
  private readonly sub: Subscription
  private readonly chunkBytes: number
  private drop: number
  private closed: boolean

  constructor (nc: NatsConnection, opts: NatsKvPublisherOptions) {
    this.nc = nc
    this.workerId = opts.workerId
    this.mirror = new BlockMirror()
    this.published = 0
    this.snapshots = 0
    const publisher = newPublisherId()
    this.writer = new EnvelopeWriter(subjectFor(opts.namespace, 'kv', opts.workerId), publisher)
    this.snapWriter = new EnvelopeWriter(subjectFor(opts.namespace, 'kvsnap', opts.workerId), publisher)
    this.chunkBytes = opts.snapshotChunkBytes ?? 256 * 1024
    this.drop = 0
    this.closed = false
    this.sub = nc.subscribe(this.snapWriter.subject, { callback: (err, msg) => { if (err === null) this.answer(msg.reply ?? null) } })
  }

  get publisherId (): string {
    return this.writer.publisher
  }

  get seq (): number {
    return this.writer.seq
  }

  /** Publishes one batch (one engine pass's events). Events not published (other tiers) are skipped. */
  publish (events: readonly InProcessKvEvent[]): void {
    if (this.closed) return
    const wire: WireKvEvent[] = []
    for (const e of events) {
      const w = toWire(e)
      if (w === null) continue
      this.mirror.apply(e)
      wire.push(w)
    }
    if (wire.length === 0) return
    const data = this.writer.next(wire)
    if (this.drop > 0) { this.drop--; return }
    this.nc.publish(this.writer.subject, data)
    this.published++
  }

  /** Test hook: the next `n` batches consume a seq but are not sent (a loss subscribers must repair). */
  dropNext (n: number): void {
    this.drop += n
  }

  private answer (reply: string | null): void {
    if (reply === null || this.closed) return
    this.snapshots++
    const chunks = this.mirror.snapshot(this.chunkBytes)
    const seq = this.writer.seq
    const ts = Date.now()
    for (let i = 0; i < chunks.length; i++) {
      this.nc.publish(reply, this.snapWriter.encode({ publisher: this.writer.publisher, seq, ts, payload: { events: chunks[i], last: i === chunks.length - 1 } }))
    }
    this.nc.publish(reply) // the sentinel: end of the reply
  }

  /** Stops answering and publishing. Idempotent. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.sub.unsubscribe()
  }
}
