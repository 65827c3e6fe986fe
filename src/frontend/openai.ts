import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import type { HttpReq, HttpRes } from './http1/server.js'
import { SwitchyardError } from '../shared/errors.js'
import { bodyIfRead, readBody } from './body.js'
import { InFlight, type GatewayContext } from './context.js'
import { asSwitchyardError, sendError, sseErrorEvent } from './errors.js'
import { proxyRequest, requestIdOf } from './proxy.js'
import { parseRequest, type Endpoint } from './validate.js'

function modelNotFound (model: string, served: readonly string[]): SwitchyardError {
  return new SwitchyardError('SWY_ERR_MODEL_NOT_FOUND', `the model '${model}' does not exist; served models: ${served.length > 0 ? served.join(', ') : '(none)'}`, { status: 404, type: 'invalid_request_error', apiCode: 'model_not_found', param: 'model' })
}

function modelRequired (served: readonly string[]): SwitchyardError {
  return new SwitchyardError('SWY_ERR_MODEL_REQUIRED', `'model' is required: this gateway serves ${served.length === 0 ? 'no model yet' : served.join(', ')}`, { status: 400, type: 'invalid_request_error', apiCode: 'model_required', param: 'model' })
}

function noWorkerYet (model: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_NO_HEALTHY_WORKER', `no worker for model '${model}' has registered on NATS yet`, { status: 503, type: 'service_unavailable_error', apiCode: 'no_healthy_worker', param: 'model', retryAfter: 1 })
}

function shuttingDown (): SwitchyardError {
  return new SwitchyardError('SWY_ERR_SHUTTING_DOWN', 'the gateway is shutting down', { status: 503, type: 'service_unavailable_error', apiCode: 'shutting_down', retryAfter: 1 })
}

function endAfterKeepalive (res: HttpRes, err: SwitchyardError): void {
  if (!res.writableEnded) res.end(sseErrorEvent(err))
}

/**
 * POST /v1/chat/completions and /v1/completions: read and check the body, resolve the model,
 * hand over to the proxy, then account (metrics, log) for the outcome. Answers every failure
 * itself; the returned promise never rejects.
 */
export async function handleCompletion (ctx: GatewayContext, endpoint: Endpoint, req: HttpReq, res: HttpRes): Promise<void> {
  const started = performance.now()
  const requestId = requestIdOf(req)
  const abort = new InFlight()
  const onClose = (): void => { if (!res.writableFinished) abort.abort() }
  res.on('close', onClose)
  ctx.active.add(abort)
  let model = '-'
  let status = 0
  let worker: string | null = null
  let attempts = 0
  let ttftMs: number | null = null
  let inflight: { inc (): void, dec (): void } | null = null
  try {
    if (ctx.shuttingDown) throw shuttingDown()
    const raw = bodyIfRead(req, ctx.config.max_body_size) ?? await readBody(req, ctx.config.max_body_size)
    const parsed = parseRequest(endpoint, raw)
    const snap = ctx.registry.snapshot
    let body: Buffer | string = raw
    if (parsed.model === null) {
      if (snap.modelNames.length !== 1) throw modelRequired(snap.modelNames)
      model = snap.modelNames[0]!
      // The worker needs a model name: this is the one case where the body is re-serialized.
      parsed.body.model = model
      body = JSON.stringify(parsed.body)
    } else {
      // Unknown names stay out of the metric labels (`-`): clients must not grow their cardinality.
      if (snap.workersFor(parsed.model) === null) {
        // In distributed mode a model's workers may simply not have registered yet: try again soon.
        if (ctx.config.nats !== null) throw noWorkerYet(parsed.model)
        throw modelNotFound(parsed.model, snap.modelNames)
      }
      model = parsed.model
    }
    inflight = ctx.metrics.forModel(model).inflight
    inflight.inc()
    const out = await proxyRequest(ctx, req, res, parsed, model, body, requestId, started, abort)
    worker = out.worker?.id ?? null
    attempts = out.attempts
    ttftMs = out.ttftMs
    if (out.error !== null && !res.headersSent) {
      status = out.error.status
      sendError(res, out.error, requestId)
    } else if (out.error !== null && !res.writableEnded && !res.destroyed) {
      // Keep-alive headers went out while queued, then no worker answered: end the SSE visibly.
      status = out.error.status
      endAfterKeepalive(res, out.error)
    } else status = out.status
  } catch (err) {
    if (abort.aborted) status = 499
    else {
      const e = asSwitchyardError(err)
      status = e.status
      if (status === 500) ctx.log.error({ rid: requestId, err }, 'unexpected error')
      if (res.headersSent) endAfterKeepalive(res, e)
      else sendError(res, e, requestId)
    }
  } finally {
    res.off('close', onClose)
    ctx.active.delete(abort)
    if (inflight !== null) inflight.dec()
    const ms = performance.now() - started
    // The caller does not await this function (gateway.ts handle): nothing may throw out of it.
    try {
      ctx.metrics.countRequest(model, endpoint, status, ms / 1000)
      ctx.accessLog({ rid: requestId, model, worker, status, ms, ttftMs, attempts })
    } catch (err) {
      ctx.log.error({ rid: requestId, err }, 'request accounting failed')
    }
    if (ctx.active.size === 0 && ctx.onIdle !== null) ctx.onIdle()
  }
}

/** GET /v1/models: the union of the registry's models, in OpenAI's list shape. */
export function handleModels (ctx: GatewayContext, res: HttpRes): void {
  const snap = ctx.registry.snapshot
  const created = Math.floor(Date.now() / 1000)
  const data = snap.modelNames.map(id => ({ id, object: 'model', created, owned_by: 'switchyard' }))
  const body = JSON.stringify({ object: 'list', data })
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
