/** Health as the registry sees it. Only `healthy` workers are routable. */
export type WorkerState = 'pending' | 'healthy' | 'unhealthy' | 'removed'

/** Something that must hear about a worker's load change (a load-ordered index of a policy). */
export interface LoadWatcher {
  onLoadChange (worker: Worker): void
}

/** The per-worker upstream client; created on first use by the transport, closed when the worker drains. */
export interface WorkerClient {
  close (): Promise<void>
}

export interface WorkerInit {
  id: string
  url: string
  models: readonly string[]
  labels: Record<string, string>
  apiKey: string | null
  /** Models given in configuration (MODEL=URL): discovery is skipped. */
  staticModels: boolean
  /** swy://host:port when requests go over the native transport; absent/null: HTTP. */
  nativeUrl?: string | null
  /** Native transport wanted; its address may come from discovery. Default: nativeUrl given. */
  wantsNative?: boolean
}

/**
 * One worker. Identity fields never change; `state`, `models` and the load counters do, and the
 * request path reads them directly. Every field is assigned here so the shape stays stable.
 */
export class Worker {
  readonly id: string
  readonly url: string
  readonly labels: Readonly<Record<string, string>>
  readonly apiKey: string | null
  readonly staticModels: boolean
  /**
   * swy://host:port: requests use the native transport (probes stay on `url`); null: HTTP. Set at
   * first contact for a `transport: native` worker that advertises its address.
   */
  nativeUrl: string | null
  /** The worker entry asked for the native transport (discovered at first contact when no address was given). */
  readonly wantsNative: boolean
  models: readonly string[]
  state: WorkerState
  /** Dense index, unique among live workers, reused after removal: lets policies keep typed arrays. */
  slot: number
  inflightRequests: number
  inflightTokens: number
  /**
   * What other gateways' kv policies charged here (replica sync): prompt tokens still waiting for
   * their first token, and KV blocks their requests hold. Local kv policies keep their own share.
   */
  remotePrefillTokens: number
  remoteDecodeBlocks: number
  /**
   * Dispatch window (src/admission): most requests and tokens in flight at once; Infinity when
   * unlimited. Set from the worker's config entry, else the global flags, else what it reports.
   */
  maxInflightRequests: number
  maxInflightTokens: number
  /**
   * Date.now() ms until which the worker takes no new request (its transport failed and
   * tombstoned it: the native transport's 5 s); 0: available.
   */
  unavailableUntil: number
  /** Lifetime counters, for /workers and metrics. */
  totalRequests: number
  totalErrors: number
  consecutiveFailures: number
  consecutiveSuccesses: number
  lastError: string | null
  client: WorkerClient | null
  watchers: LoadWatcher[]
  /** Resolves when a removed worker has no request in flight and its client is closed. */
  drained: Promise<void> | null
  drainResolve: (() => void) | null

  constructor (init: WorkerInit, slot: number) {
    this.id = init.id
    this.url = init.url
    this.labels = init.labels
    this.apiKey = init.apiKey
    this.staticModels = init.staticModels
    this.nativeUrl = init.nativeUrl ?? null
    this.wantsNative = init.wantsNative ?? this.nativeUrl !== null
    this.models = init.models
    this.state = 'pending'
    this.slot = slot
    this.inflightRequests = 0
    this.inflightTokens = 0
    this.remotePrefillTokens = 0
    this.remoteDecodeBlocks = 0
    this.maxInflightRequests = Infinity
    this.maxInflightTokens = Infinity
    this.unavailableUntil = 0
    this.totalRequests = 0
    this.totalErrors = 0
    this.consecutiveFailures = 0
    this.consecutiveSuccesses = 0
    this.lastError = null
    this.client = null
    this.watchers = []
    this.drained = null
    this.drainResolve = null
  }

  toJSON (): Record<string, unknown> {
    return {
      id: this.id,
      url: this.url,
      native_url: this.nativeUrl,
      models: this.models,
      labels: this.labels,
      state: this.state,
      inflight_requests: this.inflightRequests,
      inflight_tokens: this.inflightTokens,
      remote_prefill_tokens: this.remotePrefillTokens,
      remote_decode_blocks: this.remoteDecodeBlocks,
      max_inflight_requests: Number.isFinite(this.maxInflightRequests) ? this.maxInflightRequests : null,
      max_inflight_tokens: Number.isFinite(this.maxInflightTokens) ? this.maxInflightTokens : null,
      total_requests: this.totalRequests,
      total_errors: this.totalErrors,
      last_error: this.lastError
    }
  }
}

/** A readable id from the URL: `host:port` plus the base path when there is one. */
export function workerIdFromUrl (url: string): string {
  const u = new URL(url)
  const port = u.port !== '' ? u.port : (u.protocol === 'https:' ? '443' : '80')
  const path = u.pathname === '/' ? '' : u.pathname
  return `${u.hostname}:${port}${path}`
}
