/**
 * A lean HTTP/1.1 client for one hot path: the gateway's proxied request to an http:// worker.
 *
 * Why: undici's Pool cost about 70 µs of CPU per proxied request in the proxy benchmark, against
 * about 25 µs for a client written on bare `net` sockets (bench/lib/raw-proxy.ts measures that
 * floor). Most of the difference is generality this path never uses: the request/handler wrapper
 * layers, body kinds (streams, iterables, FormData), interceptors, the WASM parser's per-call
 * overhead, per-request timer bookkeeping. Measured on the client alone (20k POSTs at concurrency
 * 64 to a local node:http server): undici ~85k user-space instructions and 83-92 µs CPU per
 * request, Http1Pool ~31k and 52-59 µs, a bare socket loop that only finds each answer's end ~19k
 * and 51-56 µs (the rest is the kernel and node's socket streams, which every client pays).
 * Http1Pool keeps only what `HttpUpstream.dispatch` needs
 * and speaks undici 7's `Dispatcher.DispatchHandler` API (onRequestStart / onResponseStart /
 * onResponseData / onResponseEnd / onResponseError with a controller that pauses, resumes and
 * aborts), so `Exchange` in src/frontend/proxy.ts runs on it unchanged, and fails with undici's
 * error classes and codes so `classifyUpstreamError` keeps working.
 *
 * What it does: keep-alive sockets (noDelay) up to `connections`, a FIFO queue beyond that; the
 * request (head + Buffer or string body, always with host and content-length) in one write;
 * responses framed by content-length, chunked (with trailers) or the socket's end; 1xx interim
 * heads skipped; `connection: close` and `keep-alive: timeout=N` honoured (an idle socket is not
 * reused past N s minus 1 s, as undici does); backpressure by pausing the socket; connect, headers
 * and body deadlines checked by one coarse sweep timer per pool (no setTimeout per request); a
 * request that a reused keep-alive socket loses before any byte of the answer (the server closed
 * the idle socket) is retried once on a fresh connection.
 *
 * What it does not do: no pipelining, no HTTP/2, no TLS (the gateway keeps undici for https://
 * workers), no request bodies other than Buffer / string / none, no upgrade or CONNECT, no
 * redirects, no header validation of the caller's headers (they come from node's parser already),
 * no `controller.rawHeaders`. The response parser is strict like llhttp (see response-parser.ts).
 *
 * Where it differs from undici on purpose: onRequestStart runs inside dispatch() (undici calls it
 * once a socket is ready), so a handler can abort a request still queued or connecting; 1xx
 * interim heads are skipped (undici fails on an unasked 100); the stale keep-alive retry applies
 * to any method (undici retries none of a POST). Deadlines resolve to the sweep period: a quarter
 * of the shortest timeout seen, 10-250 ms, so they fire up to about two periods late.
 */
import { connect, type Socket } from 'node:net'
import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { errors, socketError } from './errors.js'
import { COMPLETE, FAILED, ResponseParser, STOPPED, type ResponseSink } from './response-parser.js'
import { writeString } from '../../shared/handle-write.js'
import { BufferViews } from '../../shared/buffer-view.js'

export interface Http1PoolOptions {
  /** Most sockets open at once. */
  connections: number
  /** TCP connect deadline, ms (0 = none). */
  connectTimeout: number
  /** Longest a socket stays idle for reuse, ms. Default 30000. A server's keep-alive hint can only shorten it. */
  keepAliveTimeout?: number
}

export interface Http1Request {
  method: string
  path: string
  /**
   * Flat [name, value, name, value, ...], or the header lines already serialized (`name: value\r\n`
   * each, written as they are); hop-by-hop headers, host and content-length already removed.
   */
  headers: string[] | string
  body: Buffer | string | null
  /** ms from the request's write until the response head is complete; 0 = none. */
  headersTimeout: number
  /** Longest gap between body chunks, ms; 0 = none. */
  bodyTimeout: number
  /**
   * The handler is done with each body chunk when onResponseData returns (it copies what it
   * keeps): chunks are then views of the socket's read buffer, which the next read overwrites.
   * Otherwise each chunk is a copy of its own.
   */
  transientChunks?: boolean
  /**
   * The handler forwards the response's head to a client: the job's `forwardLines` carries the
   * field lines to forward (ResponseParser.forwardLines) and onResponseStart gets an empty
   * headers object (none is built).
   */
  forwardLines?: boolean
}

export interface Http1PoolStats {
  /** Sockets open or opening. */
  connected: number
  /** Sockets carrying a request (or connecting for one). */
  busy: number
  /** Sockets kept alive with nothing to do. */
  idle: number
  /** Requests waiting for a socket. */
  queued: number
}

/** undici's keepAliveTimeoutThreshold: a server's keep-alive hint minus this is when we stop reusing. */
const KEEP_ALIVE_THRESHOLD = 1000
const MAX_SWEEP_MS = 250
/** Where every pool socket reads (see Conn): one read at a time is parsed, synchronously. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)
/** Each read is a view of READ_BUFFER from its start (and so are the body pieces the parser cuts from it). */
const READ_VIEWS = new BufferViews(READ_BUFFER)
/** A Buffer body up to this size goes out inside the head's string write; a larger one is written as is (no copy). */
const STRING_BODY_MAX = 16 * 1024

const J_QUEUED = 0
const J_CONNECTING = 1
const J_RUNNING = 2
const J_DONE = 3

const C_CONNECTING = 0
const C_BUSY = 1
const C_IDLE = 2
const C_DEAD = 3

/** Methods undici sends no content-length for when there is no body (RFC 9110 8.6). */
function lengthless (method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'TRACE' || method === 'CONNECT'
}

/** A handler's onResponseEnd / onResponseError threw: nothing is left to fail, so it is reported, not thrown into the socket. */
function handlerThrew (err: unknown): void {
  process.emitWarning(err instanceof Error ? err : new Error(String(err)), { type: 'Http1PoolHandlerError' })
}

/** One dispatch; it is also the handler's controller. */
class Job implements Dispatcher.DispatchController {
  readonly pool: Http1Pool
  readonly req: Http1Request
  readonly handler: Dispatcher.DispatchHandler
  state = J_QUEUED
  conn: Conn | null = null
  /** Already retried once after a stale keep-alive socket. */
  retried = false
  private _aborted = false
  private _paused = false
  private _reason: Error | null = null
  rawHeaders = null
  rawTrailers = null
  /** With `forwardLines` requests, set before onResponseStart: the head's lines to forward, and whether a Content-Length is among them. */
  forwardLines: Buffer | null = null
  forwardHasLength = false

  constructor (pool: Http1Pool, req: Http1Request, handler: Dispatcher.DispatchHandler) {
    this.pool = pool
    this.req = req
    this.handler = handler
  }

  get aborted (): boolean { return this._aborted }
  get paused (): boolean { return this._paused }
  get reason (): Error | null { return this._reason }

  abort (reason: Error): void {
    if (this._aborted) return
    this._aborted = true
    this._reason = reason
    if (this.state !== J_DONE) this.pool.abortJob(this, reason)
  }

  pause (): void {
    if (this._paused) return
    this._paused = true
    // In the body, stop reading now; before the head, the head is still delivered (as undici
    // does) and the parse stops after onResponseStart.
    const c = this.conn
    if (c !== null && this.state === J_RUNNING && c.inBody) c.socket.pause()
  }

  resume (): void {
    if (!this._paused) return
    this._paused = false
    const c = this.conn
    if (c !== null && this.state === J_RUNNING) c.resumeJob()
  }
}

/** One socket, its parser, and the request it carries. */
class Conn implements ResponseSink {
  readonly pool: Http1Pool
  readonly socket: Socket
  readonly parser: ResponseParser
  state = C_CONNECTING
  job: Job | null = null
  /** Requests completed on this socket. */
  uses = 0
  /** Whether the current request was written to a socket that had served one before. */
  reused = false
  /** Any byte of the current response arrived. */
  gotBytes = false
  /** Body bytes arrived since the last sweep (the body deadline restarts from the sweep). */
  activity = false
  /** Connect / headers / body deadline (performance.now() ms), 0 = none. */
  deadline = 0
  /** In the body phase (the head was delivered). */
  inBody = false
  /** The socket ended while a paused response still had bytes held. */
  eof = false
  /** Inside parser.execute(): resume() lets the running loop go on instead of re-entering. */
  parsing = false
  idleUntil = 0
  refd = true

  constructor (pool: Http1Pool, job: Job | null) {
    this.pool = pool
    this.job = job
    this.parser = new ResponseParser(this)
    // Reads land in one buffer shared by every socket (`onread`): no Readable push, 'data' event
    // or fresh ArrayBuffer per read, which cost about 5% of a proxied request's user-space
    // instructions. Every read is parsed before the next one can land; what outlives it is copied
    // (the parser's held and split bytes, body chunks for handlers that keep them).
    const s = connect({
      host: pool.hostname,
      port: pool.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
      onread: { buffer: READ_BUFFER, callback: (n: number): boolean => { this.onData(READ_VIEWS.view(0, n)); return true } }
    })
    this.socket = s
    if (pool.connectTimeout > 0) this.deadline = performance.now() + pool.connectTimeout
    s.on('connect', () => { this.onConnect() })
    s.on('end', () => { this.onGone(null, true) })
    s.on('error', (err: Error) => { this.onGone(err, false) })
    s.on('close', () => { this.onGone(null, false) })
  }

  private onConnect (): void {
    if (this.state !== C_CONNECTING) return
    this.deadline = 0
    this.idleUntil = this.pool.now + this.pool.keepAliveTimeout
    const job = this.job
    if (job !== null) this.start(job)
    else this.pool.release(this)
  }

  /** Writes `job`'s request. */
  start (job: Job): void {
    this.job = job
    job.conn = this
    job.state = J_RUNNING
    this.state = C_BUSY
    this.reused = this.uses > 0
    this.gotBytes = false
    this.activity = false
    this.inBody = false
    const r = job.req
    this.parser.reset(r.method === 'HEAD', r.forwardLines === true)
    // It also refreshes the pool's coarse clock.
    const now = performance.now()
    this.pool.now = now
    this.deadline = r.headersTimeout > 0 ? now + r.headersTimeout : 0
    const s = this.socket
    if (!this.refd) { s.ref(); this.refd = true }
    const pool = this.pool
    pool.armSweep()
    try {
      this.write(r)
    } catch (err) {
      // A body of the wrong kind, say: the request fails, not the caller.
      this.fail(job, err as Error)
    }
  }

  private write (r: Http1Request): void {
    const s = this.socket
    let head = r.method + ' ' + r.path + ' HTTP/1.1\r\nhost: ' + this.pool.host + '\r\n'
    const h = r.headers
    if (typeof h === 'string') head += h
    else for (let i = 0; i + 1 < h.length; i += 2) head += h[i]! + ': ' + h[i + 1]! + '\r\n'
    const body = r.body
    // String writes are the cheapest (node writes small strings straight to the socket without a
    // Buffer in between): ~15% less CPU per write than head+body copied into one Buffer, ~25%
    // less than cork/write/write/uncork, measured on loopback. The head is latin1 (as node
    // decoded the client's headers); a Buffer body is carried byte for byte as latin1 too. They
    // go to the socket's handle directly (src/shared/handle-write.ts): node's Writable was ~6% of
    // a proxied JSON request's user-space samples.
    if (body === null) {
      writeString(s, lengthless(r.method) ? head + '\r\n' : head + 'content-length: 0\r\n\r\n', 'latin1')
    } else if (typeof body === 'string') {
      const n = Buffer.byteLength(body)
      head += 'content-length: ' + n + '\r\n\r\n'
      if (Buffer.byteLength(head) === head.length) {
        writeString(s, head + body, 'utf8') // an ASCII head reads the same in utf8
      } else {
        const out = Buffer.allocUnsafe(head.length + n)
        out.write(head, 0, 'latin1')
        out.write(body, head.length, 'utf8')
        s.write(out)
      }
    } else {
      head += 'content-length: ' + body.length + '\r\n\r\n'
      if (body.length <= STRING_BODY_MAX) {
        writeString(s, head + body.toString('latin1'), 'latin1')
      } else {
        s.cork()
        s.write(head, 'latin1')
        s.write(body)
        s.uncork()
      }
    }
  }

  private onData (b: Buffer): void {
    const job = this.job
    if (job === null || this.state !== C_BUSY) {
      // Bytes nobody asked for (on an idle socket): the stream is out of step, drop it.
      this.destroy()
      return
    }
    this.gotBytes = true
    this.activity = true
    const p = this.parser
    if (p.held !== null) {
      // Paused with bytes held, yet more came (a chunk already in flight): keep them in order.
      p.held = p.held.length === 0 ? Buffer.from(b) : Buffer.concat([p.held, b])
      this.socket.pause()
      return
    }
    this.run(job, b, 0, READ_VIEWS)
  }

  /** Parses from `b[off]` for `job` and acts on how the parse stopped; `views`: b is a read, views.base from its start. */
  private run (job: Job, b: Buffer, off: number, views: BufferViews | null = null): void {
    const p = this.parser
    p.held = null
    this.parsing = true
    const r = p.execute(b, off, views)
    this.parsing = false
    if (this.job !== job) return // aborted (or failed) inside a callback
    if (r === COMPLETE) {
      this.complete(job)
    } else if (r === FAILED) {
      this.fail(job, p.error!)
    } else if (r === STOPPED) {
      if (job.paused) this.socket.pause()
      else this.run(job, p.held!, 0) // paused and resumed inside the same callback
    } else if (this.eof) {
      this.ended(job)
    }
  }

  /** The handler resumed. */
  resumeJob (): void {
    this.activity = true
    if (this.parsing) { this.socket.resume(); return }
    const job = this.job!
    const p = this.parser
    if (p.held !== null) {
      this.run(job, p.held, 0)
      if (this.job !== job || job.paused) return
    } else if (this.eof) {
      this.ended(job)
      return
    }
    if (!this.eof) this.socket.resume()
  }

  onHead (statusCode: number, statusMessage: string, headers: IncomingHttpHeaders): boolean {
    const job = this.job!
    this.inBody = true
    this.activity = true
    // The next sweep starts the body deadline (activity), no clock read here.
    this.deadline = 0
    job.forwardLines = this.parser.forwardLines
    job.forwardHasLength = this.parser.hasLength
    try {
      job.handler.onResponseStart?.(job, statusCode, headers, statusMessage)
    } catch (err) {
      job.abort(err as Error)
    }
    return this.job === job && !job.paused
  }

  onBody (chunk: Buffer): boolean {
    const job = this.job!
    try {
      job.handler.onResponseData?.(job, job.req.transientChunks === true ? chunk : Buffer.from(chunk))
    } catch (err) {
      job.abort(err as Error)
    }
    return this.job === job && !job.paused
  }

  private complete (job: Job): void {
    const p = this.parser
    const trailers = p.trailers ?? {}
    this.job = null
    job.conn = null
    job.state = J_DONE
    this.uses++
    const pool = this.pool
    let keepFor = -1
    if (p.keepAlive && !p.leftover && this.socket.writableLength === 0 && !this.eof) {
      keepFor = p.keepAliveMs >= 0 ? Math.min(p.keepAliveMs - KEEP_ALIVE_THRESHOLD, pool.keepAliveTimeout) : pool.keepAliveTimeout
    }
    if (keepFor > 0) {
      this.idleUntil = pool.now + keepFor
      // Ended while paused (the handler resumed to see the end): read again, for the next
      // request and to see the server close an idle socket.
      if (this.socket.isPaused()) this.socket.resume()
      pool.release(this)
    } else {
      this.destroy()
    }
    pool.settled(job)
    try {
      job.handler.onResponseEnd?.(job, trailers)
    } catch (err) {
      handlerThrew(err)
    }
  }

  /** Ends `job` with `err`; the socket is not reused. */
  fail (job: Job, err: Error): void {
    this.job = null
    job.conn = null
    job.state = J_DONE
    this.destroy()
    this.pool.settled(job)
    callError(job, err)
  }

  /** The socket ended (clean EOF) during `job`'s response and no held bytes remain. */
  private ended (job: Job): void {
    if (this.parser.finish()) this.complete(job)
    else this.fail(job, socketError('other side closed', this.socket))
  }

  /** 'end' (eof), 'error' (err) or 'close'. */
  private onGone (err: Error | null, eof: boolean): void {
    const state = this.state
    if (state === C_DEAD || this.eof) return
    const job = this.job
    if (job === null || state === C_IDLE) {
      this.destroy()
      return
    }
    const p = this.parser
    if (state === C_CONNECTING) {
      this.fail(job, err ?? socketError('closed', this.socket))
      return
    }
    // A close-delimited body ends with the socket (ECONNRESET included, as undici does).
    if (p.closeDelimited && (eof || err === null || (err as NodeJS.ErrnoException).code === 'ECONNRESET')) {
      if (p.held !== null) {
        // Paused with bytes still to deliver: finish once the handler resumes.
        this.eof = true
        return
      }
      this.ended(job)
      return
    }
    if (eof && p.held !== null) {
      this.eof = true
      return
    }
    if (!this.gotBytes && this.reused && !job.retried && !job.aborted && (err === null || isStale(err))) {
      // The server closed this keep-alive socket while the request was on its way: it never
      // reached the application. Once, on a new connection.
      this.job = null
      job.conn = null
      job.retried = true
      this.destroy(false)
      this.pool.retry(job)
      return
    }
    this.fail(job, err ?? socketError(eof ? 'other side closed' : 'closed', this.socket))
  }

  /** Sweep: expires a deadline. */
  expire (now: number): void {
    const job = this.job
    if (this.state === C_CONNECTING) {
      if (this.deadline !== 0 && now >= this.deadline) {
        const pool = this.pool
        if (job === null) this.destroy()
        else this.fail(job, new errors.ConnectTimeoutError(`Connect Timeout Error (attempted address: ${pool.hostname}:${pool.port}, timeout: ${pool.connectTimeout}ms)`))
      }
      return
    }
    if (job === null) return
    if (this.inBody) {
      const t = job.req.bodyTimeout
      if (t <= 0 || job.paused) return
      if (this.activity || this.deadline === 0) {
        this.activity = false
        this.deadline = now + t
      } else if (now >= this.deadline) {
        this.fail(job, new errors.BodyTimeoutError())
      }
    } else if (this.deadline !== 0 && now >= this.deadline) {
      this.fail(job, new errors.HeadersTimeoutError())
    }
  }

  /** Closes the socket for good and takes it out of the pool. */
  destroy (pump = true): void {
    if (this.state === C_DEAD) return
    const wasIdle = this.state === C_IDLE
    this.state = C_DEAD
    this.socket.destroy()
    this.pool.removeConn(this, wasIdle, pump)
  }

  /** Idle now. */
  idle (): void {
    this.state = C_IDLE
    this.deadline = 0
  }

  unref (): void {
    if (this.refd) { this.socket.unref(); this.refd = false }
  }
}

function isStale (err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'ECONNRESET' || code === 'EPIPE'
}

function callError (job: Job, err: Error): void {
  try {
    job.handler.onResponseError?.(job, err)
  } catch (e) {
    handlerThrew(e)
  }
}

export class Http1Pool {
  /** @internal */ readonly hostname: string
  /** @internal */ readonly port: number
  /** @internal The host header value. */
  readonly host: string
  /** @internal */ readonly connectTimeout: number
  /** @internal */ readonly keepAliveTimeout: number
  /**
   * @internal A coarse clock (performance.now() ms): set by every request's write and every sweep,
   * so it lags by at most a sweep period (plus event-loop lag); idle deadlines are set from it.
   */
  now = performance.now()
  private readonly connections: number
  /** Every socket not yet destroyed. */
  private readonly conns = new Set<Conn>()
  /** Idle sockets, most recently used last (reused first: the least likely to be stale). */
  private readonly idleConns: Conn[] = []
  private queue: Array<Job | null> = []
  private queueHead = 0
  private queued = 0
  private sweepTimer: NodeJS.Timeout | null = null
  private sweepMs: number
  private closed = false
  private destroyed = false
  private closeWaiters: Array<() => void> = []
  private readonly boundSweep: () => void

  constructor (origin: string, opts: Http1PoolOptions) {
    const u = new URL(origin)
    if (u.protocol !== 'http:') throw new errors.InvalidArgumentError(`Http1Pool speaks http:// only, not ${u.protocol}`)
    this.hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname
    this.port = u.port === '' ? 80 : Number(u.port)
    this.host = u.host
    if (!(opts.connections >= 1)) throw new errors.InvalidArgumentError('connections must be at least 1')
    this.connections = Math.floor(opts.connections)
    this.connectTimeout = opts.connectTimeout > 0 ? opts.connectTimeout : 0
    this.keepAliveTimeout = opts.keepAliveTimeout ?? 30_000
    this.sweepMs = MAX_SWEEP_MS
    this.tighten(this.connectTimeout)
    this.boundSweep = () => { this.sweep() }
  }

  dispatch (req: Http1Request, handler: Dispatcher.DispatchHandler): void {
    const job = new Job(this, req, handler)
    try {
      handler.onRequestStart?.(job, undefined)
    } catch (err) {
      job.abort(err as Error)
    }
    if (job.state === J_DONE) return
    if (this.destroyed || this.closed) {
      job.state = J_DONE
      callError(job, this.destroyed ? new errors.ClientDestroyedError() : new errors.ClientClosedError())
      return
    }
    if (req.headersTimeout > 0 && req.headersTimeout < this.sweepMs * 4) this.tighten(req.headersTimeout)
    if (req.bodyTimeout > 0 && req.bodyTimeout < this.sweepMs * 4) this.tighten(req.bodyTimeout)
    if (this.queued === 0 && this.assign(job)) return
    this.queue.push(job)
    this.queued++
    this.armSweep()
  }

  /** Waits for queued and in-flight requests, then closes every socket. New dispatches fail with UND_ERR_CLOSED. */
  close (): Promise<void> {
    this.closed = true
    return new Promise(resolve => {
      this.closeWaiters.push(resolve)
      this.maybeClosed()
    })
  }

  /** Fails every queued and in-flight request with `err` (default UND_ERR_DESTROYED) and closes every socket. */
  destroy (err?: Error): Promise<void> {
    const e = err ?? new errors.ClientDestroyedError()
    this.destroyed = true
    this.closed = true
    const q = this.queue
    const h = this.queueHead
    this.queue = []
    this.queueHead = 0
    this.queued = 0
    for (let i = h; i < q.length; i++) {
      const job = q[i]
      if (job == null) continue
      job.state = J_DONE
      callError(job, e)
    }
    for (const c of Array.from(this.conns)) {
      const job = c.job
      if (job !== null) c.fail(job, e)
      else c.destroy(false)
    }
    this.stopSweep()
    this.maybeClosed()
    return Promise.resolve()
  }

  stats (): Http1PoolStats {
    return { connected: this.conns.size, busy: this.conns.size - this.idleConns.length, idle: this.idleConns.length, queued: this.queued }
  }

  /** Puts `job` on an idle socket or a new one; false when every socket is taken. */
  private assign (job: Job): boolean {
    const idle = this.idleConns
    if (idle.length > 0) {
      const now = performance.now()
      while (idle.length > 0) {
        const c = idle.pop()!
        if (c.idleUntil > now) {
          c.start(job)
          return true
        }
        c.destroy(false)
      }
    }
    if (this.conns.size < this.connections) {
      this.open(job)
      return true
    }
    return false
  }

  private open (job: Job): void {
    job.state = J_CONNECTING
    const c = new Conn(this, job)
    job.conn = c
    this.conns.add(c)
    this.armSweep()
  }

  /** @internal A socket is free: the next queued request takes it, else it idles (or closes, when closing). */
  release (c: Conn): void {
    const next = this.shift()
    if (next !== null) {
      c.start(next)
      return
    }
    if (this.closed) {
      c.destroy(false)
      this.maybeClosed()
      return
    }
    c.idle()
    this.idleConns.push(c)
  }

  /** @internal A request ended (for close()). */
  settled (_job: Job): void {
    if (this.closed) this.maybeClosed()
  }

  /** @internal A stale keep-alive socket lost `job` before any answer: again, on a new socket. */
  retry (job: Job): void {
    job.state = J_QUEUED
    if (this.destroyed) {
      job.state = J_DONE
      callError(job, new errors.ClientDestroyedError())
      return
    }
    this.open(job)
  }

  /** @internal */
  removeConn (c: Conn, wasIdle: boolean, pump: boolean): void {
    if (!this.conns.delete(c)) return
    if (wasIdle) {
      const i = this.idleConns.indexOf(c)
      if (i >= 0) this.idleConns.splice(i, 1)
    }
    if (pump) this.pump()
  }

  /** Starts queued requests while sockets are available. */
  private pump (): void {
    while (this.queued > 0 && !this.destroyed) {
      const job = this.peek()
      if (job === null) break
      if (!this.assign(job)) break
      this.shift()
    }
    if (this.closed) this.maybeClosed()
  }

  /** @internal The handler aborted `job`. */
  abortJob (job: Job, reason: Error): void {
    const state = job.state
    if (state === J_QUEUED) {
      const i = this.queue.indexOf(job, this.queueHead)
      if (i >= 0) { this.queue[i] = null; this.queued-- }
      job.state = J_DONE
      if (this.closed) this.maybeClosed()
      callError(job, reason)
    } else if (state === J_CONNECTING) {
      // The socket being opened for it serves the next request (or idles) once connected.
      const c = job.conn!
      c.job = null
      job.conn = null
      job.state = J_DONE
      const next = this.shift()
      if (next !== null) {
        next.state = J_CONNECTING
        next.conn = c
        c.job = next
      }
      if (this.closed) this.maybeClosed()
      callError(job, reason)
    } else if (state === J_RUNNING) {
      job.conn!.fail(job, reason)
    }
  }

  private peek (): Job | null {
    const q = this.queue
    while (this.queueHead < q.length) {
      const j = q[this.queueHead]
      if (j != null) return j
      this.queueHead++
    }
    return null
  }

  private shift (): Job | null {
    if (this.queued === 0) return null
    const j = this.peek()
    if (j === null) return null
    const q = this.queue
    q[this.queueHead++] = null
    this.queued--
    if (this.queueHead === q.length) {
      q.length = 0
      this.queueHead = 0
    } else if (this.queueHead >= 1024 && this.queueHead * 2 >= q.length) {
      this.queue = q.slice(this.queueHead)
      this.queueHead = 0
    }
    return j
  }

  private maybeClosed (): void {
    if (!this.closed || this.closeWaiters.length === 0) return
    if (this.queued > 0) return
    for (const c of this.conns) if (c.job !== null) return
    for (const c of Array.from(this.conns)) c.destroy(false)
    this.stopSweep()
    const w = this.closeWaiters
    this.closeWaiters = []
    for (const f of w) f()
  }

  /** Sweep resolution: a quarter of the shortest deadline seen, 10..250 ms. */
  private tighten (ms: number): void {
    if (ms <= 0) return
    const next = Math.max(10, Math.min(MAX_SWEEP_MS, Math.floor(ms / 4)))
    if (next >= this.sweepMs) return
    this.sweepMs = next
    if (this.sweepTimer !== null) {
      this.stopSweep()
      this.armSweep()
    }
  }

  /** @internal */
  armSweep (): void {
    if (this.sweepTimer !== null) return
    this.now = performance.now()
    this.sweepTimer = setInterval(this.boundSweep, this.sweepMs)
    this.sweepTimer.unref()
  }

  private stopSweep (): void {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer)
    this.sweepTimer = null
  }

  private sweep (): void {
    const now = performance.now()
    this.now = now
    for (const c of this.conns) {
      if (c.state === C_IDLE) {
        if (now >= c.idleUntil) c.destroy(false)
        else c.unref()
      } else {
        c.expire(now)
      }
    }
    if (this.conns.size === 0 && this.queued === 0) this.stopSweep()
  }
}
