import { Buffer } from 'node:buffer'
import type { HttpReq, HttpRes } from './http1/server.js'
import { parseWorkerSpec, type WorkerSpec } from '../config/serve.js'
import type { Worker } from '../registry/worker.js'
import { applyWindow, type WindowLimits } from '../admission/window.js'
import { invalidBody, MethodNotAllowedError, SwitchyardError } from '../shared/errors.js'
import { readBody } from './body.js'
import type { GatewayContext } from './context.js'
import { parseJsonBody } from './validate.js'

function sendJson (res: HttpRes, status: number, doc: unknown): void {
  const body = JSON.stringify(doc)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function workerNotFound (id: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_WORKER_NOT_FOUND', `no worker with id '${id}'`, { status: 404, type: 'not_found_error', apiCode: 'worker_not_found', param: 'id' })
}

/**
 * Adds a worker to the registry and starts its first contact (model discovery or a probe).
 * Shared by start-up (flags, config) and POST /workers. `wait` resolves after first contact.
 */
export function addWorker (ctx: GatewayContext, spec: WorkerSpec, reported: WindowLimits | null = null): { worker: Worker, ready: Promise<void> } {
  const worker = ctx.registry.add({
    id: spec.id,
    url: spec.url,
    models: spec.model === null ? [] : [spec.model],
    labels: spec.labels,
    apiKey: spec.api_key,
    staticModels: spec.model !== null,
    nativeUrl: spec.transport === 'http' ? null : spec.native_url ?? (spec.url.startsWith('swy://') ? spec.url : null),
    wantsNative: spec.transport === 'native' || (spec.transport !== 'http' && (spec.native_url !== null || spec.url.startsWith('swy://')))
  })
  windowSpecs.set(worker, { requests: spec.max_inflight_requests, tokens: spec.max_inflight_tokens })
  applyWorkerWindow(ctx, worker, reported)
  ctx.log.info({ worker: worker.id, url: worker.url, model: spec.model }, 'worker added')
  return { worker, ready: ctx.health.register(worker).then(() => attachKvEvents(ctx, worker, spec)) }
}

/** Each worker's own window from its config entry or POST /workers body. */
const windowSpecs = new WeakMap<Worker, WindowLimits>()

/** Sets the worker's dispatch window: its own entry, else the global flags, else `reported`. */
export function applyWorkerWindow (ctx: GatewayContext, worker: Worker, reported: WindowLimits | null): void {
  const c = ctx.config
  const global = { requests: c.max_inflight_requests > 0 ? c.max_inflight_requests : null, tokens: c.max_inflight_tokens > 0 ? c.max_inflight_tokens : null }
  applyWindow(worker, windowSpecs.get(worker) ?? { requests: null, tokens: null }, global, reported)
}

/** The mock engine's block size; vLLM's is 16 (give `block_size` for such workers). */
export const DEFAULT_BLOCK_SIZE = 64

/** Subscribes to the worker's KV events (in-process engine, or its ZMQ endpoint) once its models are known. */
function attachKvEvents (ctx: GatewayContext, worker: Worker, spec: WorkerSpec): void {
  if (worker.state === 'removed') return
  if (worker.models.length === 0) {
    // Discovery has not succeeded yet (the worker is pending and retried at each health probe):
    // attach once its models are known, or never if it is removed first.
    const off = ctx.registry.onChange(() => {
      if (worker.state === 'removed') off()
      else if (worker.models.length > 0) { off(); attachKvEvents(ctx, worker, spec) }
    })
    return
  }
  const engine = ctx.engines.get(worker.id)
  const blockSize = spec.block_size ?? DEFAULT_BLOCK_SIZE
  for (const model of worker.models) {
    if (engine !== undefined) ctx.plane.attachInProcess(model, worker.id, engine, blockSize)
    else if (spec.kv_events !== null) ctx.plane.attachZmq(model, worker.id, spec.kv_events, spec.kv_replay, blockSize)
  }
}

/**
 * Removes a worker from routing; its requests finish (`drained` resolves after the last one).
 * Shared by DELETE /workers/{id} and NATS discovery. Null when no worker has this id.
 */
export function removeWorker (ctx: GatewayContext, id: string): { worker: Worker, drained: Promise<void> } | null {
  const w = ctx.registry.get(id)
  const drained = ctx.registry.remove(id)
  if (drained === null || w === undefined) return null
  ctx.log.info({ worker: id, inflight: w.inflightRequests }, 'worker removed; draining')
  return { worker: w, drained }
}

/** GET /workers, GET|DELETE /workers/{id}, POST /workers. */
export async function handleWorkers (ctx: GatewayContext, req: HttpReq, res: HttpRes, id: string | null): Promise<void> {
  const method = req.method
  if (id === null && method === 'GET') {
    sendJson(res, 200, { object: 'list', data: ctx.registry.snapshot.workers.map(w => w.toJSON()) })
    return
  }
  if (id === null && method === 'POST') {
    const doc = parseJsonBody(await readBody(req, 1024 * 1024))
    const errors: string[] = []
    const spec = parseWorkerSpec(doc, 'body', errors)
    if (spec === null) throw invalidBody(errors.join('; '))
    const { worker, ready } = addWorker(ctx, spec)
    // Answer after first contact so the caller sees whether the worker is usable (bounded by the
    // discovery retries); the record says `pending` when discovery is still going on.
    await ready
    sendJson(res, 201, worker.toJSON())
    return
  }
  if (id !== null && method === 'GET') {
    const w = ctx.registry.get(id)
    if (w === undefined) throw workerNotFound(id)
    sendJson(res, 200, w.toJSON())
    return
  }
  if (id !== null && method === 'DELETE') {
    const removed = removeWorker(ctx, id)
    if (removed === null) throw workerNotFound(id)
    sendJson(res, 200, { id, deleted: true, draining_requests: removed.worker.inflightRequests })
    return
  }
  throw new MethodNotAllowedError(method ?? '?', req.url ?? '/workers', id === null ? ['GET', 'POST'] : ['GET', 'DELETE'])
}
