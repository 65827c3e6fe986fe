/**
 * Replica sync (DESIGN 4.6, topic `routing`): each gateway publishes the load its routing
 * decisions put on workers — request added (worker, tokens, and the kv policy's prefill tokens
 * and KV blocks), prefill done (first token), request finished — and applies the other gateways'
 * to its own Worker objects, so load-based policies, the kv policy's cost (prefill backlog and
 * decode blocks) and the admission windows see the whole fleet's in-flight work, not only their own.
 *
 * Wire: `switchyard.<ns>.routing.<gateway>` in the event plane's envelope. Changes made during one
 * tick go out as one message {a: [[id, worker, tokens, prefill, blocks], ...], p: [id, ...],
 * d: [id, ...]}; every `heartbeatMs` a full message {s: [...entries]} carries everything the
 * gateway has in flight (prefill 0 once the first token came), and receivers replace that
 * gateway's set with it. So a lost message costs at most one heartbeat of error, and a gateway
 * that vanishes (no message for `expireMs`) has its load aged out.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import { addRemoteLoad, removeRemoteLoad } from '../registry/load.js'
import type { Registry } from '../registry/registry.js'
import type { Worker } from '../registry/worker.js'
import { EnvelopeWriter, newPublisherId, readEnvelope, subjectFor, wildcardFor } from './envelope.js'

/** prefill and blocks are the kv policy's charge (0 under other policies); prefill drops to 0 at the first token. */
type Entry = [id: number, worker: string, tokens: number, prefill: number, blocks: number]

interface RoutingMessage {
  /** Added since the last message. */
  a?: Entry[]
  /** Prefill done (first token) since the last message. */
  p?: number[]
  /** Finished since the last message. */
  d?: number[]
  /** Full state (heartbeat): replaces everything known of this publisher. */
  s?: Entry[]
}

interface Remote {
  lastSeen: number
  /** id -> the worker object charged and the tokens. */
  active: Map<number, RemoteRequest>
}

interface RemoteRequest { worker: Worker, tokens: number, prefill: number, blocks: number }

export interface RoutingSyncOptions {
  namespace: string
  /** This gateway's name on the subject (default: a random id). */
  gatewayId?: string
  /** Full-state message interval. Default 1000 ms. */
  heartbeatMs?: number
  /** A gateway silent this long has its load removed. Default 5000 ms. */
  expireMs?: number
  /** Told when remote load left a worker (a window freed: the admission queue may pump). */
  onFreed?: (worker: Worker) => void
}

export class RoutingSync {
  readonly gatewayId: string
  private readonly nc: NatsConnection
  private readonly registry: Registry
  private readonly writer: EnvelopeWriter
  private readonly sub: Subscription
  private readonly local = new Map<object, Entry>()
  private readonly byId = new Map<number, Entry>()
  private readonly remotes = new Map<string, Remote>()
  private pendingAdd: Entry[] = []
  private pendingPrefill: number[] = []
  private pendingDone: number[] = []
  private flushScheduled = false
  private nextId = 1
  private readonly timer: NodeJS.Timeout
  private readonly expireMs: number
  private readonly onFreed: ((worker: Worker) => void) | null
  /** Tests: stop publishing (a gateway that vanished without saying goodbye). */
  silent = false

  constructor (nc: NatsConnection, registry: Registry, opts: RoutingSyncOptions) {
    this.nc = nc
    this.registry = registry
    this.gatewayId = opts.gatewayId ?? newPublisherId()
    this.writer = new EnvelopeWriter(subjectFor(opts.namespace, 'routing', this.gatewayId), this.gatewayId)
    this.expireMs = opts.expireMs ?? 5000
    this.onFreed = opts.onFreed ?? null
    this.sub = nc.subscribe(wildcardFor(opts.namespace, 'routing'), { callback: (err, msg) => { if (err === null) this.receive(msg.data) } })
    this.timer = setInterval(() => { this.heartbeat() }, opts.heartbeatMs ?? 1000)
    this.timer.unref()
  }

  /** A local dispatch: `key` identifies the request until `finished(key)`; prefill/blocks: the kv policy's charge. */
  added (key: object, worker: Worker, tokens: number, prefill = 0, blocks = 0): void {
    const e: Entry = [this.nextId++, worker.id, tokens, prefill, blocks]
    this.local.set(key, e)
    this.byId.set(e[0], e)
    this.pendingAdd.push(e)
    this.schedule()
  }

  /** The request's first token: its prefill no longer weighs on the worker. */
  prefillDone (key: object): void {
    const e = this.local.get(key)
    if (e === undefined || e[3] === 0) return
    e[3] = 0 // an add still pending goes out with prefill 0 and needs no `p`
    this.pendingPrefill.push(e[0])
    this.schedule()
  }

  finished (key: object): void {
    const e = this.local.get(key)
    if (e === undefined) return
    this.local.delete(key)
    this.byId.delete(e[0])
    this.pendingDone.push(e[0])
    this.schedule()
  }

  /** Requests other gateways have in flight on `workerId` (for status and tests). */
  remoteRequests (workerId: string): number {
    let n = 0
    for (const r of this.remotes.values()) for (const a of r.active.values()) if (a.worker.id === workerId) n++
    return n
  }

  close (): void {
    clearInterval(this.timer)
    if (!this.nc.isClosed()) {
      // Say goodbye: peers drop our load at once instead of after expireMs.
      if (!this.silent) this.nc.publish(this.writer.subject, this.writer.next({ s: [] }))
      this.sub.unsubscribe()
    }
    for (const id of [...this.remotes.keys()]) this.dropRemote(id)
  }

  private schedule (): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => { this.flush() })
  }

  private flush (): void {
    this.flushScheduled = false
    if (this.pendingAdd.length === 0 && this.pendingDone.length === 0 && this.pendingPrefill.length === 0) return
    const msg: RoutingMessage = {}
    let added = this.pendingAdd
    let prefill = this.pendingPrefill
    let done = this.pendingDone
    if (added.length > 0 && (done.length > 0 || prefill.length > 0)) {
      // Within one tick an add absorbs its prefill-done (the entry already says 0), and an add
      // and its done cancel out.
      const addedIds = new Set(added.map(e => e[0]))
      const doneIds = new Set(done)
      added = added.filter(e => !doneIds.has(e[0]))
      prefill = prefill.filter(id => !addedIds.has(id) && !doneIds.has(id))
      done = done.filter(id => !addedIds.has(id))
    } else if (done.length > 0 && prefill.length > 0) {
      const doneIds = new Set(done)
      prefill = prefill.filter(id => !doneIds.has(id))
    }
    if (added.length > 0) msg.a = added
    if (prefill.length > 0) msg.p = prefill
    if (done.length > 0) msg.d = done
    this.pendingAdd = []
    this.pendingPrefill = []
    this.pendingDone = []
    if (msg.a === undefined && msg.d === undefined && msg.p === undefined) return
    this.publish(msg)
  }

  private heartbeat (): void {
    this.flush()
    this.publish({ s: [...this.byId.values()] })
    const now = Date.now()
    for (const [id, r] of this.remotes) if (now - r.lastSeen > this.expireMs) this.dropRemote(id)
  }

  private publish (msg: RoutingMessage): void {
    if (this.silent || this.nc.isClosed()) return
    try {
      this.nc.publish(this.writer.subject, this.writer.next(msg))
    } catch {
      // Disconnected: the client buffers or drops; the next heartbeat carries the full state.
    }
  }

  private receive (data: Uint8Array): void {
    const env = readEnvelope(data)
    if (env === null || env.publisher === this.gatewayId) return
    const msg = env.payload as RoutingMessage
    if (typeof msg !== 'object' || msg === null) return
    let r = this.remotes.get(env.publisher)
    if (r === undefined) { r = { lastSeen: 0, active: new Map() }; this.remotes.set(env.publisher, r) }
    r.lastSeen = Date.now()
    if (Array.isArray(msg.s)) {
      const keep = new Set<number>()
      for (const e of msg.s) {
        keep.add(e[0])
        const a = r.active.get(e[0])
        if (a === undefined) this.apply(r, e)
        else if (a.prefill > 0 && e[3] === 0) this.endPrefill(a)
      }
      for (const id of [...r.active.keys()]) if (!keep.has(id)) this.unapply(r, id)
      if (msg.s.length === 0 && r.active.size === 0) this.remotes.delete(env.publisher)
      return
    }
    if (Array.isArray(msg.a)) for (const e of msg.a) if (!r.active.has(e[0])) this.apply(r, e)
    if (Array.isArray(msg.p)) {
      for (const id of msg.p) {
        const a = r.active.get(id)
        if (a !== undefined) this.endPrefill(a)
      }
    }
    if (Array.isArray(msg.d)) for (const id of msg.d) this.unapply(r, id)
  }

  private apply (r: Remote, e: Entry): void {
    const w = this.registry.get(e[1])
    if (w === undefined || w.state === 'removed' || typeof e[2] !== 'number') return
    // Peers of an older version send 3-element entries: no kv charge.
    const prefill = typeof e[3] === 'number' && e[3] > 0 ? e[3] : 0
    const blocks = typeof e[4] === 'number' && e[4] > 0 ? e[4] : 0
    addRemoteLoad(w, e[2])
    w.remotePrefillTokens += prefill
    w.remoteDecodeBlocks += blocks
    r.active.set(e[0], { worker: w, tokens: e[2], prefill, blocks })
  }

  private endPrefill (a: RemoteRequest): void {
    a.worker.remotePrefillTokens -= a.prefill
    a.prefill = 0
  }

  private unapply (r: Remote, id: number): void {
    const a = r.active.get(id)
    if (a === undefined) return
    r.active.delete(id)
    a.worker.remotePrefillTokens -= a.prefill
    a.worker.remoteDecodeBlocks -= a.blocks
    removeRemoteLoad(a.worker, a.tokens)
    this.onFreed?.(a.worker)
  }

  private dropRemote (publisher: string): void {
    const r = this.remotes.get(publisher)
    if (r === undefined) return
    for (const id of [...r.active.keys()]) this.unapply(r, id)
    this.remotes.delete(publisher)
  }
}
