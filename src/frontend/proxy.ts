import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { hotHeader, Http1Response, type HttpReq, type HttpRes } from './http1/server.js'
import type { Admission, AdmitRequest } from '../admission/admission.js'
import { priorityClass } from '../admission/priority.js'
import { INTERNAL_LANE, USER_LANE } from '../admission/scheduler.js'
import type { Worker } from '../registry/worker.js'
import { NO_HEADERS, type Policy, type RouteRequest } from '../routing/policy.js'
import { builtinTokenizer } from '../tokenize/index.js'
import { SwitchyardError } from '../shared/errors.js'
import type { Dispatcher } from 'undici'
import { classifyUpstreamError, httpUpstreamFor, REQUEST_DEADLINE_CODE, type HttpUpstream } from '../transport/http.js'
import type { NativeStreamError } from '../transport/native/index.js'
import { nativeUpstreamFor } from '../transport/worker-native.js'
import { NativeExchange, nativeRequestOf } from './native-exchange.js'
import type { GatewayContext, InFlight } from './context.js'
import { sseErrorEvent } from './errors.js'
import type { ModelMetrics } from './metrics.js'
import { clientHeaders, headerLookup, upstreamHeaderBlock } from './headers.js'
import { newRequestId } from './request-id.js'
import { promptTokens } from './tokens.js'
import { promptText, type ParsedRequest } from './validate.js'

const PATHS = { chat: '/v1/chat/completions', completions: '/v1/completions' } as const
/**
 * A request's weight in windows and queues: prompt tokens (counted when the policy tokenized,
 * else a 4-chars-per-token guess) plus max_tokens or the configured expected output.
 */
function tokenEstimate (p: ParsedRequest, promptTokens: number | null, expectedOutput: number): number {
  return (promptTokens ?? Math.ceil(p.promptChars / 4)) + (p.maxTokens ?? expectedOutput)
}

/** Headers and an SSE comment for a streaming request still waiting for a window. */
function keepaliveFor (res: HttpRes, requestId: string): () => void {
  return () => {
    if (res.writableEnded) return
    if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': requestId })
    res.write(': waiting for a worker\n\n')
  }
}

export function requestIdOf (req: HttpReq): string {
  const h = hotHeader(req, 'x-request-id')
  return h !== undefined && h !== '' && h.length <= 200 ? h : newRequestId()
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

/** What is left of a request's budget, at least 1 ms (an attempt that starts late fails at once, as a timeout). */
function budgetLeft (budgetMs: number, started: number): number {
  return Math.max(1, Math.round(budgetMs - (performance.now() - started)))
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
  readonly res: HttpRes
  readonly requestId: string
  readonly started: number
  readonly stream: boolean
  readonly mm: ModelMetrics
  /** Intercept 502/503 to retry elsewhere (the last attempt passes them through). */
  readonly canRetry: boolean
  /** Intercept 429/503 to send the request back to the queue (pushback). */
  readonly canRequeue: boolean
  /** Headers already went out (SSE keep-alive while queued): an error answer becomes an SSE error event. */
  readonly keptAlive: boolean
  errorBody: Buffer[] | null = null
  controller: Dispatcher.DispatchController | null = null
  status = 0
  outHeaders: OutgoingHttpHeaders | null = null
  /** The worker's head lines to forward as they came (the fast server and the http:// pool), instead of outHeaders. */
  lines: Buffer | null = null
  linesHaveLength = false
  sentHead = false
  ttftMs: number | null = null
  last = 0
  done = false
  private deadline: NodeJS.Timeout | null = null
  /** Set when the client went away; the attempt is abandoned. */
  clientGone = false
  retryStatus = 0
  /** Told when the first byte arrives (the kv policy ends the request's prefill load then). */
  readonly policy: Policy
  readonly admission: Admission
  readonly worker: Worker
  readonly route: RouteRequest
  settle: ((err: Error | null) => void) | null = null
  private readonly onDrain: () => void

  constructor (res: HttpRes, requestId: string, started: number, stream: boolean, mm: ModelMetrics, canRetry: boolean, canRequeue: boolean, admission: Admission, policy: Policy, worker: Worker, route: RouteRequest) {
    this.policy = policy
    this.admission = admission
    this.worker = worker
    this.route = route
    this.res = res
    this.requestId = requestId
    this.started = started
    this.stream = stream
    this.mm = mm
    this.canRetry = canRetry
    this.canRequeue = canRequeue
    this.keptAlive = res.headersSent
    this.onDrain = () => { this.controller?.resume() }
  }

  /** `budgetMs` > 0: what is left of the request's request_timeout; the attempt is aborted when it runs out. */
  run (up: HttpUpstream, path: string, headers: string, body: Buffer | string, budgetMs = 0): Promise<Error | null> {
    return new Promise(resolve => {
      this.settle = resolve
      if (budgetMs > 0) {
        this.deadline = setTimeout(() => {
          this.abort(Object.assign(new Error(`the request's budget (request_timeout) ran out after ${Math.round(performance.now() - this.started)} ms`), { code: REQUEST_DEADLINE_CODE }))
        }, budgetMs)
      }
      // The fast server's response copies each chunk into its own write buffer (frame()): the pool
      // may hand over views of its read buffer. node's ServerResponse may keep the chunk queued.
      const fast = this.res instanceof Http1Response
      up.dispatch(path, headers, body, this, fast, fast)
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
    if (((statusCode === 429 || statusCode === 503) && this.canRequeue) || ((statusCode === 502 || statusCode === 503) && this.canRetry)) {
      this.retryStatus = statusCode
      controller.abort(new Error(`answered ${statusCode}`))
      return
    }
    this.status = statusCode
    if (this.keptAlive) {
      if (statusCode >= 400) this.errorBody = []
      return
    }
    const job = controller as { forwardLines?: Buffer | null, forwardHasLength?: boolean }
    if (job.forwardLines != null && this.res instanceof Http1Response) {
      this.lines = job.forwardLines
      this.linesHaveLength = job.forwardHasLength === true
    } else {
      this.outHeaders = clientHeaders(headers, this.requestId)
    }
  }

  private writeHead (): void {
    if (this.lines !== null) (this.res as Http1Response).writeHeadLines(this.status, this.lines, this.linesHaveLength, this.requestId)
    else this.res.writeHead(this.status, this.outHeaders!)
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const now = performance.now()
    const res = this.res
    if (this.errorBody !== null) { this.errorBody.push(Buffer.from(chunk)); return }
    if (!this.sentHead) {
      if (!this.keptAlive) this.writeHead()
      this.sentHead = true
      this.ttftMs = now - this.started
      this.mm.ttft.observe(this.ttftMs / 1000)
      this.admission.firstToken(this.worker, this.route, this.policy)
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
    if (this.errorBody !== null) {
      // The worker refused after our keep-alive headers went out: its error becomes an SSE event.
      let message = `the worker answered ${this.status}`
      try { message = (JSON.parse(Buffer.concat(this.errorBody).toString()) as { error: { message: string } }).error.message ?? message } catch { /* not JSON: keep the status line */ }
      this.res.end(sseErrorEvent(new SwitchyardError('SWY_ERR_UPSTREAM_STREAM', message, { status: this.status, type: this.status === 429 ? 'rate_limit_error' : this.status >= 500 ? 'server_error' : 'invalid_request_error', apiCode: `upstream_${this.status}` })))
    } else {
      if (!this.sentHead) { if (!this.keptAlive) this.writeHead(); this.sentHead = true }
      this.res.end()
    }
    this.finish(null)
  }

  onResponseError (_controller: Dispatcher.DispatchController, err: Error): void {
    this.finish(err)
  }

  private finish (err: Error | null): void {
    if (this.done) return
    this.done = true
    if (this.deadline !== null) clearTimeout(this.deadline)
    this.res.off('drain', this.onDrain)
    const settle = this.settle
    this.settle = null
    settle?.(err)
  }
}

/**
 * Sends a validated request to a worker chosen by the model's router (through admission, which
 * may make it wait for a window) and streams the answer back. Failures before the first byte
 * reach the client only after `retry_attempts` tries on different workers; a worker that pushes
 * back (429/503 before any byte) sends the request back to the queue up to `max_requeues` times;
 * after the first byte a streaming answer ends with an SSE error event. The upstream body and
 * status pass through as the worker sent them.
 */
export async function proxyRequest (ctx: GatewayContext, req: HttpReq, res: HttpRes, parsed: ParsedRequest, model: string, rawBody: Buffer | string, requestId: string, started: number, abort: InFlight): Promise<ProxyOutcome> {
  const cfg = ctx.config
  // Text and tokens cost CPU per request: computed only for the policies that read them.
  const needs = ctx.routers.get(model)?.policy.needs
  const text = needs === 'text' ? promptText(parsed) : null
  let tokens: Uint32Array | null = null
  if (needs === 'tokens') {
    const t0 = performance.now()
    tokens = promptTokens(parsed, ctx.tokenizers.get(model) ?? builtinTokenizer())
    ctx.observeTokenize(model, (performance.now() - t0) / 1000)
  }
  const weight = tokenEstimate(parsed, tokens === null ? null : tokens.length, cfg.expected_output_tokens)
  // Policies read headers through a lookup: the fast server's request answers it from its parse, no header object is built.
  const route: RouteRequest = { model, text, tokens, headers: cfg.session_affinity ? headerLookup(req) : NO_HEADERS, tokenEstimate: weight, excluded: null, policyPrefill: 0, policyBlocks: 0 }
  const admit: AdmitRequest = {
    model,
    route,
    cls: priorityClass(parsed.priority, hotHeader(req, 'x-priority'), ctx.priority),
    lane: USER_LANE,
    arrival: started,
    keepalive: parsed.stream && cfg.sse_keepalive_ms > 0 ? keepaliveFor(res, requestId) : null,
    inflight: abort
  }
  const bodyRewritten = typeof rawBody === 'string'
  const metrics = ctx.metrics
  const mm = metrics.forModel(model)
  const path = PATHS[parsed.endpoint]
  const admission = ctx.admission
  let lastError: SwitchyardError | null = null
  let tries = 0
  let failures = 0
  let requeues = 0
  try {
    for (;;) {
      tries++
      let worker: Worker | null
      const got = admission.acquire(requeues > 0 ? { ...admit, lane: INTERNAL_LANE } : admit)
      if (got instanceof Promise) {
        try {
          worker = await got
        } catch (err) {
          if (abort.aborted) return { status: 499, worker: null, attempts: tries, ttftMs: null, error: null }
          throw err
        } finally {
          abort.exchange = null
        }
      } else worker = got
      if (worker === null) return { status: 0, worker: null, attempts: tries, ttftMs: null, error: lastError ?? noWorker(model) }
      const policy = ctx.routers.get(model)?.policy ?? null
      if (abort.aborted) {
        admission.release(worker, route, policy)
        return { status: 499, worker, attempts: tries, ttftMs: null, error: null }
      }
      // One attempt on the worker's transport, reduced to what the retry logic needs.
      let err: Error | null
      let sentHead: boolean
      let ttftMs: number | null
      let okStatus: number
      let pushback: number
      let failure: SwitchyardError | null = null
      let retryable = false
      if (worker.nativeUrl !== null) {
        const up = nativeUpstreamFor(worker, ctx.native)
        const nx = new NativeExchange(res, requestId, started, parsed, model, mm, admission, policy!, worker, route, cfg.max_client_backlog)
        abort.exchange = nx
        let nerr: NativeStreamError | null
        try {
          const nreq = nativeRequestOf(parsed, model, route.tokens, requestId)
          if (cfg.request_timeout > 0) nreq.deadlineMs = budgetLeft(cfg.request_timeout, started)
          nerr = await nx.run(up, nreq)
        } finally {
          admission.release(worker, route, policy)
        }
        if (nx.cutSlow) {
          metrics.slowClients.inc({ model })
          ctx.log.warn({ rid: requestId, worker: worker.id }, `client fell more than ${cfg.max_client_backlog} bytes behind: cut, upstream cancelled`)
          abort.abort()
        }
        err = nerr
        sentHead = nx.sentHead
        ttftMs = nx.ttftMs
        okStatus = 200
        // A worker refusing before any item (overloaded, draining) pushes back like an HTTP 429/503.
        pushback = nerr !== null && !nerr.received && (nerr.status === 429 || nerr.status === 503) && requeues < cfg.max_requeues ? nerr.status : 0
        if (nerr !== null && pushback === 0) {
          failure = nerr
          retryable = nerr.retryable && !nerr.received
        }
        // A tombstoned upstream: routing skips the worker until it may be tried again.
        if (up.tombstonedUntil > 0) worker.unavailableUntil = up.tombstonedUntil
      } else {
        const up = httpUpstreamFor(worker, ctx.transport)
        const headers = upstreamHeaderBlock(req, requestId, cfg.api_key !== null, worker.apiKey, bodyRewritten)
        const ex: Exchange = new Exchange(res, requestId, started, parsed.stream, mm, failures + 1 < cfg.retry_attempts, requeues < cfg.max_requeues, admission, policy!, worker, route)
        abort.exchange = ex
        try {
          err = await ex.run(up, path, headers, rawBody, cfg.request_timeout > 0 ? budgetLeft(cfg.request_timeout, started) : 0)
        } finally {
          admission.release(worker, route, policy)
        }
        sentHead = ex.sentHead
        ttftMs = ex.ttftMs
        okStatus = ex.status
        pushback = (ex.retryStatus === 429 || ex.retryStatus === 503) && ex.canRequeue ? ex.retryStatus : 0
        if (err !== null && pushback === 0) {
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
        }
      }
      if (err === null) return { status: okStatus, worker, attempts: tries, ttftMs, error: null }
      if (abort.aborted) return { status: 499, worker, attempts: tries, ttftMs, error: null }
      if (pushback !== 0) {
        // Pushback: the worker cannot take it now. Back to the queue (internal lane, same age),
        // away from this worker while others exist, after a short jittered pause.
        requeues++
        lastError = upstreamFailed(worker, `answered ${pushback}`, err)
        ctx.admission.noteRequeue(model)
        ctx.log.debug({ rid: requestId, worker: worker.id, requeues }, 'worker pushed back; requeued')
        if (route.excluded === null) route.excluded = []
        route.excluded.push(worker)
        await backoff(ctx, requeues)
        if (abort.aborted) return { status: 499, worker, attempts: tries, ttftMs: null, error: null }
        continue
      }
      if (failure === null) failure = upstreamFailed(worker, err.message, err)
      failures++
      worker.totalErrors++
      worker.lastError = failure.message
      metrics.workerErrors.inc({ worker: worker.id, reason: failure.apiCode })
      if (sentHead) {
        // The answer has started: it cannot move to another worker. End it visibly.
        const streamErr = new SwitchyardError('SWY_ERR_UPSTREAM_STREAM', `the worker failed mid-answer: ${failure.message}`, { status: 502, type: 'server_error', apiCode: 'upstream_stream_error', cause: err })
        if (parsed.stream) res.end(sseErrorEvent(streamErr))
        else res.destroy(streamErr)
        return { status: res.statusCode, worker, attempts: tries, ttftMs, error: streamErr }
      }
      lastError = failure
      if (!retryable || failures >= cfg.retry_attempts) return { status: 0, worker, attempts: tries, ttftMs: null, error: failure }
      metrics.retries.inc({ model, reason: failure.apiCode })
      ctx.log.debug({ rid: requestId, worker: worker.id, attempt: tries, err: failure.message }, 'retrying on another worker')
      if (route.excluded === null) route.excluded = []
      route.excluded.push(worker)
      await backoff(ctx, failures)
      if (abort.aborted) return { status: 499, worker, attempts: tries, ttftMs: null, error: null }
    }
  } finally {
    abort.exchange = null
  }
}
