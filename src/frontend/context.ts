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
  readonly active: Set<InFlight>
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
