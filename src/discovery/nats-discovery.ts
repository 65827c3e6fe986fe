/**
 * A gateway's view of the discovery bucket: lists it, then watches it, and reports workers that
 * appear, change or leave. A record leaves when it is deleted or purged, or when it has not been
 * refreshed for one TTL (the server drops expired records without telling watchers on 2.9, see
 * bucket.ts, so the gateway ages them itself with one coarse sweep timer).
 *
 * While NATS is unreachable nothing ages: the gateway keeps serving its last-known fleet and gives
 * every record a fresh TTL when the connection comes back (then re-lists the bucket).
 *
 * @example
 * const d = new NatsDiscovery(nc, { onUpsert: (r) => add(r), onRemove: (id) => remove(id) })
 * await d.start() // resolves after the initial listing
 * await d.close()
 */
import { KvWatchInclude, type KV, type KvEntry } from '@nats-io/kv'
import type { NatsConnection } from '@nats-io/transport-node'
import { openWorkerBucket, ttlOf } from './bucket.js'
import { DEFAULT_BUCKET, DEFAULT_TTL_MS, idOfKey, parseRecord, type WorkerRecord } from './record.js'

export interface NatsDiscoveryOptions {
  bucket?: string
  /** TTL when this gateway creates the bucket; the bucket's own max age is used for ageing. */
  ttlMs?: number
  /** A record is new, or changed. */
  onUpsert: (record: WorkerRecord) => void
  /** A record was deleted or expired. */
  onRemove: (id: string, reason: 'deleted' | 'expired') => void
  onWarn?: (msg: string) => void
}

interface Known {
  record: WorkerRecord
  /** Local time the record was last written (server time of the put, capped at now). */
  seenAt: number
  revision: number
}

export class NatsDiscovery implements AsyncDisposable {
  readonly known = new Map<string, Known>()
  ttlMs: number
  private readonly nc: NatsConnection
  private readonly opts: NatsDiscoveryOptions
  private kv: KV | null
  private watcher: { stop (): void } | null
  private sweeper: NodeJS.Timeout | null
  /** Highest revision seen per key, deletes included: a listing never resurrects a newer delete. */
  private readonly revisions = new Map<string, number>()
  private connected: boolean
  private closed: boolean

  constructor (nc: NatsConnection, opts: NatsDiscoveryOptions) {
    this.nc = nc
    this.opts = opts
    this.ttlMs = opts.ttlMs ?? DEFAULT_TTL_MS
    this.kv = null
    this.watcher = null
    this.sweeper = null
    this.connected = true
    this.closed = false
  }

  async start (): Promise<void> {
    this.kv = await openWorkerBucket(this.nc, { bucket: this.opts.bucket ?? DEFAULT_BUCKET, ttlMs: this.ttlMs })
    this.ttlMs = await ttlOf(this.kv, this.ttlMs)
    await this.sync()
    // Records may carry a TTL shorter than the bucket's: sweep at least every 250 ms (cheap).
    const period = Math.max(20, Math.floor(Math.min(this.ttlMs, 1_000) / 4))
    this.sweeper = setInterval(() => { this.sweep() }, period)
    this.sweeper.unref()
  }

  /** Watch for updates, then list what is there (updates racing the listing win by revision). */
  private async sync (): Promise<void> {
    const kv = this.kv
    if (kv === null || this.closed) return
    this.watcher?.stop()
    const it = await kv.watch({ include: KvWatchInclude.UpdatesOnly })
    this.watcher = it
    void (async () => {
      for await (const e of it) this.entry(e, Date.now())
    })().catch((err: unknown) => { this.opts.onWarn?.(`discovery watch ended: ${(err as Error).message}`) })
    const keys: string[] = []
    for await (const k of await kv.keys()) keys.push(k)
    await Promise.all(keys.map(async (k) => {
      const e = await kv.get(k)
      if (e === null) return
      this.entry(e, Math.min(Date.now(), e.created.getTime()))
    }))
  }

  private entry (e: KvEntry, seenAt: number): void {
    if (this.closed) return
    const rev = this.revisions.get(e.key) ?? 0
    if (e.revision <= rev) return
    this.revisions.set(e.key, e.revision)
    const id = idOfKey(e.key)
    if (e.operation !== 'PUT') {
      if (this.known.delete(id)) this.opts.onRemove(id, 'deleted')
      return
    }
    const why: string[] = []
    const rec = parseRecord(e.string(), why)
    if (rec === null || rec.id !== id) {
      this.opts.onWarn?.(`ignoring record under key ${e.key}: ${rec === null ? why.join(', ') : `its id '${rec.id}' does not match the key`}`)
      return
    }
    // A record we already follow keeps its own clock (a reconnect gave it a fresh TTL).
    const prev = this.known.get(id)
    if (prev !== undefined && prev.seenAt > seenAt) seenAt = prev.seenAt
    if (Date.now() - seenAt > this.ttlOf(rec)) {
      // Listed but already expired (a record with its own shorter TTL, or one the server has not
      // purged yet): the worker stopped refreshing it; a refresh will bring it back.
      if (this.known.delete(id)) this.opts.onRemove(id, 'expired')
      return
    }
    this.known.set(id, { record: rec, seenAt, revision: e.revision })
    this.opts.onUpsert(rec)
  }

  /** Drops records not refreshed for one TTL (only while connected: see the module comment). */
  sweep (now: number = Date.now()): void {
    if (!this.connected || this.closed) return
    for (const [id, k] of this.known) {
      if (now - k.seenAt > this.ttlOf(k.record)) {
        this.known.delete(id)
        this.opts.onRemove(id, 'expired')
      }
    }
  }

  /** How long `rec` lives without a refresh: its own TTL when shorter than the bucket's. */
  ttlOf (rec: WorkerRecord): number {
    return Math.min(this.ttlMs, rec.ttl_ms ?? Infinity)
  }

  /** NATS went away: stop ageing records. */
  disconnected (): void {
    this.connected = false
  }

  /** NATS is back: everyone gets a fresh TTL, and the bucket is listed (and watched) again. */
  reconnected (): void {
    if (this.closed) return
    const now = Date.now()
    for (const k of this.known.values()) k.seenAt = Math.max(k.seenAt, now)
    this.connected = true
    // A server that lost its JetStream state restarts revisions at 1: forget the ones we saw.
    this.revisions.clear()
    void this.resync(1)
  }

  private async resync (attempt: number): Promise<void> {
    try {
      await this.sync()
    } catch (err) {
      // JetStream may still be recovering right after a server restart: try again shortly.
      if (this.closed || !this.connected) return
      this.opts.onWarn?.(`discovery re-sync after reconnect failed (attempt ${attempt}): ${(err as Error).message}`)
      await new Promise(resolve => setTimeout(resolve, Math.min(5_000, 250 * 2 ** attempt)).unref())
      if (!this.closed && this.connected) await this.resync(attempt + 1)
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.sweeper !== null) clearInterval(this.sweeper)
    this.sweeper = null
    this.watcher?.stop()
    this.watcher = null
  }

  [Symbol.asyncDispose] (): Promise<void> {
    return this.close()
  }
}
