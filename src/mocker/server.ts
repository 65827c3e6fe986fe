/**
 * The engine's OpenAI-compatible HTTP server (node:http, keep-alive):
 *   POST /v1/chat/completions, POST /v1/completions (stream or not), GET /v1/models, GET /health,
 *   GET /metrics (vLLM names), POST /reset_prefix_cache (as vLLM's dev endpoint).
 * A client that disconnects cancels its request in the scheduler, freeing its KV blocks at once.
 */
import { Buffer } from 'node:buffer'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { notFound, SwitchyardError } from '../shared/errors.js'
import type { MockEngine } from './engine.js'
import { HttpGeneration } from './openai-response.js'
import { parseGenerateRequest, parseJsonBody } from './openai-request.js'
import type { ApiKind } from './openai-request.js'

const MAX_BODY_BYTES = 32 * 1024 * 1024

export interface MockServerOptions {
  /** Default 127.0.0.1. */
  host?: string
  /** Default 8000; 0 picks a free port. */
  port?: number
  /** The engine's native transport address, advertised in GET /v1/models (`native_url`) for `transport: native` gateways. */
  nativeUrl?: string | null
}

export interface MockServer {
  readonly url: string
  readonly port: number
  readonly server: Server
  /**
   * Stops accepting and closes idle connections; responses in flight may finish for `graceMs`
   * (default 1000), then remaining connections are cut (their requests are cancelled). Idempotent.
   */
  close (graceMs?: number): Promise<void>
}

class ServerState {
  readonly engine: MockEngine
  readonly idPrefix: string
  readonly created: number
  readonly nativeUrl: string | null
  requestCount: number

  constructor (engine: MockEngine, nativeUrl: string | null) {
    this.engine = engine
    this.nativeUrl = nativeUrl
    this.idPrefix = randomBytes(8).toString('hex')
    this.created = Math.floor(Date.now() / 1000)
    this.requestCount = 0
  }
}

/**
 * Serves `engine` over HTTP.
 *
 * @example
 * const engine = createMockEngine({ speedupRatio: 10 })
 * const server = await startMockServer(engine, { port: 0 })
 * // POST `${server.url}/v1/chat/completions`
 */
export async function startMockServer (engine: MockEngine, opts: MockServerOptions = {}): Promise<MockServer> {
  const state = new ServerState(engine, opts.nativeUrl ?? null)
  const server = createServer({ keepAlive: true }, (req, res) => { handle(state, req, res) })
  const host = opts.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 8000, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  let closing: Promise<void> | null = null
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    server,
    async close (graceMs = 1000) {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs)
        server.close(() => {
          clearTimeout(force)
          resolve()
        })
        server.closeIdleConnections()
      })
      await closing
    }
  }
}

function handle (state: ServerState, req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/'
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  const method = req.method ?? 'GET'
  switch (path) {
    case '/v1/chat/completions':
    case '/v1/completions':
      if (method !== 'POST') return methodNotAllowed(res, 'POST')
      return readBody(req, res, (body) => generate(state, path === '/v1/chat/completions' ? 'chat' : 'completion', body, res))
    case '/v1/models':
      if (method !== 'GET') return methodNotAllowed(res, 'GET')
      return sendJson(res, 200, modelsJson(state))
    case '/health':
      if (method !== 'GET') return methodNotAllowed(res, 'GET')
      res.writeHead(200, { 'content-length': 0 })
      res.end()
      return
    case '/metrics':
      if (method !== 'GET') return methodNotAllowed(res, 'GET')
      state.engine.metrics.text().then((text) => {
        res.writeHead(200, { 'content-type': state.engine.metrics.registry.contentType, 'content-length': Buffer.byteLength(text) })
        res.end(text)
      }, (err: unknown) => sendError(res, serverError(err)))
      return
    case '/reset_prefix_cache':
      if (method !== 'POST') return methodNotAllowed(res, 'POST')
      state.engine.resetPrefixCache()
      res.writeHead(200, { 'content-length': 0 })
      res.end()
      return
    default:
      req.resume()
      sendError(res, notFound(`no route for ${method} ${path}`))
  }
}

function generate (state: ServerState, kind: ApiKind, raw: Buffer, res: ServerResponse): void {
  const engine = state.engine
  let gen: HttpGeneration
  try {
    if (engine.scheduler.numWaiting >= engine.options.maxWaiting) {
      res.setHeader('retry-after', '1')
      throw new SwitchyardError('SWY_ERR_ENGINE_OVERLOADED', `the engine already has ${engine.scheduler.numWaiting} requests waiting (max_waiting ${engine.options.maxWaiting})`, { status: 429, type: 'rate_limit_error', apiCode: 'engine_overloaded' })
    }
    const body = parseJsonBody(raw)
    const parsed = parseGenerateRequest(kind, body, engine.model, engine.tokenizer)
    const id = (kind === 'chat' ? 'chatcmpl-' : 'cmpl-') + state.idPrefix + String(state.requestCount++)
    gen = new HttpGeneration(res, kind, parsed.stream, parsed.includeUsage, id, Math.floor(Date.now() / 1000), engine.model)
    gen.engineRequest = engine.submit(parsed.input, gen, gen)
  } catch (err) {
    sendError(res, err instanceof SwitchyardError ? err : serverError(err))
    return
  }
  res.on('close', () => {
    if (gen.done || gen.engineRequest === null) return
    gen.clientGone = true
    engine.cancel(gen.engineRequest)
  })
}

function readBody (req: IncomingMessage, res: ServerResponse, then: (body: Buffer) => void): void {
  const chunks: Buffer[] = []
  let size = 0
  let tooLarge = false
  req.on('data', (chunk: Buffer) => {
    if (tooLarge) return
    size += chunk.length
    if (size > MAX_BODY_BYTES) {
      tooLarge = true
      sendError(res, new SwitchyardError('SWY_ERR_BODY_TOO_LARGE', `the request body exceeds ${MAX_BODY_BYTES} bytes`, {
        status: 413, type: 'invalid_request_error', apiCode: 'body_too_large'
      }))
      return
    }
    chunks.push(chunk)
  })
  req.on('end', () => {
    if (!tooLarge) then(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
  })
  req.on('error', () => { res.destroy() })
}

function modelsJson (state: ServerState): unknown {
  const e = state.engine
  return {
    object: 'list',
    data: [{
      id: e.model,
      object: 'model',
      created: state.created,
      owned_by: 'switchyard-mocker',
      root: e.model,
      parent: null,
      max_model_len: e.options.maxModelLen,
      ...(state.nativeUrl === null ? {} : { native_url: state.nativeUrl }),
      // Not in vLLM's card: lets a Switchyard gateway size this worker's dispatch window.
      capacity: { max_num_seqs: e.options.maxNumSeqs, kv_cache_tokens: e.options.numGpuBlocks * e.options.blockSize }
    }]
  }
}

function methodNotAllowed (res: ServerResponse, allow: string): void {
  res.setHeader('allow', allow)
  sendError(res, new SwitchyardError('SWY_ERR_METHOD_NOT_ALLOWED', `use ${allow} for this route`, {
    status: 405, type: 'invalid_request_error', apiCode: 'method_not_allowed'
  }))
}

function serverError (err: unknown): SwitchyardError {
  return new SwitchyardError('SWY_ERR_INTERNAL', `mock engine error: ${(err as Error)?.message ?? String(err)}`, {
    status: 500, type: 'server_error', apiCode: 'internal_error', cause: err
  })
}

function sendError (res: ServerResponse, err: SwitchyardError): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  sendJson(res, err.status, err.toJSON())
}

function sendJson (res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
