import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import { addLoad, removeLoad } from '../registry/load.js'
import type { Worker } from '../registry/worker.js'
import type { Policy, RouteRequest } from '../routing/policy.js'
import { builtinTokenizer } from '../tokenize/index.js'
import { SwitchyardError } from '../shared/errors.js'
import type { Dispatcher } from 'undici'
import { classifyUpstreamError, httpUpstreamFor, type HttpUpstream } from '../transport/http.js'
import type { GatewayContext, InFlight } from './context.js'
import { sseErrorEvent } from './errors.js'
import type { ModelMetrics } from './metrics.js'
import { clientHeaders, upstreamHeaders } from './headers.js'
import { promptTokens } from './tokens.js'
import { promptText, type ParsedRequest } from './validate.js'

const PATHS = { chat: '/v1/chat/completions', completions: '/v1/completions' } as const
/** Statuses that mean "this worker cannot take it now" when they come before any byte. */
const RETRY_STATUS = new Set([502, 503])

/** A 4-chars-per-token guess: only used to weigh load, never to bill or limit. */
function tokenEstimate (p: ParsedRequest): number {
  return Math.ceil(p.promptChars / 4) + (p.maxTokens ?? 256)
}

export function requestIdOf (req: IncomingMessage): string {
  const h = req.headers['x-request-id']
  return typeof h === 'string' && h !== '' && h.length <= 200 ? h : randomUUID()
}

function noWorker (model: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_NO_HEALTHY_WORKER', `no healthy worker is available for model '${model}'`, { status: 503, type: 'service_unavailable_error', apiCode: 'no_healthy_worker', retryAfter: 1 })
}

function upstreamFailed (worker: Worker, reason: string, cause: unknown): SwitchyardError {
  return new SwitchyardError('SWY_ERR_UPSTREAM_UNAVAILABLE', `worker ${worker.id} failed before answering: ${reason}`, { status: 502, type: 'server_error', apiCode: 'upstream_unavailable', cause })
}

function upstreamTimeout (worker: Worker, cause: unknown): SwitchyardError {
  const code = (cause as { code?: string }).code
  const what = code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connect' : code === 'UND_ERR_HEADERS_TIMEOUT' ? 'first byte' : 'idle'
  return new SwitchyardError('SWY_ERR_UPSTREAM_TIMEOUT', `worker ${worker.id} exceeded the ${what} deadline`, { status: 504, type: 'timeout_error', apiCode: 'upstream_timeout', cause })
}

function backoff (ctx: GatewayContext, attempt: number): Promise<void> {
  const cap = Math.min(ctx.config.retry_backoff_max, ctx.config.retry_backoff * 2 ** (attempt - 1))
  const ms = Math.random() * cap
  return ms < 1 ? Promise.resolve() : new Promise(resolve => setTimeout(resolve, ms))
}

export interface ProxyOutcome {
  status: number
  worker: Worker | null
  attempts: number
  ttftMs: number | null
  error: SwitchyardError | null
}

/**
 * One attempt on one worker, as an undici dispatch handler: upstream chunks are written to the
 * client from `onResponseData` as they arrive. This replaced `pool.request()` + `for await` over
 * its body after bench/mocker's profile showed the Readable and its async iterator among the top
 * frames per streamed token; here a chunk costs one callback and one `res.write`.
 * The client's head is written with the first body chunk, so a worker that fails after its
 * headers but before any byte can still be retried elsewhere.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly res: ServerResponse
  readonly requestId: string
  readonly started: number
  readonly stream: boolean
  readonly mm: ModelMetrics
  /** Answer with this status instead of retrying (the last attempt passes a 502/503 through). */
  readonly retryStatuses: boolean
  controller: Dispatcher.DispatchController | null = null
  status = 0
  outHeaders: OutgoingHttpHeaders | null = null
  sentHead = false
  ttftMs: number | null = null
  last = 0
  done = false
  /** Set when the client went away; the attempt is abandoned. */
  clientGone = false
  retryStatus = 0
  /** Told when the first byte arrives (the kv policy ends the request's prefill load then). */
  readonly policy: Policy
  readonly worker: Worker
  readonly route: RouteRequest
  settle: ((err: Error | null) => void) | null = null
  private readonly onDrain: () => void

  constructor (res: ServerResponse, requestId: string, started: number, stream: boolean, mm: ModelMetrics, retryStatuses: boolean, policy: Policy, worker: Worker, route: RouteRequest) {
    this.policy = policy
    this.worker = worker
    this.route = route
    this.res = res
    this.requestId = requestId
    this.started = started
    this.stream = stream
    this.mm = mm
    this.retryStatuses = retryStatuses
    this.onDrain = () => { this.controller?.resume() }
  }

  run (up: HttpUpstream, path: string, headers: string[], body: Buffer | string): Promise<Error | null> {
    return new Promise(resolve => {
      this.settle = resolve
      up.dispatch(path, headers, body, this)
    })
  }

  abort (reason: Error): void {
    if (this.done) return
    if (this.controller !== null) this.controller.abort(reason)
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.clientGone) controller.abort(new Error('client went away'))
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.retryStatuses && RETRY_STATUS.has(statusCode)) {
      this.retryStatus = statusCode
      controller.abort(new Error(`answered ${statusCode}`))
      return
    }
    this.status = statusCode
    this.outHeaders = clientHeaders(headers, this.requestId)
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const now = performance.now()
    const res = this.res
    if (!this.sentHead) {
      res.writeHead(this.status, this.outHeaders!)
      this.sentHead = true
      this.ttftMs = now - this.started
      this.mm.ttft.observe(this.ttftMs / 1000)
      if (this.policy.onFirstToken !== undefined) this.policy.onFirstToken(this.worker, this.route)
    } else if (this.stream) {
      this.mm.itl.observe((now - this.last) / 1000)
    }
    this.last = now
    if (!res.write(chunk)) {
      controller.pause()
      res.once('drain', this.onDrain)
    }
  }

  onResponseEnd (): void {
    if (!this.sentHead) { this.res.writeHead(this.status, this.outHeaders!); this.sentHead = true }
    this.res.end()
    this.finish(null)
  }

  onResponseError (_controller: Dispatcher.DispatchController, err: Error): void {
    this.finish(err)
  }

  private finish (err: Error | null): void {
    if (this.done) return
    this.done = true
    this.res.off('drain', this.onDrain)
    const settle = this.settle
    this.settle = null
    settle?.(err)
  }
}

/**
 * Sends a validated request to a worker chosen by the model's router and streams the answer
 * back. Failures before the first byte reach the client only after `retry_attempts` tries on
 * different workers; after the first byte a streaming answer ends with an SSE error event.
 * The upstream body and status pass through as the worker sent them.
 */
export async function proxyRequest (ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, parsed: ParsedRequest, model: string, rawBody: Buffer | string, requestId: string, started: number, abort: InFlight): Promise<ProxyOutcome> {
  const cfg = ctx.config
  const tokens = tokenEstimate(parsed)
  const route: RouteRequest = { model, body: parsed.body, text: null, tokens: null, headers: req.headers, tokenEstimate: tokens, excluded: null, policyPrefill: 0, policyBlocks: 0 }
  // Text and tokens cost CPU per request: computed only for the policies that read them.
  const needs = ctx.routers.get(model)?.policy.needs
  if (needs === 'text') route.text = promptText(parsed)
  else if (needs === 'tokens') route.tokens = promptTokens(parsed, ctx.tokenizers.get(model) ?? builtinTokenizer())
  const bodyRewritten = typeof rawBody === 'string'
  const metrics = ctx.metrics
  const mm = metrics.forModel(model)
  const path = PATHS[parsed.endpoint]
  let lastError: SwitchyardError | null = null
  let attempt = 0
  try {
    while (attempt < cfg.retry_attempts) {
      attempt++
      const router = ctx.routers.get(model)
      const policy = router?.policy ?? null
      const worker = policy === null ? null : policy.select(router!.workers, route)
      if (worker === null || policy === null) return { status: 0, worker: null, attempts: attempt, ttftMs: null, error: lastError ?? noWorker(model) }
      const up = httpUpstreamFor(worker, ctx.transport)
      const headers = upstreamHeaders(req.rawHeaders, requestId, cfg.api_key !== null, worker.apiKey, bodyRewritten)
      const ex: Exchange = new Exchange(res, requestId, started, parsed.stream, mm, attempt < cfg.retry_attempts, policy, worker, route)
      abort.exchange = ex
      if (abort.aborted) ex.clientGone = true
      addLoad(worker, tokens)
      policy.onRouted?.(worker, route)
      let err: Error | null
      try {
        err = await ex.run(up, path, headers, rawBody)
      } finally {
        removeLoad(worker, tokens)
        policy.onFinished?.(worker, route)
      }
      if (err === null) return { status: ex.status, worker, attempts: attempt, ttftMs: ex.ttftMs, error: null }
      if (abort.aborted) return { status: 499, worker, attempts: attempt, ttftMs: ex.ttftMs, error: null }
      let failure: SwitchyardError
      let retryable: boolean
      if (ex.retryStatus !== 0) {
        failure = upstreamFailed(worker, `answered ${ex.retryStatus}`, err)
        retryable = true
      } else {
        const kind = classifyUpstreamError(err)
        // A connect timeout is safe to retry (nothing reached the worker); a first-byte or idle
        // timeout is not: the worker may still be computing, and a retry would double the work.
        retryable = kind === 'network' || (err as { code?: string }).code === 'UND_ERR_CONNECT_TIMEOUT'
        failure = kind === 'timeout' ? upstreamTimeout(worker, err) : upstreamFailed(worker, err.message, err)
      }
      worker.totalErrors++
      worker.lastError = failure.message
      metrics.workerErrors.inc({ worker: worker.id, reason: failure.apiCode })
      if (ex.sentHead) {
        // The answer has started: it cannot move to another worker. End it visibly.
        const streamErr = new SwitchyardError('SWY_ERR_UPSTREAM_STREAM', `the worker failed mid-answer: ${failure.message}`, { status: 502, type: 'server_error', apiCode: 'upstream_stream_error', cause: err })
        if (parsed.stream) res.end(sseErrorEvent(streamErr))
        else res.destroy(streamErr)
        return { status: res.statusCode, worker, attempts: attempt, ttftMs: ex.ttftMs, error: streamErr }
      }
      lastError = failure
      if (!retryable || attempt >= cfg.retry_attempts) return { status: 0, worker, attempts: attempt, ttftMs: null, error: failure }
      metrics.retries.inc({ model, reason: failure.apiCode })
      ctx.log.debug({ rid: requestId, worker: worker.id, attempt, err: failure.message }, 'retrying on another worker')
      if (route.excluded === null) route.excluded = []
      route.excluded.push(worker)
      await backoff(ctx, attempt)
      if (abort.aborted) return { status: 499, worker, attempts: attempt, ttftMs: null, error: null }
    }
    return { status: 0, worker: null, attempts: attempt, ttftMs: null, error: lastError ?? noWorker(model) }
  } finally {
    abort.exchange = null
  }
}
