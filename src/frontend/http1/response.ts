import { Buffer } from 'node:buffer'
import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { Http1Request } from './request-head.js'
import type { TickWrites } from './tick-writes.js'

/** The connection a response belongs to (server.ts). */
export interface ResponseOwner {
  readonly socket: Socket
  /** The connection's writes of this tick (tick-writes.ts): every byte of a response goes through it. */
  readonly out: TickWrites
  readonly keepAliveHeader: string
  /** The response ended (or its socket closed): the connection takes the next request or closes. */
  responseDone: (res: Http1Response, close: boolean) => void
}

let dateAt = 0
let dateLine = ''
/** `date: ...\r\n`, rebuilt at most once a second (node caches its Date header the same way). */
function dateHeader (): string {
  const now = Date.now()
  if (now - dateAt >= 1000) {
    dateAt = now - (now % 1000)
    dateLine = `date: ${new Date(dateAt).toUTCString()}\r\n`
  }
  return dateLine
}

const HEX = Buffer.from('0123456789abcdef')

// The pieces of a head built from forwarded lines (writeHeadLines), as bytes: no string is
// encoded per response. Encoding the head string into the answer's buffer (Buffer#write, a call
// into C++ that flattens the concatenated head first) was ~4% of a proxied JSON request's
// user-space instructions.
const STATUS_LINES = new Map<number, Buffer>()
function statusLine (status: number): Buffer {
  let line = STATUS_LINES.get(status)
  if (line === undefined) {
    line = Buffer.from(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`, 'latin1')
    if (STATUS_LINES.size < 128) STATUS_LINES.set(status, line)
  }
  return line
}

let dateBytesAt = 0
let dateBytes = Buffer.alloc(0)
function dateHeaderBytes (): Buffer {
  const line = dateHeader()
  if (dateBytesAt !== dateAt) {
    dateBytesAt = dateAt
    dateBytes = Buffer.from(line, 'latin1')
  }
  return dateBytes
}

let tailText = ''
let tailBytes = Buffer.alloc(0)
/** The connection's keep-alive tail as bytes (one spelling per server, so one cached copy). */
function keepAliveBytes (text: string): Buffer {
  if (text !== tailText) {
    tailText = text
    tailBytes = Buffer.from(text, 'latin1')
  }
  return tailBytes
}
const CLOSE_TAIL = Buffer.from('connection: close\r\n\r\n', 'latin1')
const CHUNKED_LINE = Buffer.from('transfer-encoding: chunked\r\n', 'latin1')
const REQUEST_ID_NAME = Buffer.from('x-request-id: ', 'latin1')
const CONTENT_LENGTH_NAME = Buffer.from('content-length: ', 'latin1')

function putBytes (buf: Buffer, p: number, bytes: Buffer): number {
  buf.set(bytes, p)
  return p + bytes.length
}

function decimalDigits (n: number): number {
  let d = 1
  while (n >= 10) { n = Math.floor(n / 10); d++ }
  return d
}

function putDecimal (buf: Buffer, p: number, n: number, digits: number): number {
  for (let k = digits - 1; k >= 0; k--) { buf[p + k] = 48 + (n % 10); n = Math.floor(n / 10) }
  return p + digits
}

type ResponseEvent = 'close' | 'drain'
interface Listener { readonly fn: () => void, readonly once: boolean }

/** Hex digits of a chunk's size line (0: no frame, for an unchunked or empty write). */
function chunkDigits (n: number, chunked: boolean): number {
  let digits = 0
  if (chunked && n > 0) for (let v = n; v > 0; v >>>= 4) digits++
  return digits
}

/** Bytes `data` takes framed: the chunk's size line and CRLF around it (digits > 0), the last chunk. */
function framedSize (n: number, digits: number, last: boolean): number {
  return (digits > 0 ? digits + 4 : 0) + n + (last ? 5 : 0)
}

/** Puts `data` (n bytes) framed at `buf[p]` (see framedSize). */
function putFramed (buf: Buffer, p: number, data: string | Buffer, n: number, digits: number, last: boolean): void {
  if (digits > 0) {
    for (let k = digits - 1, v = n; k >= 0; k--, v >>>= 4) buf[p + k] = HEX[v & 15]!
    p += digits
    buf[p++] = 13
    buf[p++] = 10
  }
  if (typeof data === 'string') p += buf.write(data, p, 'utf8')
  else { buf.set(data, p); p += n }
  if (digits > 0) { buf[p++] = 13; buf[p++] = 10 }
  if (last) buf.write('0\r\n\r\n', p, 'latin1')
}

/**
 * One buffer for one socket write: the head (latin1, if still unsent), then `data` — framed as an
 * HTTP/1.1 chunk when `chunked` (an empty chunk writes no frame) — then the terminating chunk
 * when `last`. One write per call, where ServerResponse makes three (size line, data, CRLF).
 */
function frame (head: string | null, data: string | Buffer, chunked: boolean, last: boolean): Buffer {
  const n = typeof data === 'string' ? Buffer.byteLength(data) : data.length
  const digits = chunkDigits(n, chunked)
  const buf = Buffer.allocUnsafe((head === null ? 0 : head.length) + framedSize(n, digits, last))
  putFramed(buf, head === null ? 0 : buf.write(head, 0, 'latin1'), data, n, digits, last)
  return buf
}

/**
 * The fast server's response: the subset of ServerResponse the gateway uses (HttpRes), written
 * straight to the socket. The head is kept until the first write or end(), so a response whose
 * whole body is known at end() goes out with a Content-Length in one write; otherwise the body is
 * chunked. Emits 'close' when it ends or its socket closes first, 'drain' after backpressure.
 *
 * Those two are all the events a handler waits for, so they are two plain listener lists rather
 * than an EventEmitter: its constructor and listener bookkeeping were ~2% of a proxied JSON
 * request's user-space samples.
 */
export class Http1Response {
  statusCode = 200
  /** The head is decided (writeHead or the first write); node's `headersSent` means the same. */
  headersSent = false
  writableEnded = false
  writableFinished = false
  /** Body framed as chunks (no Content-Length was given before the first body byte). */
  chunked = false
  private readonly owner: ResponseOwner
  private readonly req: Http1Request
  private headers: OutgoingHttpHeaders | null = null
  /** writeHeadLines: the worker's field lines to forward, whether they frame the body, the request id to add. */
  private lines: Buffer | null = null
  private linesHaveLength = false
  private requestId = ''
  /** The head went out on the socket. */
  private flushed = false
  private closeAfter: boolean
  private gone = false
  private closeListeners: Listener[] | null = null
  private drainListeners: Listener[] | null = null

  constructor (owner: ResponseOwner, req: Http1Request) {
    this.owner = owner
    this.req = req
    this.closeAfter = req.close
  }

  on (event: ResponseEvent, fn: () => void): this {
    this.listen(event, { fn, once: false })
    return this
  }

  once (event: ResponseEvent, fn: () => void): this {
    this.listen(event, { fn, once: true })
    return this
  }

  off (event: ResponseEvent, fn: () => void): this {
    const list = event === 'close' ? this.closeListeners : this.drainListeners
    if (list === null) return this
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.fn === fn) { list.splice(i, 1); break }
    }
    return this
  }

  /** Calls the event's listeners (once-listeners are removed first); false when there were none. */
  emit (event: ResponseEvent): boolean {
    const list = event === 'close' ? this.closeListeners : this.drainListeners
    if (list === null || list.length === 0) return false
    const now = list.slice()
    for (let i = list.length - 1; i >= 0; i--) if (list[i]!.once) list.splice(i, 1)
    for (let i = 0; i < now.length; i++) now[i]!.fn.call(this)
    return true
  }

  private listen (event: ResponseEvent, l: Listener): void {
    if (event === 'close') (this.closeListeners ??= []).push(l)
    else if (event === 'drain') (this.drainListeners ??= []).push(l)
    else throw new TypeError(`Http1Response has no '${String(event)}' event`)
  }

  get socket (): Socket { return this.owner.socket }
  /** The connection's queue for this tick's writes. */
  get out (): TickWrites { return this.owner.out }
  get destroyed (): boolean { return this.gone || this.owner.socket.destroyed }
  /** Bytes written and not yet taken by the kernel, this tick's queue included. */
  get writableLength (): number { return this.owner.out.backlog }

  writeHead (status: number, headers?: OutgoingHttpHeaders): this {
    if (this.headersSent) throw new Error('writeHead after the head was decided')
    this.statusCode = status
    this.headers = headers ?? null
    this.headersSent = true
    return this
  }

  /**
   * writeHead for a proxy: `lines` are field lines as received from a worker (`name: value\r\n`
   * each, hop-by-hop ones already left out; `hasLength`: a Content-Length among them), written as
   * they are, plus `x-request-id`. The head is then built as bytes (linesFrame).
   */
  writeHeadLines (status: number, lines: Buffer, hasLength: boolean, requestId: string): this {
    this.writeHead(status)
    this.lines = lines
    this.linesHaveLength = hasLength
    this.requestId = requestId
    return this
  }

  /**
   * The head for a body of `length` bytes (-1: unknown, chunked), then `data` framed as the head
   * says: the first write of a response, in one buffer.
   */
  private headFrame (length: number, data: string | Buffer): Buffer {
    if (this.lines !== null) return this.linesFrame(length, data)
    const head = this.head(length)
    return frame(head, data, this.chunked, false)
  }

  /** The head for a body of `length` bytes (-1: unknown, chunked), from writeHead's headers. */
  private head (length: number): string {
    const status = this.statusCode
    let h = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`
    let hasLength = false
    const headers = this.headers
    if (headers !== null) {
      for (const name in headers) {
        const v = headers[name]
        if (v === undefined) continue
        const lower = name.length === 14 || name.length === 10 ? name.toLowerCase() : name
        if (lower === 'content-length') hasLength = true
        else if (lower === 'connection') {
          if (String(v).toLowerCase().includes('close')) this.closeAfter = true
          continue
        }
        if (typeof v === 'object') for (const one of v) h += `${name}: ${one}\r\n`
        else h += `${name}: ${v}\r\n`
      }
    }
    const noBody = status === 204 || status === 304 || status < 200
    if (!hasLength && !noBody) {
      if (length >= 0) h += `content-length: ${length}\r\n`
      else { h += 'transfer-encoding: chunked\r\n'; this.chunked = true }
    }
    h += dateHeader()
    h += this.closeAfter ? 'connection: close\r\n\r\n' : this.owner.keepAliveHeader
    return h
  }

  /**
   * headFrame() for writeHeadLines: the same head, put together from bytes, in the buffer that
   * carries `data` after it (one allocation and one copy of the head less than building it apart).
   */
  private linesFrame (length: number, data: string | Buffer): Buffer {
    const status = this.statusCode
    const lines = this.lines!
    const line = statusLine(status)
    const rid = this.requestId
    const noBody = status === 204 || status === 304 || status < 200
    let lengthDigits = 0
    let framing = 0
    if (!this.linesHaveLength && !noBody) {
      if (length >= 0) {
        lengthDigits = decimalDigits(length)
        framing = CONTENT_LENGTH_NAME.length + lengthDigits + 2
      } else {
        this.chunked = true
        framing = CHUNKED_LINE.length
      }
    }
    const date = dateHeaderBytes()
    const tail = this.closeAfter ? CLOSE_TAIL : keepAliveBytes(this.owner.keepAliveHeader)
    const n = typeof data === 'string' ? Buffer.byteLength(data) : data.length
    const digits = chunkDigits(n, this.chunked)
    const buf = Buffer.allocUnsafe(line.length + lines.length + REQUEST_ID_NAME.length + rid.length + 2 + framing + date.length + tail.length + framedSize(n, digits, false))
    let p = putBytes(buf, 0, line)
    p = putBytes(buf, p, lines)
    p = putBytes(buf, p, REQUEST_ID_NAME)
    // One call, not a loop: a client's id is a slice of its head, and charCodeAt on a sliced
    // string goes through its parent each time.
    p += buf.write(rid, p, 'latin1')
    buf[p++] = 13
    buf[p++] = 10
    if (lengthDigits > 0) {
      p = putBytes(buf, p, CONTENT_LENGTH_NAME)
      p = putDecimal(buf, p, length, lengthDigits)
      buf[p++] = 13
      buf[p++] = 10
    } else if (framing > 0) {
      p = putBytes(buf, p, CHUNKED_LINE)
    }
    p = putBytes(buf, p, date)
    p = putBytes(buf, p, tail)
    putFramed(buf, p, data, n, digits, false)
    return buf
  }

  flushHeaders (): void {
    if (this.flushed || this.gone) return
    if (!this.headersSent) this.writeHead(this.statusCode)
    this.flushed = true
    this.owner.out.send(this.headFrame(-1, EMPTY))
  }

  write (chunk: string | Buffer): boolean {
    if (this.writableEnded || this.gone) return false
    if (!this.headersSent) this.writeHead(this.statusCode)
    let buf: Buffer
    if (!this.flushed) {
      this.flushed = true
      buf = this.headFrame(-1, chunk)
    } else {
      buf = frame(null, chunk, this.chunked, false)
    }
    const out = this.owner.out
    // Chunked answers (streams) may write again in this tick: queued, they leave in one write.
    if (this.chunked) out.send(buf)
    else out.sendNow(buf)
    // False only when the socket itself is full: then 'drain' comes once the kernel has taken the
    // rest (queued bytes are bounded by the queue's own flush size).
    return !out.blocked
  }

  end (chunk?: string | Buffer): this {
    if (this.writableEnded) return this
    this.writableEnded = true
    if (this.gone) return this
    const out = this.owner.out
    if (this.flushed) {
      if (chunk !== undefined || this.chunked) out.send(frame(null, chunk ?? EMPTY, this.chunked, this.chunked))
    } else {
      // The whole body is known: one write with a Content-Length head.
      if (!this.headersSent) this.writeHead(this.statusCode)
      this.flushed = true
      const body = chunk ?? EMPTY
      out.sendNow(this.headFrame(typeof body === 'string' ? Buffer.byteLength(body) : body.length, body))
    }
    this.writableFinished = true
    this.owner.responseDone(this, this.closeAfter)
    this.emit('close')
    return this
  }

  destroy (_err?: Error): this {
    if (!this.gone) {
      this.gone = true
      this.owner.socket.destroy()
    }
    return this
  }

  /** The socket closed under the response (called by the connection). */
  socketClosed (): void {
    this.gone = true
    if (!this.writableEnded) this.emit('close')
  }
}

const EMPTY = Buffer.alloc(0)
