/**
 * The `load` topic: a worker's engine-side load (what its last forward pass scheduled, what waits,
 * KV usage), published on change at most every `minIntervalMs`, and a board that keeps the latest
 * report per worker on the gateway (or `switchyard status`) side.
 *
 * Payload (msgpack map, inside the envelope): {running, waiting, waiting_tokens, kv_active,
 * kv_total, kv_usage, hit_rate}.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import { EnvelopeWriter, newPublisherId, readEnvelope, subjectFor, wildcardFor, workerOfSubject } from './envelope.js'

/** What a publisher reads at each report (the mock engine's ForwardPassMetrics has these fields). */
export interface LoadSample {
  runningRequests: number
  waitingRequests: number
  waitingTokens: number
  kvActiveBlocks: number
  kvTotalBlocks: number
  kvUsage: number
  prefixCacheHitRate: number
}

export interface LoadReport {
  running: number
  waiting: number
  waiting_tokens: number
  kv_active: number
  kv_total: number
  kv_usage: number
  hit_rate: number
}

export class NatsLoadPublisher {
  private readonly nc: NatsConnection
  private readonly writer: EnvelopeWriter
  private readonly minIntervalMs: number
  private readonly report: LoadReport
  private lastSent: number
  private dirty: boolean
  private timer: NodeJS.Timeout | null
  private closed: boolean

  constructor (nc: NatsConnection, opts: { namespace: string, workerId: string, minIntervalMs?: number }) {
    this.nc = nc
    this.writer = new EnvelopeWriter(subjectFor(opts.namespace, 'load', opts.workerId), newPublisherId())
    this.minIntervalMs = opts.minIntervalMs ?? 100
    this.report = { running: 0, waiting: 0, waiting_tokens: 0, kv_active: 0, kv_total: 0, kv_usage: 0, hit_rate: 0 }
    this.lastSent = 0
    this.dirty = false
    this.timer = null
    this.closed = false
  }

  /** Records a sample; sends now, or at the end of the current interval (latest sample wins). */
  update (s: LoadSample): void {
    if (this.closed) return
    const r = this.report
    r.running = s.runningRequests
    r.waiting = s.waitingRequests
    r.waiting_tokens = s.waitingTokens
    r.kv_active = s.kvActiveBlocks
    r.kv_total = s.kvTotalBlocks
    r.kv_usage = s.kvUsage
    r.hit_rate = s.prefixCacheHitRate
    this.dirty = true
    const wait = this.lastSent + this.minIntervalMs - Date.now()
    if (wait <= 0) this.flush()
    else if (this.timer === null) {
      this.timer = setTimeout(() => { this.timer = null; this.flush() }, wait)
      this.timer.unref()
    }
  }

  private flush (): void {
    if (!this.dirty || this.closed || this.nc.isClosed()) return
    this.dirty = false
    this.lastSent = Date.now()
    this.nc.publish(this.writer.subject, this.writer.next(this.report))
  }

  close (): void {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }
}

export interface LoadEntry {
  report: LoadReport
  /** Local receipt time (ms since the epoch). */
  receivedAt: number
}

/** The latest load report per worker, from `switchyard.<ns>.load.*`. */
export class LoadBoard {
  readonly latest = new Map<string, LoadEntry>()
  private readonly sub: Subscription
  private readonly nc: NatsConnection

  constructor (nc: NatsConnection, opts: { namespace: string }) {
    this.nc = nc
    this.sub = nc.subscribe(wildcardFor(opts.namespace, 'load'), {
      callback: (err, msg) => {
        if (err !== null) return
        const env = readEnvelope(msg.data)
        if (env === null || typeof env.payload !== 'object' || env.payload === null) return
        this.latest.set(workerOfSubject(msg.subject), { report: env.payload as LoadReport, receivedAt: Date.now() })
      }
    })
  }

  get (workerId: string): LoadEntry | undefined {
    return this.latest.get(workerId)
  }

  forget (workerId: string): void {
    this.latest.delete(workerId)
  }

  close (): void {
    if (!this.nc.isClosed()) this.sub.unsubscribe()
  }
}
