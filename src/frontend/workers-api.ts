import type { IncomingMessage, ServerResponse } from 'node:http'
import { parseWorkerSpec, type WorkerSpec } from '../config/serve.js'
import type { Worker } from '../registry/worker.js'
import { invalidBody, MethodNotAllowedError, SwitchyardError } from '../shared/errors.js'
import { readBody } from './body.js'
import type { GatewayContext } from './context.js'
import { parseJsonBody } from './validate.js'

function sendJson (res: ServerResponse, status: number, doc: unknown): void {
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
export function addWorker (ctx: GatewayContext, spec: WorkerSpec): { worker: Worker, ready: Promise<void> } {
  const worker = ctx.registry.add({
    id: spec.id,
    url: spec.url,
    models: spec.model === null ? [] : [spec.model],
    labels: spec.labels,
    apiKey: spec.api_key,
    staticModels: spec.model !== null
  })
  ctx.log.info({ worker: worker.id, url: worker.url, model: spec.model }, 'worker added')
  return { worker, ready: ctx.health.register(worker).then(() => attachKvEvents(ctx, worker, spec)) }
}

/** The mock engine's block size; vLLM's is 16 (give `block_size` for such workers). */
export const DEFAULT_BLOCK_SIZE = 64

/** Subscribes to the worker's KV events (in-process engine, or its ZMQ endpoint) once its models are known. */
function attachKvEvents (ctx: GatewayContext, worker: Worker, spec: WorkerSpec): void {
  if (worker.state === 'removed') return
  const engine = ctx.engines.get(worker.id)
  const blockSize = spec.block_size ?? DEFAULT_BLOCK_SIZE
  for (const model of worker.models) {
    if (engine !== undefined) ctx.plane.attachInProcess(model, worker.id, engine, blockSize)
    else if (spec.kv_events !== null) ctx.plane.attachZmq(model, worker.id, spec.kv_events, spec.kv_replay, blockSize)
  }
}

/** GET /workers, GET|DELETE /workers/{id}, POST /workers. */
export async function handleWorkers (ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, id: string | null): Promise<void> {
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
    const w = ctx.registry.get(id)
    const drained = ctx.registry.remove(id)
    if (drained === null || w === undefined) throw workerNotFound(id)
    ctx.log.info({ worker: id, inflight: w.inflightRequests }, 'worker removed; draining')
    sendJson(res, 200, { id, deleted: true, draining_requests: w.inflightRequests })
    return
  }
  throw new MethodNotAllowedError(method ?? '?', req.url ?? '/workers', id === null ? ['GET', 'POST'] : ['GET', 'DELETE'])
}
