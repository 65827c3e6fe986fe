/**
 * Publishes an engine's KV events the way vLLM does (DESIGN 4.2), so any vLLM event subscriber —
 * ours, Dynamo's, llm-d's — can consume the mock engine:
 * - PUB socket, 3 frames per batch: [topic utf8, seq u64 big-endian, msgpack payload]; seq starts
 *   at 0 for each publisher and rises by one per batch.
 * - ROUTER replay socket: a DEALER sends ["", seq8] and gets ["", seq8, payload] for every batch
 *   still buffered from seq on, then ["", 0xFFFFFFFFFFFFFFFF, ""]. The last N batches are kept.
 *
 * Forward-pass metrics go out on a separate PUB socket (topic "load") so that a vLLM-style
 * subscriber listening to every topic on the KV socket never sees anything but KV batches.
 */
import { Buffer } from 'node:buffer'
import { Publisher, Router } from 'zeromq'
import { KvBatchEncoder, PassMetricsEncoder } from './event-codec.js'
import type { KvEventFormat } from './event-codec.js'
import type { MockEngine } from './engine.js'
import type { KvEventBatch } from './kv-events.js'
import type { ForwardPassMetrics } from './pass-metrics.js'

const EMPTY = Buffer.alloc(0)
const END_SEQ = Buffer.from('ffffffffffffffff', 'hex')

export interface KvEventPublisherOptions {
  /** Interface to bind; default 127.0.0.1. */
  host?: string
  /** PUB port; 0 picks a free one. */
  port: number
  /** ROUTER replay port; 0 picks a free one; null: no replay socket. Default null. */
  replayPort?: number | null
  /** Topic frame; default "" (vLLM's default). */
  topic?: string
  /** "map" (default) or vLLM's legacy tagged arrays. */
  format?: KvEventFormat
  /** Batches kept for replay; default 10000 (vLLM's). */
  replayBufferSize?: number
}

function seqFrame (seq: number): Buffer {
  const b = Buffer.allocUnsafe(8)
  b.writeUInt32BE(Math.floor(seq / 0x100000000), 0)
  b.writeUInt32BE(seq >>> 0, 4)
  return b
}

/** Sends multipart messages one at a time: a zeromq socket allows one pending send. */
class SendQueue {
  private readonly socket: Publisher | Router
  private readonly queue: Buffer[][]
  private busy: boolean
  closed: boolean

  constructor (socket: Publisher | Router) {
    this.socket = socket
    this.queue = []
    this.busy = false
    this.closed = false
  }

  push (frames: Buffer[]): void {
    if (this.closed) return
    this.queue.push(frames)
    if (!this.busy) void this.pump()
  }

  private async pump (): Promise<void> {
    this.busy = true
    let frames = this.queue.shift()
    while (frames !== undefined && !this.closed) {
      try {
        await this.socket.send(frames)
      } catch (err) {
        if (this.closed) break
        process.emitWarning(`mock engine: ZMQ send failed: ${(err as Error).message}`)
      }
      frames = this.queue.shift()
    }
    this.queue.length = 0
    this.busy = false
  }
}

export class KvEventPublisher {
  readonly endpoint: string
  readonly replayEndpoint: string | null
  private readonly pub: Publisher
  private readonly router: Router | null
  private readonly out: SendQueue
  private readonly topic: Buffer
  private readonly encoder: KvBatchEncoder
  private readonly ringSeq: number[]
  private readonly ringPayload: Buffer[]
  private readonly ringSize: number
  private ringCount: number
  private ringNext: number
  private seq: number
  private dropNext: number
  private unsubscribe: (() => void) | null
  private replayDone: Promise<void>
  private closed: boolean

  private constructor (pub: Publisher, router: Router | null, opts: KvEventPublisherOptions) {
    this.pub = pub
    this.router = router
    this.endpoint = pub.lastEndpoint ?? ''
    this.replayEndpoint = router === null ? null : router.lastEndpoint ?? null
    this.out = new SendQueue(pub)
    this.topic = Buffer.from(opts.topic ?? '', 'utf8')
    this.encoder = new KvBatchEncoder(opts.format ?? 'map')
    this.ringSize = opts.replayBufferSize ?? 10000
    this.ringSeq = []
    this.ringPayload = []
    this.ringCount = 0
    this.ringNext = 0
    this.seq = 0
    this.dropNext = 0
    this.unsubscribe = null
    this.replayDone = Promise.resolve()
    this.closed = false
  }

  /**
   * Binds the sockets and starts publishing `engine`'s KV event batches.
   *
   * @example
   * const pub = await KvEventPublisher.start(engine, { port: 5557, replayPort: 5558 })
   */
  static async start (engine: MockEngine, opts: KvEventPublisherOptions): Promise<KvEventPublisher> {
    const host = opts.host ?? '127.0.0.1'
    const pub = new Publisher({ linger: 0 })
    let router: Router | null = null
    try {
      await pub.bind(`tcp://${host}:${opts.port}`)
      if (opts.replayPort !== undefined && opts.replayPort !== null) {
        router = new Router({ linger: 0 })
        await router.bind(`tcp://${host}:${opts.replayPort}`)
      }
    } catch (err) {
      pub.close()
      router?.close()
      throw err
    }
    const p = new KvEventPublisher(pub, router, opts)
    if (router !== null) p.replayDone = p.serveReplay(router)
    p.unsubscribe = engine.onKvEvents((batch) => p.publish(batch))
    return p
  }

  /** Sequence number the next batch will carry. */
  get nextSeq (): number {
    return this.seq
  }

  /**
   * Test hook: the next `count` batches get their sequence numbers and go into the replay buffer
   * but are not sent, as if the network lost them.
   */
  dropNextBatches (count = 1): void {
    this.dropNext += count
  }

  publish (batch: KvEventBatch): void {
    if (this.closed) return
    const seq = this.seq++
    const payload = this.encoder.encode(batch)
    if (this.ringSize > 0) {
      this.ringSeq[this.ringNext] = seq
      this.ringPayload[this.ringNext] = payload
      this.ringNext = (this.ringNext + 1) % this.ringSize
      if (this.ringCount < this.ringSize) this.ringCount++
    }
    if (this.dropNext > 0) {
      this.dropNext--
      return
    }
    this.out.push([this.topic, seqFrame(seq), payload])
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.unsubscribe?.()
    this.out.closed = true
    this.pub.close()
    this.router?.close()
    await this.replayDone
  }

  private async serveReplay (router: Router): Promise<void> {
    try {
      for await (const frames of router) {
        // [identity, "", seq8] from a DEALER.
        const id = frames[0]
        const start = frames[2]
        if (id === undefined || start === undefined || start.length !== 8) continue
        const from = start.readUInt32BE(0) * 0x100000000 + start.readUInt32BE(4)
        const oldest = (this.ringNext - this.ringCount + this.ringSize) % this.ringSize
        for (let k = 0; k < this.ringCount; k++) {
          const at = (oldest + k) % this.ringSize
          const seq = this.ringSeq[at]!
          if (seq < from) continue
          await router.send([id, EMPTY, seqFrame(seq), this.ringPayload[at]!])
        }
        await router.send([id, EMPTY, END_SEQ, EMPTY])
      }
    } catch (err) {
      if (!this.closed) process.emitWarning(`mock engine: KV replay socket failed: ${(err as Error).message}`)
    }
  }
}

export interface LoadPublisherOptions {
  host?: string
  port: number
  /** Default "load". */
  topic?: string
}

/**
 * Publishes forward-pass metrics: [topic "load", seq u64 BE, msgpack map] per pass and heartbeat.
 * See event-codec.ts for the map's keys.
 */
export class LoadPublisher {
  readonly endpoint: string
  private readonly pub: Publisher
  private readonly out: SendQueue
  private readonly topic: Buffer
  private readonly encoder: PassMetricsEncoder
  private readonly engine: MockEngine
  private seq: number
  private unsubscribe: (() => void) | null
  private closed: boolean

  private constructor (engine: MockEngine, pub: Publisher, topic: string) {
    this.engine = engine
    this.pub = pub
    this.endpoint = pub.lastEndpoint ?? ''
    this.out = new SendQueue(pub)
    this.topic = Buffer.from(topic, 'utf8')
    this.encoder = new PassMetricsEncoder()
    this.seq = 0
    this.unsubscribe = null
    this.closed = false
  }

  static async start (engine: MockEngine, opts: LoadPublisherOptions): Promise<LoadPublisher> {
    const pub = new Publisher({ linger: 0 })
    try {
      await pub.bind(`tcp://${opts.host ?? '127.0.0.1'}:${opts.port}`)
    } catch (err) {
      pub.close()
      throw err
    }
    const p = new LoadPublisher(engine, pub, opts.topic ?? 'load')
    p.unsubscribe = engine.onPass((m) => p.publish(m))
    return p
  }

  publish (m: ForwardPassMetrics): void {
    if (this.closed) return
    this.out.push([this.topic, seqFrame(this.seq++), this.encoder.encode(m, this.engine.clock.unixSeconds())])
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.unsubscribe?.()
    this.out.closed = true
    this.pub.close()
  }
}
