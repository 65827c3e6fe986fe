/**
 * Keeps one worker's record in the discovery bucket: written at start, rewritten every
 * `refreshMs` (well inside the TTL), deleted on clean shutdown. With `alive`, a refresh happens
 * only while the check passes: a registrar in front of an engine we do not control (vLLM) lets
 * the record expire as soon as the engine stops answering, and writes it again when it is back.
 *
 * @example
 * const reg = new WorkerRegistration(nats.nc, { record: { id: '10.0.0.5:8000', url: 'http://10.0.0.5:8000', models: ['llama'] } })
 * await reg.start()
 * await reg.close() // deletes the record
 */
import type { KV } from '@nats-io/kv'
import type { NatsConnection } from '@nats-io/transport-node'
import { openWorkerBucket, ttlOf } from './bucket.js'
import { DEFAULT_BUCKET, DEFAULT_TTL_MS, keyOf, makeRecord, type WorkerRecord, type WorkerRecordInit } from './record.js'

/** Longest wait for each NATS operation at close. */
const CLOSE_WAIT_MS = 1_000

/** Waits for `p` (ignoring its failure) at most `ms`. */
async function within (p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([p.catch(() => {}), new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })])
  clearTimeout(timer)
}

export interface WorkerRegistrationOptions {
  record: WorkerRecordInit
  /** Bucket name; default `switchyard-workers`. */
  bucket?: string
  /**
   * Record TTL; default 15 s. It is the bucket's max age when this registration creates the
   * bucket; with an existing bucket, a shorter TTL is written in the record (gateways age the
   * record by it) and a longer one is cut to the bucket's max age.
   */
  ttlMs?: number
  /** Refresh period; default a third of the bucket's TTL. */
  refreshMs?: number
  /** Liveness check run before each refresh; false: let the record expire (delete it). */
  alive?: () => Promise<boolean>
  onWarn?: (msg: string) => void
}

export class WorkerRegistration implements AsyncDisposable {
  readonly record: WorkerRecord
  readonly key: string
  /** Whether the record is currently written (the worker was alive at the last refresh). */
  registered: boolean
  refreshes: number
  /** The bucket's record TTL (ms), known after start(). */
  ttlMs: number
  private readonly nc: NatsConnection
  private readonly opts: WorkerRegistrationOptions
  private kv: KV | null
  private timer: NodeJS.Timeout | null
  private running: Promise<void> | null
  private closed: boolean

  constructor (nc: NatsConnection, opts: WorkerRegistrationOptions) {
    this.nc = nc
    this.opts = opts
    this.record = makeRecord(opts.record)
    this.key = keyOf(this.record.id)
    this.registered = false
    this.refreshes = 0
    this.ttlMs = opts.ttlMs ?? DEFAULT_TTL_MS
    this.kv = null
    this.timer = null
    this.running = null
    this.closed = false
  }

  /** Opens the bucket, writes the record (when alive) and starts refreshing. */
  async start (): Promise<void> {
    const ttl = this.opts.ttlMs ?? DEFAULT_TTL_MS
    this.kv = await openWorkerBucket(this.nc, { bucket: this.opts.bucket ?? DEFAULT_BUCKET, ttlMs: ttl })
    this.ttlMs = await ttlOf(this.kv, ttl)
    if (this.opts.ttlMs !== undefined && this.opts.ttlMs < this.ttlMs) {
      // The bucket exists with a longer max age: the record says its own TTL, gateways age it by that.
      this.ttlMs = this.opts.ttlMs
      this.record.ttl_ms = this.opts.ttlMs
    } else if (this.opts.ttlMs !== undefined && this.opts.ttlMs > this.ttlMs) {
      this.opts.onWarn?.(`bucket ${this.opts.bucket ?? DEFAULT_BUCKET} keeps records ${this.ttlMs} ms only; using that TTL (not ${this.opts.ttlMs} ms)`)
    }
    const period = this.opts.refreshMs ?? Math.max(50, Math.floor(this.ttlMs / 3))
    await this.refresh()
    if (this.closed) return
    this.timer = setInterval(() => {
      if (this.running === null) this.running = this.refresh().finally(() => { this.running = null })
    }, period)
    this.timer.unref()
  }

  /** One refresh: check liveness, then put (or delete when the worker stopped answering). */
  async refresh (): Promise<void> {
    const kv = this.kv
    if (kv === null || this.closed) return
    let ok = true
    if (this.opts.alive !== undefined) {
      try { ok = await this.opts.alive() } catch { ok = false }
    }
    if (this.closed) return
    try {
      if (ok) {
        await kv.put(this.key, JSON.stringify(this.record))
        this.refreshes++
        this.registered = true
      } else if (this.registered) {
        await kv.delete(this.key)
        this.registered = false
        this.opts.onWarn?.(`worker ${this.record.id} does not answer: record withdrawn`)
      }
    } catch (err) {
      // NATS away (reconnecting) or JetStream busy: the next tick tries again, well inside the TTL.
      this.opts.onWarn?.(`refresh of ${this.record.id} failed: ${(err as Error).message}`)
    }
  }

  /**
   * Stops refreshing and deletes the record (best effort, within about a second each for the
   * refresh in flight and the delete: with NATS away the record simply expires). Idempotent.
   */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    if (this.running !== null) await within(this.running, CLOSE_WAIT_MS)
    if (this.kv !== null && this.registered && !this.nc.isClosed()) {
      await within(this.kv.delete(this.key), CLOSE_WAIT_MS)
      this.registered = false
    }
  }

  [Symbol.asyncDispose] (): Promise<void> {
    return this.close()
  }
}
