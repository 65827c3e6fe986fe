/**
 * Replica sync (DESIGN 4.6, topic `routing`): each gateway publishes the load its routing
 * decisions put on workers — request added (worker, tokens), request finished — and applies the
 * other gateways' to its own Worker objects, so load-based policies, the kv policy's load guard
 * and the admission windows see the whole fleet's in-flight work, not only their own.
 *
 * Wire: `switchyard.<ns>.routing.<gateway>` in the event plane's envelope. Changes made during one
 * tick go out as one message {a: [[id, worker, tokens], ...], d: [id, ...]}; every `heartbeatMs`
 * a full message {s: [[id, worker, tokens], ...]} carries everything the gateway has in flight,
 * and receivers replace that gateway's set with it. So a lost message costs at most one heartbeat
 * of error, and a gateway that vanishes (no message for `expireMs`) has its load aged out.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import { addRemoteLoad, removeRemoteLoad } from '../registry/load.js'
import type { Registry } from '../registry/registry.js'
import type { Worker } from '../registry/worker.js'
import { EnvelopeWriter, newPublisherId, readEnvelope, subjectFor, wildcardFor } from './envelope.js'

type Entry = [id: number, worker: string, tokens: number]

interface RoutingMessage {
  /** Added since the last message. */
  a?: Entry[]
  /** Finished since the last message. */
  d?: number[]
  /** Full state (heartbeat): replaces everything known of this publisher. */
  s?: Entry[]
}

interface Remote {
  lastSeen: number
  /** id -> the worker object charged and the tokens. */
  active: Map<number, { worker: Worker, tokens: number }>
}

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

  /** A local dispatch: `key` identifies the request until `finished(key)`. */
  added (key: object, worker: Worker, tokens: number): void {
    const e: Entry = [this.nextId++, worker.id, tokens]
    this.local.set(key, e)
    this.byId.set(e[0], e)
    this.pendingAdd.push(e)
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
    if (this.pendingAdd.length === 0 && this.pendingDone.length === 0) return
    const msg: RoutingMessage = {}
    // An add and its done in the same tick cancel out.
    if (this.pendingDone.length > 0) {
      const done = new Set(this.pendingDone)
      const added = this.pendingAdd.filter(e => !done.has(e[0]))
      const addedIds = new Set(this.pendingAdd.map(e => e[0]))
      const d = this.pendingDone.filter(id => !addedIds.has(id))
      if (added.length > 0) msg.a = added
      if (d.length > 0) msg.d = d
    } else msg.a = this.pendingAdd
    this.pendingAdd = []
    this.pendingDone = []
    if (msg.a === undefined && msg.d === undefined) return
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
        if (!r.active.has(e[0])) this.apply(r, e)
      }
      for (const id of [...r.active.keys()]) if (!keep.has(id)) this.unapply(r, id)
      if (msg.s.length === 0 && r.active.size === 0) this.remotes.delete(env.publisher)
      return
    }
    if (Array.isArray(msg.a)) for (const e of msg.a) if (!r.active.has(e[0])) this.apply(r, e)
    if (Array.isArray(msg.d)) for (const id of msg.d) this.unapply(r, id)
  }

  private apply (r: Remote, e: Entry): void {
    const w = this.registry.get(e[1])
    if (w === undefined || w.state === 'removed' || typeof e[2] !== 'number') return
    addRemoteLoad(w, e[2])
    r.active.set(e[0], { worker: w, tokens: e[2] })
  }

  private unapply (r: Remote, id: number): void {
    const a = r.active.get(id)
    if (a === undefined) return
    r.active.delete(id)
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
