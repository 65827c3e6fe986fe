import type { AccessLog } from './access-log.js'
import type { Logger } from 'pino'
import type { Admission } from '../admission/admission.js'
import type { PriorityThresholds } from '../admission/priority.js'
import type { ServeConfig } from '../config/serve.js'
import type { HealthChecker } from '../registry/health.js'
import type { Registry } from '../registry/registry.js'
import type { RouterManager } from '../registry/router-manager.js'
import type { InProcessKvEngine } from '../kv/index.js'
import type { KvPlane } from '../routing/kv-plane.js'
import type { Policy } from '../routing/policy.js'
import type { Tokenizer } from '../tokenize/index.js'
import type { HttpTransportOptions } from '../transport/http.js'
import type { NativeUpstreamOptions } from '../transport/native/index.js'
import type { GatewayMetrics } from './metrics.js'

/** What the request handlers share: built once by the gateway, read on every request. */
export interface GatewayContext {
  readonly config: ServeConfig
  readonly registry: Registry
  readonly routers: RouterManager<Policy>
  readonly health: HealthChecker
  readonly metrics: GatewayMetrics
  /** Dispatch windows and the queue: every request takes its worker from here. */
  readonly admission: Admission
  readonly priority: PriorityThresholds
  /** Router overhead: seconds spent tokenizing one request's prompt. */
  readonly observeTokenize: (model: string, seconds: number) => void
  readonly log: Logger
  /** One line per request (access-log.ts). */
  readonly accessLog: AccessLog
  readonly transport: HttpTransportOptions
  /** Options of every native-transport worker's client. */
  readonly native: NativeUpstreamOptions
  /** KV indexes and event sources, for the kv policies. */
  readonly plane: KvPlane
  /** In-process engines by worker id (embedded fleet): their events feed the plane directly. */
  readonly engines: ReadonlyMap<string, InProcessKvEngine>
  /** Per-model tokenizers (configured ones; the built-in tokenizer otherwise). */
  readonly tokenizers: Map<string, Tokenizer>
  /** Requests being served, so shutdown can wait for them and then abort the rest. */
  readonly active: InFlightList
  /** Resolved when `active` empties while shutting down. */
  onIdle: (() => void) | null
  shuttingDown: boolean
}

const CLIENT_GONE = new Error('client went away')

/**
 * One request being served. Plays the part of an AbortController without the EventTarget
 * machinery (the proxy benchmark's profile had AbortController/AbortSignal at ~5% of CPU per
 * request): `abort()` flags the request and aborts the worker exchange under way, if any.
 */
export class InFlight {
  aborted = false
  exchange: { clientGone: boolean, abort (reason: Error): void } | null = null
  /** Links in the context's InFlightList while listed. */
  prev: InFlight | null = null
  next: InFlight | null = null
  listed = false

  abort (): void {
    if (this.aborted) return
    this.aborted = true
    const ex = this.exchange
    if (ex !== null) {
      ex.clientGone = true
      ex.abort(CLIENT_GONE)
    }
  }
}

/**
 * The requests being served. An intrusive list, not a Set: a Set of fresh objects gives each one
 * an identity hash on insert, and add + delete were ~1.5% of a JSON request's user-space samples.
 */
export class InFlightList {
  size = 0
  private head: InFlight | null = null

  add (a: InFlight): void {
    if (a.listed) return
    a.listed = true
    a.prev = null
    a.next = this.head
    if (this.head !== null) this.head.prev = a
    this.head = a
    this.size++
  }

  delete (a: InFlight): void {
    if (!a.listed) return
    a.listed = false
    if (a.prev !== null) a.prev.next = a.next
    else this.head = a.next
    if (a.next !== null) a.next.prev = a.prev
    a.prev = null
    a.next = null
    this.size--
  }

  /** A copy: aborting one may take it off the list. */
  toArray (): InFlight[] {
    const out: InFlight[] = []
    for (let a = this.head; a !== null; a = a.next) out.push(a)
    return out
  }
}
