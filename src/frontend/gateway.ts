import { createServer } from 'node:http'
import { answerClientError, hotHeader, Http1Server, type HttpReq, type HttpRes } from './http1/server.js'
import { destination, pino, type Logger } from 'pino'
import { accessLogFor } from './access-log.js'
import { parseQueueWeights, type ServeConfig } from '../config/serve.js'
import { Admission } from '../admission/admission.js'
import { AdmissionMetrics } from '../admission/metrics.js'
import type { QueueMode } from '../admission/scheduler.js'
import type { WindowLimits } from '../admission/window.js'
import { HealthChecker } from '../registry/health.js'
import { Registry } from '../registry/registry.js'
import { RouterManager } from '../registry/router-manager.js'
import { createPolicy, KvPlane } from '../routing/index.js'
import { DEFAULT_BLOCK_SIZE } from './workers-api.js'
import type { InProcessKvEngine } from '../kv/index.js'
import { loadTokenizer } from '../tokenize/index.js'
import type { Policy } from '../routing/policy.js'
import { MethodNotAllowedError, notFound, unauthorized } from '../shared/errors.js'
import { startDistributed, type Distributed } from '../discovery/index.js'
import { RoutingSync } from '../events/routing-sync.js'
import { discoverModelCard, probeHealth, probeTcp } from '../transport/probe.js'
import { InFlightList, type GatewayContext } from './context.js'
import { asSwitchyardError, sendError } from './errors.js'
import { GatewayMetrics } from './metrics.js'
import { handleCompletion, handleModels } from './openai.js'
import { addWorker, applyWorkerWindow, handleWorkers, removeWorker } from './workers-api.js'

export interface GatewayOptions {
  /** A logger to use instead of one built from `log_level` (tests pass a silent one). */
  logger?: Logger
  /** In-process engines by worker id (the embedded fleet): their KV events feed the kv policies directly. */
  engines?: ReadonlyMap<string, InProcessKvEngine>
  /** Dispatch windows the embedded engines report (max_num_seqs, KV cache tokens), by worker id. */
  reportedWindows?: ReadonlyMap<string, WindowLimits>
}


function checkBearer (req: HttpReq, key: string | null): boolean {
  if (key === null) return true
  const h = hotHeader(req, 'authorization')
  return typeof h === 'string' && h.length === key.length + 7 && h.startsWith('Bearer ') && h.endsWith(key)
}

/**
 * The gateway: registry, routers, health checks, metrics and the HTTP server, wired together.
 * `start()` listens and registers the configured workers; `close()` shuts down gracefully.
 */
export class Gateway implements AsyncDisposable {
  readonly ctx: GatewayContext
  /** The HTTP server: the fast HTTP/1.1 path, with node:http behind it for the rest (http1/server.ts). */
  readonly server: Http1Server
  private closing: Promise<void> | null = null
  /** Distributed mode (`nats` set): discovery bucket and event plane; null otherwise. */
  private distributed: Distributed | null = null
  private readonly reportedWindows: Map<string, WindowLimits>

  constructor (config: ServeConfig, opts: GatewayOptions = {}) {
    // Buffered, asynchronous writes to stdout, flushed at 8 KiB or every 50 ms (and at close): the
    // proxy benchmark's profile had pino's per-line write and its completion at ~7% of the CPU
    // per JSON request; batched, a busy gateway makes one syscall per many request lines.
    // A crash can lose the last 50 ms of log lines.
    const log = opts.logger ?? pino({ level: config.log_level, base: { svc: 'switchyard' } }, destination({ dest: 1, sync: false, minLength: 8192, periodicFlush: 50 }))
    const registry = new Registry()
    const plane = new KvPlane()
    // A model's block size: its config entry, else the first worker entry that gives one, else the mock engine's.
    const blockSizeFor = (model: string): number => config.models[model]?.block_size ??
      config.workers.find(w => w.model === model && w.block_size !== null)?.block_size ?? DEFAULT_BLOCK_SIZE
    // KV cache per worker, for the kv policy's usage term: the model's config entry, else what a
    // worker of the model reported (the mock engine's KV cache in tokens), else unknown.
    const kvCapacityFor = (model: string): number | null => {
      const configured = config.models[model]?.kv_capacity_blocks ?? null
      if (configured !== null) return configured
      for (const w of registry.snapshot.workersFor(model) ?? []) {
        const tokens = this.reportedWindows.get(w.id)?.tokens ?? null
        if (tokens !== null) return Math.floor(tokens / blockSizeFor(model))
      }
      return null
    }
    const routers = new RouterManager<Policy>(registry, (model) => createPolicy(config.models[model]?.policy ?? config.policy, model, { plane, blockSizeFor, kvCapacityFor }, { affinity: config.session_affinity ? {} : false }))
    // A worker that leaves stops its event source and its blocks leave the index.
    registry.onChange((snap, prev) => {
      for (const w of prev.workers) if (!snap.byId.has(w.id)) void plane.detach(w.id)
    })
    const health = new HealthChecker(registry, {
      interval: config.health_interval,
      failureThreshold: config.health_failure_threshold,
      successThreshold: config.health_success_threshold,
      discoveryRetries: config.discovery_retries
    }, {
      probe: (w) => w.url.startsWith('swy://') ? probeTcp(w.url, config.health_timeout) : probeHealth(w.url, config.health_timeout, w.apiKey),
      discover: async (w) => {
        const card = await discoverModelCard(w.url, config.discovery_timeout, w.apiKey)
        if (w.wantsNative && w.nativeUrl === null) {
          if (card.nativeUrl === null) throw new Error('transport is native but GET /v1/models advertises no native_url: give the worker\'s native_url')
          w.nativeUrl = card.nativeUrl
        }
        // What the worker reports is the last resort for its window (config and flags come first).
        if (card.window !== null) this.reportedWindows.set(w.id, card.window)
        this.applyWindow(w.id)
        return card.models
      },
      onTransition: (w, from, to, reason) => log.info({ worker: w.id, from, to, reason }, 'worker state')
    })
    const metrics = new GatewayMetrics(registry)
    metrics.watchKvPlane(plane)
    const routerMetrics = metrics.watchRouters(routers)
    const admission = new Admission(routers, registry, {
      mode: config.queue_policy as QueueMode,
      weights: parseQueueWeights(config.queue_weights),
      quantum: config.queue_quantum,
      capVisits: 2,
      agingMs: [0, config.aging_medium, config.aging_low],
      maxQueuedRequests: config.queue_max_requests,
      maxQueuedTokens: config.queue_max_tokens,
      queueTimeoutMs: config.queue_timeout,
      maxRequeues: config.max_requeues,
      sseKeepaliveMs: config.sse_keepalive_ms
    }, new AdmissionMetrics([metrics.registry], registry), routerMetrics.onDispatch)
    this.reportedWindows = new Map(opts.reportedWindows ?? [])
    this.ctx = {
      config,
      registry,
      routers,
      health,
      metrics,
      admission,
      priority: { highBelow: config.priority_high_below, lowAbove: config.priority_low_above },
      observeTokenize: routerMetrics.tokenize,
      log,
      accessLog: accessLogFor(log, opts.logger === undefined),
      transport: {
        connectTimeout: config.connect_timeout,
        firstByteTimeout: config.first_byte_timeout,
        idleTimeout: config.idle_timeout,
        connections: config.upstream_connections
      },
      native: {
        connections: config.native_connections,
        connectTimeoutMs: config.connect_timeout,
        firstItemTimeoutMs: config.first_byte_timeout,
        idleTimeoutMs: config.idle_timeout
      },
      plane,
      engines: opts.engines ?? new Map(),
      tokenizers: new Map(),
      active: new InFlightList(),
      onIdle: null,
      shuttingDown: false
    }
    const handler = (req: HttpReq, res: HttpRes): void => { this.handle(req, res) }
    // node:http's requestTimeout stays off: a streamed answer may take as long as it takes (request_timeout bounds it).
    const fallback = createServer({ keepAliveTimeout: config.keep_alive_timeout, headersTimeout: config.headers_timeout, requestTimeout: 0 }, handler)
    fallback.on('clientError', answerClientError)
    this.server = new Http1Server(handler, fallback, { bodyLimit: config.max_body_size, keepAliveTimeout: config.keep_alive_timeout, headersTimeout: config.headers_timeout })
  }

  /** Listens, then registers the configured workers (waiting for their first contact). */
  async start (): Promise<string> {
    const { config } = this.ctx
    await this.server.listen(config.port, config.host)
    for (const [model, m] of Object.entries(config.models)) {
      if (m.tokenizer !== null) this.ctx.tokenizers.set(model, await loadTokenizer(m.tokenizer))
    }
    this.ctx.health.start()
    await Promise.all(config.workers.map(spec => addWorker(this.ctx, spec, this.reportedWindows.get(spec.id ?? '') ?? null).ready))
    this.distributed = await startDistributed(this.ctx, { addWorker: (ctx, spec, reported) => addWorker(ctx, spec, reported), removeWorker })
    if (this.distributed !== null && config.replica_sync) {
      const admission = this.ctx.admission
      const sync = new RoutingSync(this.distributed.nats.nc, this.ctx.registry, { namespace: config.nats_namespace, onFreed: (w) => { admission.windowFreed(w) } })
      this.distributed.routing = sync
      admission.loadSync = sync
    }
    return this.url
  }

  /** Re-resolves a worker's window once it reported one (model discovery). */
  private applyWindow (id: string): void {
    const w = this.ctx.registry.snapshot.byId.get(id)
    if (w !== undefined) applyWorkerWindow(this.ctx, w, this.reportedWindows.get(id) ?? null)
  }

  get url (): string {
    const a = this.server.address()
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address
    return `http://${host}:${a.port}`
  }

  /**
   * Routes a request. Not async itself: a completion (the hot path) is handed to its handler
   * without an await of ours in between (each async frame costs a promise and a microtask turn
   * per request); the rest goes through `handleOther`.
   */
  private handle (req: HttpReq, res: HttpRes): void {
    const ctx = this.ctx
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const method = req.method ?? 'GET'
    if (path === '/v1/chat/completions' || path === '/v1/completions') {
      if (method !== 'POST') sendError(res, new MethodNotAllowedError(method, path, ['POST']), null)
      else if (!checkBearer(req, ctx.config.api_key)) sendError(res, unauthorized('missing or invalid API key: send Authorization: Bearer <key>'), null)
      // handleCompletion answers its own failures: its promise never rejects.
      else void handleCompletion(ctx, path === '/v1/chat/completions' ? 'chat' : 'completions', req, res)
      return
    }
    void this.handleOther(req, res, path, method)
  }

  private async handleOther (req: HttpReq, res: HttpRes, path: string, method: string): Promise<void> {
    const ctx = this.ctx
    try {
      if (path === '/v1/models') {
        if (method !== 'GET') throw new MethodNotAllowedError(method, path, ['GET'])
        if (!checkBearer(req, ctx.config.api_key)) throw unauthorized('missing or invalid API key: send Authorization: Bearer <key>')
        handleModels(ctx, res)
        return
      }
      if (path === '/health') {
        const ok = !ctx.shuttingDown
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
        res.end(ok ? '{"status":"ok"}' : '{"status":"shutting_down"}')
        return
      }
      if (path === '/metrics') {
        if (method !== 'GET') throw new MethodNotAllowedError(method, path, ['GET'])
        const text = await ctx.metrics.registry.metrics()
        res.writeHead(200, { 'content-type': ctx.metrics.registry.contentType })
        res.end(text)
        return
      }
      if (path === '/workers' || path.startsWith('/workers/')) {
        if (!checkBearer(req, ctx.config.admin_key)) throw unauthorized('missing or invalid admin key: send Authorization: Bearer <admin key>')
        const id = path === '/workers' ? null : decodeURIComponent(path.slice('/workers/'.length))
        await handleWorkers(ctx, req, res, id === '' ? null : id)
        return
      }
      throw notFound(`no route ${method} ${path}`)
    } catch (err) {
      sendError(res, asSwitchyardError(err), null)
    }
  }

  /**
   * Graceful shutdown: stop accepting, let in-flight requests finish within `graceMs` (default
   * `shutdown_grace`), then abort the rest, close worker clients and the server. Idempotent.
   */
  close (graceMs: number = this.ctx.config.shutdown_grace): Promise<void> {
    this.closing ??= this.shutdown(graceMs)
    return this.closing
  }

  private async shutdown (graceMs: number): Promise<void> {
    const ctx = this.ctx
    ctx.shuttingDown = true
    await this.distributed?.close()
    const serverClosed = this.server.close()
    this.server.closeIdleConnections()
    if (ctx.active.size > 0) {
      ctx.log.info({ inflight: ctx.active.size, grace_ms: graceMs }, 'shutting down: waiting for in-flight requests')
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        new Promise<void>(resolve => { ctx.onIdle = resolve }),
        new Promise<void>(resolve => { timer = setTimeout(resolve, graceMs) })
      ])
      clearTimeout(timer)
      for (const a of ctx.active.toArray()) a.abort()
    }
    ctx.admission.close()
    ctx.health.close()
    ctx.routers.close()
    this.server.closeAllConnections()
    await Promise.all([serverClosed, ctx.registry.close(), ctx.plane.close()])
    ctx.accessLog.close()
    ctx.log.flush()
  }

  [Symbol.asyncDispose] (): Promise<void> {
    return this.close()
  }
}
