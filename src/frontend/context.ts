import type { Logger } from 'pino'
import type { ServeConfig } from '../config/serve.js'
import type { HealthChecker } from '../registry/health.js'
import type { Registry } from '../registry/registry.js'
import type { RouterManager } from '../registry/router-manager.js'
import type { Policy } from '../routing/policy.js'
import type { HttpTransportOptions } from '../transport/http.js'
import type { GatewayMetrics } from './metrics.js'

/** What the request handlers share: built once by the gateway, read on every request. */
export interface GatewayContext {
  readonly config: ServeConfig
  readonly registry: Registry
  readonly routers: RouterManager<Policy>
  readonly health: HealthChecker
  readonly metrics: GatewayMetrics
  readonly log: Logger
  readonly transport: HttpTransportOptions
  /** Requests being served, so shutdown can wait for them and then abort the rest. */
  readonly active: Set<AbortController>
  /** Resolved when `active` empties while shutting down. */
  onIdle: (() => void) | null
  shuttingDown: boolean
}
