import { Buffer } from 'node:buffer'
import { Pool, type Dispatcher } from 'undici'
import type { Worker, WorkerClient } from '../registry/worker.js'
import { Http1Pool, type Http1Request } from './http1/pool.js'
import { fieldValue } from '../shared/http-fields.js'

export interface HttpTransportOptions {
  connectTimeout: number
  firstByteTimeout: number
  idleTimeout: number
  connections: number
}

/**
 * One worker's HTTP client: our own HTTP/1.1 pool for http:// workers (http1/pool.ts: about 65%
 * of undici's CPU per request on this path, under half its user-space instructions), undici for
 * https:// ones.
 */
export class HttpUpstream implements WorkerClient {
  private readonly fast: Http1Pool | null
  private readonly pool: Pool | null
  /** Path prefix of the worker's URL (empty, or e.g. `/engine-a`), prepended to request paths. */
  readonly basePath: string
  private readonly opts: HttpTransportOptions

  constructor (url: string, opts: HttpTransportOptions) {
    const u = new URL(url)
    this.basePath = u.pathname === '/' ? '' : u.pathname
    this.opts = opts
    if (u.protocol === 'http:') {
      this.fast = new Http1Pool(u.origin, { connections: opts.connections, connectTimeout: opts.connectTimeout, keepAliveTimeout: 30_000 })
      this.pool = null
    } else {
      this.fast = null
      this.pool = new Pool(u.origin, {
        connections: opts.connections,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: { timeout: opts.connectTimeout }
      })
    }
  }

  /**
   * Sends one POST; the handler gets the response head and each body chunk as it arrives (no
   * stream in between). Connect, first-byte (headers) and idle (between chunks) deadlines apply.
   * `headers`: the header lines, `name: value\r\n` each, without host and content-length.
   * `transientChunks`: the handler copies what it keeps of a body chunk (Http1Request.transientChunks).
   * `forwardLines`: the handler takes the head's lines to forward from its controller when it has
   * them (Http1Request.forwardLines; only the http:// pool has them, undici gives headers as usual).
   */
  dispatch (path: string, headers: string, body: Buffer | string, handler: Dispatcher.DispatchHandler, transientChunks = false, forwardLines = false): void {
    const req: Http1Request = {
      method: 'POST',
      path: this.basePath + path,
      headers,
      body,
      headersTimeout: this.opts.firstByteTimeout,
      bodyTimeout: this.opts.idleTimeout,
      transientChunks,
      forwardLines
    }
    if (this.fast !== null) this.fast.dispatch(req, handler)
    else this.pool!.dispatch({ method: req.method, path: req.path, headers: headerPairs(headers), body, headersTimeout: req.headersTimeout, bodyTimeout: req.bodyTimeout }, handler)
  }

  close (): Promise<void> {
    return this.fast !== null ? this.fast.close() : this.pool!.close()
  }
}

/** Header lines (`name: value\r\n` each) as undici takes them: [name, value, ...], values without OWS. */
export function headerPairs (block: string): string[] {
  const out: string[] = []
  let at = 0
  while (at < block.length) {
    const eol = block.indexOf('\r\n', at)
    const colon = block.indexOf(':', at)
    out.push(block.slice(at, colon), fieldValue(block, colon + 1, eol))
    at = eol + 2
  }
  return out
}

/** The worker's client, created on first use (the worker keeps it until it drains). */
export function httpUpstreamFor (worker: Worker, opts: HttpTransportOptions): HttpUpstream {
  const c = worker.client
  if (c !== null) return c as HttpUpstream
  const up = new HttpUpstream(worker.url, opts)
  worker.client = up
  return up
}

/** The code of the error an HTTP attempt is aborted with when the request's own budget (request_timeout) runs out. */
export const REQUEST_DEADLINE_CODE = 'SWY_REQUEST_DEADLINE'

const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', REQUEST_DEADLINE_CODE])

/** Network-level failure classes the proxy tells apart. */
export function classifyUpstreamError (err: unknown): 'timeout' | 'aborted' | 'network' {
  const code = (err as { code?: string } | null)?.code
  if (code !== undefined && TIMEOUT_CODES.has(code)) return 'timeout'
  if ((err as Error | null)?.name === 'AbortError' || code === 'UND_ERR_ABORTED') return 'aborted'
  return 'network'
}
