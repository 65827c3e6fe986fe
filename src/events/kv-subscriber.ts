/**
 * A gateway's side of the `kv` topic: one wildcard subscription for every worker's KV events,
 * turned into one in-process event stream per worker (`engineFor(id)` satisfies kv's
 * InProcessKvEngine, so the routing plane attaches it exactly like an embedded engine's).
 *
 * Consistency, per worker (DESIGN 5.2 with NATS in place of ZMQ replay):
 * - On attach, after a gap (seq jumps), after a NATS reconnect, and when a publisher id we never
 *   saw starts mid-stream, the stream asks the worker for a snapshot (`kvsnap` request). Events
 *   arriving meanwhile are buffered; the snapshot (clear + every block) is applied, then the
 *   buffered events newer than the snapshot's seq.
 * - A new publisher id starting at seq 1 is a restart: clear the worker's blocks, then apply.
 * - A worker that does not answer snapshots (timeout, no responders): clear and follow the stream
 *   from the next event, asking again after `retryMs`.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import type { InProcessKvBatch, InProcessKvEngine, InProcessKvEvent } from '../kv/index.js'
import { readEnvelope, subjectFor, wildcardFor, workerOfSubject, type Envelope } from './envelope.js'
import { fromWire } from './kv-wire.js'

export interface NatsKvSubscriberOptions {
  namespace: string
  /** Deadline of one snapshot request. Default 3 s. */
  snapshotTimeoutMs?: number
  /** Delay before asking again after a failed snapshot. Default 2 s. */
  retryMs?: number
  /** Events buffered per worker while its snapshot is on the way; beyond, another snapshot is taken. Default 10,000. */
  maxBuffered?: number
  onWarn?: (msg: string, workerId: string) => void
}

type Listener = (batch: InProcessKvBatch) => void

/** Snapshot attempts after a reconnect before the stream starts over (250 ms, 500 ms, ... apart). */
const RECONNECT_TRIES = 6

const CLEARED: InProcessKvEvent = Object.freeze({ type: 'AllBlocksCleared' })

export class KvStreamCounters {
  messages = 0
  gaps = 0
  restarts = 0
  snapshots = 0
  snapshotFailures = 0
  malformed = 0
}

/** One worker's stream: sequencing, gap repair, and the listeners (the plane's InProcessKvEventSource). */
export class WorkerKvStream implements InProcessKvEngine {
  readonly workerId: string
  readonly counters: KvStreamCounters
  publisher: string | null
  lastSeq: number
  syncing: boolean
  private readonly owner: NatsKvSubscriber
  private listeners: Listener[]
  private buffered: Envelope[]
  private retry: NodeJS.Timeout | null
  private closed: boolean
  private batchSeq: number
  /** Snapshot attempts since a reconnect that found the worker not (yet) answering. */
  private reconnectTries: number

  constructor (owner: NatsKvSubscriber, workerId: string) {
    this.owner = owner
    this.workerId = workerId
    this.counters = new KvStreamCounters()
    this.publisher = null
    this.lastSeq = 0
    this.syncing = false
    this.listeners = []
    this.buffered = []
    this.retry = null
    this.closed = false
    this.batchSeq = 0
    this.reconnectTries = 0
  }

  onKvEvents (listener: Listener): () => void {
    this.listeners.push(listener)
    // The first listener (the plane's source) gets the worker's current blocks.
    if (this.listeners.length === 1) this.resync('attach')
    return () => {
      this.listeners = this.listeners.filter(l => l !== listener)
      if (this.listeners.length === 0) this.owner.forget(this)
    }
  }

  /** A message of this worker's kv subject. */
  receive (env: Envelope): void {
    if (this.closed) return
    this.counters.messages++
    if (this.syncing) {
      if (this.buffered.length >= this.owner.maxBuffered) {
        this.buffered = []
        this.owner.warn('snapshot buffer overflow; asking again', this.workerId)
        this.retryLater(0)
      } else this.buffered.push(env)
      return
    }
    this.sequence(env)
  }

  private sequence (env: Envelope): void {
    if (env.publisher !== this.publisher) {
      if (env.seq === 1 || this.publisher === null && this.lastSeq === -1) {
        // A restarted worker (its first batch), or one that cannot answer snapshots: start over.
        if (this.publisher !== null) this.counters.restarts++
        this.publisher = env.publisher
        this.lastSeq = env.seq
        this.emit([CLEARED], env)
        return
      }
      this.resync('new publisher mid-stream')
      this.buffered.push(env)
      return
    }
    if (env.seq <= this.lastSeq) return // duplicate or already in the snapshot
    if (env.seq !== this.lastSeq + 1) {
      this.counters.gaps++
      this.resync(`gap: expected seq ${this.lastSeq + 1}, got ${env.seq}`)
      this.buffered.push(env)
      return
    }
    this.lastSeq = env.seq
    this.emit(null, env)
  }

  private emit (prefix: InProcessKvEvent[] | null, env: Envelope): void {
    const wire = env.payload
    const events: InProcessKvEvent[] = prefix === null ? [] : prefix.slice()
    if (Array.isArray(wire)) {
      for (const w of wire) {
        const e = fromWire(w)
        if (e === null) this.counters.malformed++
        else events.push(e)
      }
    } else this.counters.malformed++
    this.deliver(events)
  }

  private deliver (events: InProcessKvEvent[]): void {
    if (events.length === 0) return
    const batch: InProcessKvBatch = { seq: ++this.batchSeq, events }
    for (const l of this.listeners) l(batch)
  }

  /** Asks the worker for all its blocks; events meanwhile are buffered. */
  resync (reason: string): void {
    if (this.closed || this.syncing || this.listeners.length === 0) return
    this.syncing = true
    if (this.retry !== null) { clearTimeout(this.retry); this.retry = null }
    void this.owner.requestSnapshot(this.workerId).then(
      (snap) => { this.applySnapshot(snap) },
      (err: unknown) => { this.snapshotFailed(reason, err) })
  }

  private applySnapshot (snap: { publisher: string, seq: number, events: InProcessKvEvent[] }): void {
    if (this.closed) return
    this.counters.snapshots++
    this.syncing = false
    this.reconnectTries = 0
    this.publisher = snap.publisher
    this.lastSeq = snap.seq
    this.deliver([CLEARED, ...snap.events])
    this.drainBuffer()
  }

  private snapshotFailed (reason: string, err: unknown): void {
    if (this.closed) return
    this.counters.snapshotFailures++
    if (reason === 'reconnect' && this.reconnectTries < RECONNECT_TRIES) {
      // After a NATS outage the worker's own connection may come back after ours: keep its blocks
      // (still nearly right), keep buffering, and ask again shortly before starting over.
      this.reconnectTries++
      this.retry = setTimeout(() => {
        this.retry = null
        if (this.closed) return
        void this.owner.requestSnapshot(this.workerId).then(
          (snap) => { this.applySnapshot(snap) },
          (e: unknown) => { this.snapshotFailed(reason, e) })
      }, 250 * this.reconnectTries)
      this.retry.unref()
      return
    }
    this.reconnectTries = 0
    this.syncing = false
    this.owner.warn(`snapshot after ${reason} failed: ${(err as Error).message}; following the stream, retrying`, this.workerId)
    // Start over from the next event (lastSeq −1 marks "take any publisher"), and ask again later.
    this.publisher = null
    this.lastSeq = -1
    this.deliver([CLEARED])
    this.drainBuffer()
    this.retryLater(this.owner.retryMs)
  }

  private drainBuffer (): void {
    const buf = this.buffered
    this.buffered = []
    for (const env of buf) {
      if (this.syncing) this.buffered.push(env)
      else this.sequence(env)
    }
  }

  private retryLater (ms: number): void {
    if (this.retry !== null || this.closed) return
    this.retry = setTimeout(() => {
      this.retry = null
      if (this.syncing) { this.syncing = false; this.buffered = [] }
      this.resync('retry')
    }, ms)
    this.retry.unref()
  }

  close (): void {
    this.closed = true
    if (this.retry !== null) clearTimeout(this.retry)
    this.retry = null
    this.buffered = []
    this.listeners = []
  }
}

/**
 * @example
 * const kv = new NatsKvSubscriber(nc, { namespace: 'default' })
 * plane.attachInProcess('mock-llm', workerId, kv.engineFor(workerId), 64)
 * await kv.close()
 */
export class NatsKvSubscriber {
  readonly namespace: string
  readonly maxBuffered: number
  readonly retryMs: number
  private readonly nc: NatsConnection
  private readonly streams = new Map<string, WorkerKvStream>()
  private readonly sub: Subscription
  private readonly timeoutMs: number
  private readonly onWarn: ((msg: string, workerId: string) => void) | null

  constructor (nc: NatsConnection, opts: NatsKvSubscriberOptions) {
    this.nc = nc
    this.namespace = opts.namespace
    this.timeoutMs = opts.snapshotTimeoutMs ?? 3_000
    this.retryMs = opts.retryMs ?? 2_000
    this.maxBuffered = opts.maxBuffered ?? 10_000
    this.onWarn = opts.onWarn ?? null
    this.sub = nc.subscribe(wildcardFor(opts.namespace, 'kv'), {
      callback: (err, msg) => {
        if (err !== null) return
        const stream = this.streams.get(workerOfSubject(msg.subject))
        if (stream === undefined) return // not (yet) a worker of this gateway
        const env = readEnvelope(msg.data)
        if (env === null) { stream.counters.malformed++; return }
        stream.receive(env)
      }
    })
  }

  /** The worker's event stream (created on first call); attach it where an in-process engine goes. */
  engineFor (workerId: string): WorkerKvStream {
    let s = this.streams.get(workerId)
    if (s === undefined) {
      s = new WorkerKvStream(this, workerId)
      this.streams.set(workerId, s)
    }
    return s
  }

  stream (workerId: string): WorkerKvStream | undefined {
    return this.streams.get(workerId)
  }

  /** After a NATS reconnect events may have been lost while we were away: resynchronise everyone. */
  resyncAll (reason: string): void {
    for (const s of this.streams.values()) s.resync(reason)
  }

  forget (s: WorkerKvStream): void {
    if (this.streams.get(s.workerId) === s) this.streams.delete(s.workerId)
    s.close()
  }

  warn (msg: string, workerId: string): void {
    this.onWarn?.(msg, workerId)
  }

  async requestSnapshot (workerId: string): Promise<{ publisher: string, seq: number, events: InProcessKvEvent[] }> {
    const it = await this.nc.requestMany(subjectFor(this.namespace, 'kvsnap', workerId), undefined, { strategy: 'sentinel', maxWait: this.timeoutMs })
    const events: InProcessKvEvent[] = []
    let head: { publisher: string, seq: number } | null = null
    let complete = false
    for await (const msg of it) {
      if (msg.data.length === 0) break
      const env = readEnvelope(msg.data)
      const p = env?.payload as { events?: unknown, last?: unknown } | undefined
      if (env === null || p === undefined || !Array.isArray(p.events)) throw new Error('malformed snapshot reply')
      head ??= { publisher: env.publisher, seq: env.seq }
      for (const w of p.events) {
        const e = fromWire(w)
        if (e !== null) events.push(e)
      }
      if (p.last === true) complete = true
    }
    if (head === null || !complete) throw new Error('no complete snapshot reply')
    return { ...head, events }
  }

  async close (): Promise<void> {
    for (const s of this.streams.values()) s.close()
    this.streams.clear()
    if (!this.nc.isClosed()) this.sub.unsubscribe()
  }
}

