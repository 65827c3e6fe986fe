/**
 * The gateway's HTTP/1.1 server: a hand-written fast path on `net`, with node:http behind it.
 *
 * Why: in the proxy benchmark (docs/BENCHMARKS.md `proxy`) node:http's server side cost about
 * 70 µs of CPU per proxied request on our machine, against about 25 µs for reading and writing the
 * same bytes on the socket directly: IncomingMessage and ServerResponse are streams, with their
 * per-request objects, listeners and ticks. The gateway reads every body whole and writes answers
 * it mostly has whole, so it needs little of that machinery.
 *
 * What it serves itself: HTTP/1.1 requests with a known method, an origin-form target, a Host
 * header and a body framed by one plain Content-Length (what the OpenAI clients, curl for small
 * bodies, wrk and load generators send), keep-alive, and pipelined requests in order. Anything
 * else — chunked or `Expect: 100-continue` bodies, HTTP/1.0, upgrades, malformed or oversized
 * heads — hands the connection, bytes already read included, to a node:http server for the rest
 * of its life (`fallback`), which answers as it always has. Both call the same handler with
 * objects of the same shape (HttpReq, HttpRes).
 *
 * Deadlines (keep-alive idle, a head or body that stops arriving) sit on one coarse timer over all
 * connections, not a timer per socket.
 */
import { Buffer } from 'node:buffer'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import type { Server as HttpServer } from 'node:http'
import type { Duplex } from 'node:stream'
import { Http1Request, parseRequestHead } from './request-head.js'
import { Http1Response, type ResponseOwner } from './response.js'
import { TickWrites } from './tick-writes.js'
import type { HttpReq, HttpRes } from './types.js'
import { firstValue } from '../../shared/http-fields.js'
import { BufferViews } from '../../shared/buffer-view.js'

export type { HttpReq, HttpRes } from './types.js'
export { Http1Request } from './request-head.js'

/**
 * One of the headers the hot path reads, without building the fast request's header object
 * (taken out during its parse); from node's object for the connections node:http serves.
 */
export function hotHeader (req: HttpReq, name: 'x-request-id' | 'x-priority' | 'authorization'): string | undefined {
  return req instanceof Http1Request ? req.get(name) : firstValue(req.headers[name])
}
export { Http1Response } from './response.js'
export { corkForTick } from './tick-writes.js'

export interface Http1ServerOptions {
  /** Bodies declared larger are not read: the handler sees an empty body and answers 413 (max_body_size). */
  bodyLimit: number
  /** Idle keep-alive connections close after this many ms. */
  keepAliveTimeout: number
  /** A started head or body must finish arriving within this many ms. */
  headersTimeout: number
}

/** node:http's default limit on a request head; larger heads go to node:http, which answers 431. */
const MAX_HEAD = 16 * 1024
const CRLFCRLF = Buffer.from('\r\n\r\n')
/** Bytes of a read decoded to look for the end of the head (heads are mostly well under 1 KiB). */
const HEAD_WINDOW = 4096
/** Bytes a busy connection buffers (a pipelined request) before it stops reading. */
const MAX_PENDING = 1024 * 1024

const enum State { Head, Body, Busy, Gone }

/**
 * Where the fast connections' reads land: one buffer for all of them, as node's `onread` option
 * gives a client socket (the upstream pool uses it). A read is consumed before the next one can
 * land, so what a connection keeps past its callback (a partial head, a body, pipelined bytes) is
 * copied out (`Connection.keep`).
 *
 * Why: node's default read path allocates a buffer per read and pushes it through the socket's
 * Readable ('data' event, maybeReadMore): ~5% of a proxied JSON request's user-space
 * instructions. net.Server takes no `onread`, so an accepted socket gets the same hooks node sets
 * for one: its kBuffer / kBufferCb slots (found by their symbols' descriptions) and the handle's
 * useUserBuffer. Where this node has no such slots, connections read through 'data' as before.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)
/** Each read is a view of READ_BUFFER from its start; what is kept is copied out of it. */
const READ_VIEWS = new BufferViews(READ_BUFFER)

interface ReadHooks { buffer: symbol, callback: symbol, gen: symbol }
let readHooks: ReadHooks | null | undefined

type HookedSocket = Socket & Record<symbol, unknown> & { _handle?: { useUserBuffer?: (buf: Uint8Array) => void } | null }

/** Makes `socket` read into READ_BUFFER and call `cb` per read; false when this node offers no way to. */
function readIntoShared (socket: Socket, cb: (n: number, buf: Buffer) => boolean): boolean {
  const s = socket as HookedSocket
  if (readHooks === undefined) {
    const symbols = Object.getOwnPropertySymbols(s)
    const find = (d: string): symbol | undefined => symbols.find(sym => sym.description === d)
    const buffer = find('kBuffer')
    const callback = find('kBufferCb')
    const gen = find('kBufferGen')
    readHooks = buffer !== undefined && callback !== undefined && gen !== undefined && typeof s._handle?.useUserBuffer === 'function' ? { buffer, callback, gen } : null
  }
  const handle = s._handle
  if (readHooks === null || handle == null || s[readHooks.buffer] != null || s[readHooks.gen] != null) return false
  s[readHooks.buffer] = READ_BUFFER
  s[readHooks.callback] = cb
  handle.useUserBuffer!(READ_BUFFER)
  return true
}

/** Whether the fast connections read into the shared buffer on this node (known after the first connection). */
export function sharesReads (): boolean {
  return readHooks != null
}

/** After a hand-over: reads that still reach the shared buffer are copied into the socket's Readable, as node would have pushed them. */
function pushReads (socket: Socket): void {
  ;(socket as HookedSocket)[readHooks!.callback] = (n: number, buf: Buffer): boolean => socket.push(Buffer.from(buf.subarray(0, n)))
}

class Connection implements ResponseOwner {
  readonly socket: Socket
  readonly keepAliveHeader: string
  readonly server: Http1Server
  readonly out: TickWrites
  state = State.Head
  /** Bytes read and not yet consumed (a partial head, or what followed a request). */
  pending: Buffer | null = null
  /** Deadline (ms since epoch) for the sweep, 0 for none. */
  deadline = 0
  req: Http1Request | null = null
  res: Http1Response | null = null
  /** Body being collected, and how much of it arrived. */
  body: Buffer | null = null
  got = 0
  /** Closing after the current response (Connection: close, or the server is shutting down). */
  closeAfter = false
  /** A head has started arriving (its deadline is set). */
  partial = false
  /** Reads arrive as views of READ_BUFFER (readIntoShared), not as buffers of their own. */
  readonly sharedReads: boolean
  private readonly onData: (chunk: Buffer) => void
  private readonly onEnd: () => void
  private readonly onClose: () => void
  private readonly onDrain: () => void

  constructor (server: Http1Server, socket: Socket) {
    this.server = server
    this.socket = socket
    this.out = new TickWrites(socket, () => { this.res?.emit('drain') })
    this.keepAliveHeader = server.keepAliveHeader
    this.onData = (chunk) => { this.data(chunk) }
    // A client that half-closes is gone: its answer could not be read back (node:http ends too).
    this.onEnd = () => { if (this.state !== State.Gone) socket.destroy() }
    this.onClose = () => { this.closed() }
    this.onDrain = () => { this.out.socketDrained() }
    socket.setNoDelay(true)
    this.sharedReads = readIntoShared(socket, (n) => { this.data(READ_VIEWS.view(0, n)); return true })
    if (!this.sharedReads) socket.on('data', this.onData)
    socket.on('error', noop)
    socket.on('end', this.onEnd)
    socket.on('close', this.onClose)
    socket.on('drain', this.onDrain)
    this.deadline = Date.now() + server.opts.headersTimeout
  }

  /**
   * b[start, end) to keep past this read: a copy when `b` is a read's view of the shared buffer
   * (`viewed`; a read starts at its start), else `b` or a view of it.
   */
  private keep (b: Buffer, viewed = this.sharedReads, start = 0, end = b.length): Buffer {
    if (viewed) return READ_VIEWS.copy(start, end)
    return start === 0 && end === b.length ? b : b.subarray(start, end)
  }

  data (chunk: Buffer): void {
    const state = this.state
    if (state === State.Busy) {
      this.pending = this.pending === null ? this.keep(chunk) : Buffer.concat([this.pending, chunk])
      if (this.pending.length > MAX_PENDING) this.socket.pause()
      return
    }
    if (state === State.Body) {
      const body = this.body!
      const want = body.length - this.got
      if (chunk.length < want) {
        chunk.copy(body, this.got)
        this.got += chunk.length
        return
      }
      chunk.copy(body, this.got, 0, want)
      this.got = body.length
      if (chunk.length > want) this.pending = this.keep(chunk, this.sharedReads, want)
      this.req!.body = body
      this.body = null
      this.dispatch(this.req!)
      return
    }
    if (state === State.Head) this.parse(chunk, false)
  }

  /** `owned`: `chunk` is the connection's own (pipelined bytes kept earlier), not a read's view. */
  private parse (chunk: Buffer, owned: boolean): void {
    const joined = this.pending !== null
    const buf = joined ? Buffer.concat([this.pending!, chunk]) : chunk
    // Bytes of `buf` kept past this call need a copy only when buf is a read's view.
    const viewed = this.sharedReads && !joined && !owned
    this.pending = null
    // The head is searched in its latin1 text, which the parse needs anyway: a Buffer indexOf is
    // a call into C++ of its own. Past HEAD_WINDOW bytes (a large body behind the head) the
    // search goes on in the bytes.
    const text = buf.toString('latin1', 0, Math.min(buf.length, HEAD_WINDOW))
    let end = text.indexOf('\r\n\r\n')
    if (end < 0 && buf.length > HEAD_WINDOW) end = buf.indexOf(CRLFCRLF, HEAD_WINDOW - 3)
    if (end < 0) {
      if (buf.length > MAX_HEAD) { this.handOver(this.keep(buf, viewed)); return }
      this.pending = this.keep(buf, viewed)
      if (!this.partial) {
        this.partial = true
        this.deadline = Date.now() + this.server.opts.headersTimeout
      }
      return
    }
    const headEnd = end + 4
    const req = headEnd > MAX_HEAD ? null : headEnd <= text.length ? parseRequestHead(text, headEnd) : parseRequestHead(buf.toString('latin1', 0, headEnd), headEnd)
    if (req === null) { this.handOver(this.keep(buf, viewed)); return }
    const length = req.contentLength
    if (length > this.server.opts.bodyLimit) {
      // Not read: the handler answers 413 and the connection closes.
      this.closeAfter = true
      this.dispatch(req)
      return
    }
    const have = buf.length - headEnd
    if (have >= length) {
      if (length > 0) req.body = this.keep(buf, viewed, headEnd, headEnd + length)
      if (have > length) this.pending = this.keep(buf, viewed, headEnd + length)
      this.dispatch(req)
      return
    }
    const body = Buffer.allocUnsafe(length)
    buf.copy(body, 0, headEnd)
    this.body = body
    this.got = have
    this.req = req
    this.state = State.Body
    if (!this.partial) this.deadline = Date.now() + this.server.opts.headersTimeout
    this.partial = false
  }

  private dispatch (req: Http1Request): void {
    this.state = State.Busy
    this.deadline = 0
    this.partial = false
    this.req = req
    if (req.close) this.closeAfter = true
    const res = new Http1Response(this, req)
    this.res = res
    this.server.handler(req, res)
  }

  responseDone (_res: Http1Response, close: boolean): void {
    this.req = null
    this.res = null
    if (this.state === State.Gone) return
    if (close || this.closeAfter || this.server.closing) {
      this.state = State.Gone
      this.out.flush()
      this.socket.end()
      return
    }
    this.state = State.Head
    this.deadline = Date.now() + this.server.opts.keepAliveTimeout
    if (this.socket.isPaused()) this.socket.resume()
    if (this.pending !== null) {
      // A pipelined request: parsed after the handler that ended this one has returned. The bytes
      // stay in `pending` until then, so a read that lands first is appended behind them.
      setImmediate(() => {
        const pending = this.pending
        if (this.state !== State.Head || pending === null) return
        this.pending = null
        this.parse(pending, true)
      })
    }
  }

  /** Gives the connection to node:http with the bytes read so far put back in front. */
  private handOver (buf: Buffer): void {
    this.state = State.Gone
    this.deadline = 0
    this.server.forget(this)
    // What earlier responses queued goes out before node:http writes anything.
    this.out.flush()
    const socket = this.socket
    socket.pause()
    if (this.sharedReads) pushReads(socket)
    else socket.removeListener('data', this.onData)
    socket.removeListener('end', this.onEnd)
    socket.removeListener('close', this.onClose)
    socket.removeListener('drain', this.onDrain)
    socket.removeListener('error', noop)
    socket.unshift(buf)
    this.server.fallback.emit('connection', socket)
    process.nextTick(() => { socket.resume() })
  }

  private closed (): void {
    const res = this.res
    this.state = State.Gone
    this.server.forget(this)
    if (res !== null) {
      this.res = null
      res.socketClosed()
    }
  }

  /** Idle between requests (nothing of a next one has arrived). */
  get idle (): boolean {
    return this.state === State.Head && this.pending === null
  }
}

function noop (): void {}

/**
 * node:http's 'clientError' listener for the fallback server: malformed HTTP gets a 400 (an
 * oversized head 431) and the socket is dropped; the process never crashes on a client's bytes.
 */
export function answerClientError (err: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable) { socket.destroy(); return }
  const line = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request'
  socket.end(`HTTP/1.1 ${line}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
}

export class Http1Server {
  readonly net: NetServer
  readonly fallback: HttpServer
  readonly handler: (req: HttpReq, res: HttpRes) => void
  readonly opts: Http1ServerOptions
  readonly keepAliveHeader: string
  closing = false
  private readonly conns = new Set<Connection>()
  private sweeper: NodeJS.Timeout | null = null

  /**
   * `handler` serves every request, from either path. `fallback` is a node:http server that never
   * listens: it gets the connections the fast path hands over (give it the same handler).
   */
  constructor (handler: (req: HttpReq, res: HttpRes) => void, fallback: HttpServer, opts: Http1ServerOptions) {
    this.handler = handler
    this.fallback = fallback
    this.opts = opts
    this.keepAliveHeader = `connection: keep-alive\r\nkeep-alive: timeout=${Math.max(1, Math.floor(opts.keepAliveTimeout / 1000))}\r\n\r\n`
    this.net = createNetServer({ noDelay: true }, (socket) => {
      if (this.closing) { socket.destroy(); return }
      const c = new Connection(this, socket)
      this.conns.add(c)
      this.sweeper ??= setInterval(() => { this.sweep() }, 1000).unref()
    })
  }

  listen (port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.net.once('error', reject)
      this.net.listen(port, host, () => { this.net.off('error', reject); resolve() })
    })
  }

  address (): AddressInfo {
    return this.net.address() as AddressInfo
  }

  forget (c: Connection): void {
    this.conns.delete(c)
  }

  private sweep (): void {
    const now = Date.now()
    for (const c of this.conns) {
      if (c.deadline !== 0 && c.deadline <= now) {
        c.state = State.Gone
        c.socket.destroy()
      }
    }
    if (this.conns.size === 0 && this.sweeper !== null) {
      clearInterval(this.sweeper)
      this.sweeper = null
    }
  }

  /** Stops accepting; idle connections close now, busy ones after their response. Resolves when the listener closed. */
  close (): Promise<void> {
    this.closing = true
    const closed = new Promise<void>(resolve => { this.net.close(() => { resolve() }) })
    this.closeIdleConnections()
    return closed
  }

  closeIdleConnections (): void {
    for (const c of this.conns) {
      if (c.idle) {
        c.state = State.Gone
        c.out.flush()
        c.socket.end()
        this.conns.delete(c)
      }
    }
    this.fallback.closeIdleConnections()
  }

  closeAllConnections (): void {
    for (const c of this.conns) c.socket.destroy()
    this.conns.clear()
    this.fallback.closeAllConnections()
    if (this.sweeper !== null) { clearInterval(this.sweeper); this.sweeper = null }
  }
}
