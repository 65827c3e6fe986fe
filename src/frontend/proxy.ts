import type { IncomingMessage, ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import { addLoad, removeLoad } from '../registry/load.js'
import type { Worker } from '../registry/worker.js'
import type { RouteRequest } from '../routing/policy.js'
import { SwitchyardError } from '../shared/errors.js'
import { classifyUpstreamError, httpUpstreamFor } from '../transport/http.js'
import type { GatewayContext } from './context.js'
import { sseErrorEvent } from './errors.js'
import { clientHeaders, upstreamHeaders } from './headers.js'
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

/** Resolves on 'drain', or on 'close' when the client went away while we waited. */
function drained (res: ServerResponse): Promise<void> {
  return new Promise(resolve => {
    const done = (): void => { res.off('drain', done); res.off('close', done); resolve() }
    res.on('drain', done)
    res.on('close', done)
  })
}

export interface ProxyOutcome {
  status: number
  worker: Worker | null
  attempts: number
  ttftMs: number | null
  error: SwitchyardError | null
}

/**
 * Sends a validated request to a worker chosen by the model's router and streams the answer
 * back. Failures before the first byte reach the client only after `retry_attempts` tries on
 * different workers; after the first byte a streaming answer ends with an SSE error event.
 * The upstream body and status pass through as the worker sent them.
 */
export async function proxyRequest (ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, parsed: ParsedRequest, model: string, rawBody: Buffer | string, requestId: string, started: number, abort: AbortController): Promise<ProxyOutcome> {
  const cfg = ctx.config
  const tokens = tokenEstimate(parsed)
  const route: RouteRequest = { model, body: parsed.body, text: null, tokens: null, headers: req.headers, tokenEstimate: tokens, excluded: null }
  // Text and tokens cost CPU per request: computed only for the policies that read them.
  if (ctx.routers.get(model)?.policy.needs === 'text') route.text = promptText(parsed)
  const bodyRewritten = typeof rawBody === 'string'
  const metrics = ctx.metrics
  const mm = metrics.forModel(model)
  let lastError: SwitchyardError | null = null
  let attempt = 0
  while (attempt < cfg.retry_attempts) {
    attempt++
    const router = ctx.routers.get(model)
    const worker = router === undefined ? null : router.policy.select(router.workers, route)
    if (worker === null) return { status: 0, worker: null, attempts: attempt, ttftMs: null, error: lastError ?? noWorker(model) }
    const up = httpUpstreamFor(worker, ctx.transport)
    const headers = upstreamHeaders(req.rawHeaders, requestId, cfg.api_key !== null, worker.apiKey, bodyRewritten)
    addLoad(worker, tokens)
    let sentHead = false
    let ttftMs: number | null = null
    try {
      const upRes = await up.request('POST', PATHS[parsed.endpoint], headers, rawBody, abort.signal)
      if (RETRY_STATUS.has(upRes.statusCode) && attempt < cfg.retry_attempts) {
        await upRes.body.dump().catch(() => {})
        throw new RetryableStatus(upRes.statusCode)
      }
      const outHeaders = clientHeaders(upRes.headers, requestId)
      let last = 0
      for await (const chunk of upRes.body) {
        const now = performance.now()
        if (!sentHead) {
          res.writeHead(upRes.statusCode, outHeaders)
          sentHead = true
          ttftMs = now - started
          mm.ttft.observe(ttftMs / 1000)
        } else if (parsed.stream) {
          mm.itl.observe((now - last) / 1000)
        }
        last = now
        if (!res.write(chunk)) await drained(res)
        if (abort.signal.aborted) break
      }
      if (!sentHead) { res.writeHead(upRes.statusCode, outHeaders); sentHead = true }
      res.end()
      return { status: upRes.statusCode, worker, attempts: attempt, ttftMs, error: null }
    } catch (err) {
      if (abort.signal.aborted) return { status: 499, worker, attempts: attempt, ttftMs, error: null }
      let failure: SwitchyardError
      let retryable: boolean
      if (err instanceof RetryableStatus) {
        failure = upstreamFailed(worker, `answered ${err.status}`, err)
        retryable = true
      } else {
        const kind = classifyUpstreamError(err)
        // A connect timeout is safe to retry (nothing reached the worker); a first-byte or idle
        // timeout is not: the worker may still be computing, and a retry would double the work.
        retryable = kind === 'network' || (err as { code?: string }).code === 'UND_ERR_CONNECT_TIMEOUT'
        failure = kind === 'timeout' ? upstreamTimeout(worker, err) : upstreamFailed(worker, (err as Error).message, err)
      }
      worker.totalErrors++
      worker.lastError = failure.message
      metrics.workerErrors.inc({ worker: worker.id, reason: failure.apiCode })
      if (sentHead) {
        // The answer has started: it cannot move to another worker. End it visibly.
        const streamErr = new SwitchyardError('SWY_ERR_UPSTREAM_STREAM', `the worker failed mid-answer: ${failure.message}`, { status: 502, type: 'server_error', apiCode: 'upstream_stream_error', cause: err })
        if (parsed.stream) res.end(sseErrorEvent(streamErr))
        else res.destroy(streamErr)
        return { status: res.statusCode, worker, attempts: attempt, ttftMs, error: streamErr }
      }
      lastError = failure
      if (!retryable || attempt >= cfg.retry_attempts) return { status: 0, worker, attempts: attempt, ttftMs, error: failure }
      metrics.retries.inc({ model, reason: failure.apiCode })
      ctx.log.debug({ rid: requestId, worker: worker.id, attempt, err: failure.message }, 'retrying on another worker')
      if (route.excluded === null) route.excluded = []
      route.excluded.push(worker)
      await backoff(ctx, attempt)
      if (abort.signal.aborted) return { status: 499, worker, attempts: attempt, ttftMs, error: null }
    } finally {
      removeLoad(worker, tokens)
    }
  }
  return { status: 0, worker: null, attempts: attempt, ttftMs: null, error: lastError ?? noWorker(model) }
}

class RetryableStatus extends Error {
  constructor (readonly status: number) {
    super(`status ${status}`)
  }
}
