/**
 * Incremental HTTP/1.x response parser for Http1Pool: one instance per socket, reset per request.
 *
 * Feed it the socket's chunks with `execute(buf, off)`; it calls the sink with the response head
 * (after skipping 1xx interim heads) and with each body piece, and returns how it stopped. Body
 * pieces are `subarray`s of the chunk they arrived in (no copy); a chunked body's framing is
 * stripped, a chunk split across reads comes out as several pieces. Two head parses: for a proxy
 * (`reset(.., true)`, forward-lines mode) the head is read as bytes and only the lines to forward
 * are kept (parseLines); otherwise it is decoded once as latin1 into undici's headers object
 * (parseHead). No regex runs per response.
 *
 * Framing: no body for HEAD, 1xx, 204 and 304; else `transfer-encoding` ending in `chunked`;
 * else `content-length`; else the body runs until the socket ends (`finish()`), and the socket is
 * not reusable. Strict where undici's llhttp is strict (CRLF line ends, no obs-fold, no space
 * before a header's colon, Content-Length with Transfer-Encoding, conflicting Content-Lengths).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { Buffer } from 'node:buffer'
import { errors, parserError, socketError } from './errors.js'
import { fieldValue } from '../../shared/http-fields.js'
import { asView, type BufferViews } from '../../shared/buffer-view.js'
import { charCodes } from '../../shared/char-codes.js'

/** What the parser tells its owner. A `false` return stops the parse; the rest of the bytes are held. */
export interface ResponseSink {
  onHead (statusCode: number, statusMessage: string, headers: IncomingHttpHeaders): boolean
  onBody (chunk: Buffer): boolean
}

/** execute() results. */
export const NEED_MORE = 0
/** A sink callback returned false: the unread bytes are in `held` (a copy); call `execute(held, 0)` to go on. */
export const STOPPED = 1
/** The response is whole: read `trailers`, `keepAlive`, `keepAliveMs`, `leftover`. */
export const COMPLETE = 2
/** Malformed response: see `error`. */
export const FAILED = 3

const S_HEAD = 0
const S_BODY_LEN = 1
const S_BODY_CLOSE = 2
const S_CHUNK_SIZE = 3
const S_CHUNK_DATA = 4
const S_CHUNK_CRLF = 5
const S_TRAILERS = 6
const S_END = 7
const S_DONE = 8

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')
const EMPTY = Buffer.alloc(0)
/** undici's default maxHeaderSize (http.maxHeaderSize). */
export const MAX_HEAD_BYTES = 16 * 1024
/** Bytes of a read decoded to look for the end of a head (response heads are mostly a few hundred bytes). */
const HEAD_WINDOW = 2048
/** A chunk-size line (with extensions) longer than this is treated as malformed. */
const MAX_CHUNK_LINE = 4096

/** What the parser does with a header beyond storing it. */
const K_OTHER = 0
const K_CONTENT_LENGTH = 1
const K_TRANSFER_ENCODING = 2
const K_CONNECTION = 3
const K_KEEP_ALIVE = 4
/**
 * One lowercase header name, shared by its spellings. `stamp` marks the head it was last seen in.
 * `careful`: stored through addHeader (names on Object.prototype such as `__proto__`, and names
 * met once the table is full).
 */
interface NameKey { lower: string, kind: number, careful: boolean, stamp: number }
/** One spelling of a header name as it comes on the wire. */
interface NameEntry { raw: string, key: NameKey, next: NameEntry | null }

/**
 * Header names seen before, by spelling, in a small hash table shared by every parser. A known
 * name costs a hash over its chars and a startsWith: no substring, no toLowerCase, no string
 * hashing for a Map or for the headers object's keyed store (the same, already internalized key
 * string each time). That was about a third of the head's parse cost. The stamp tells a repeated
 * name without reading the headers object back. Bounded: a server inventing names stops filling it.
 */
const TABLE_BITS = 8
const TABLE: Array<NameEntry | null> = new Array<NameEntry | null>(1 << TABLE_BITS).fill(null)
const KEYS = new Map<string, NameKey>()
const MAX_NAMES = 512
let nameCount = 0
/** Incremented per head parsed (parses are synchronous, so one counter serves every parser). */
let headStamp = 0

/**
 * Fields left out of `forwardLines`: the hop-by-hop ones (RFC 9110 7.6.1, plus proxy-connection)
 * and the two a proxy in front of the worker sets itself (date, x-request-id).
 */
const NOT_FORWARDED: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'date', 'x-request-id'])

function keyFor (lower: string): NameKey {
  let key = KEYS.get(lower)
  if (key === undefined) {
    const kind = lower === 'content-length'
      ? K_CONTENT_LENGTH
      : lower === 'transfer-encoding'
        ? K_TRANSFER_ENCODING
        : lower === 'connection' ? K_CONNECTION : lower === 'keep-alive' ? K_KEEP_ALIVE : K_OTHER
    const full = KEYS.size >= MAX_NAMES
    key = { lower, kind, careful: full || lower in Object.prototype, stamp: 0 }
    if (!full) KEYS.set(lower, key)
  }
  return key
}

/**
 * A copy of bytes the parser keeps past execute(): its caller may reuse the buffer it fed (the
 * pool's sockets all read into one, `onread`). Body pieces handed to the sink are views.
 */
function retain (b: Buffer): Buffer {
  return Buffer.from(b)
}

/** Value of a hex digit byte, or -1. */
function hexVal (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  const l = c | 0x20
  if (l >= 97 && l <= 102) return l - 87
  return -1
}

/** Adds one header the way undici's parseHeaders does (repeats become an array). */
function addHeader (obj: IncomingHttpHeaders, name: string, value: string): void {
  const cur = obj[name]
  if (cur === undefined) {
    obj[name] = value
  } else if (!Object.hasOwn(obj, name)) {
    // `constructor`, `toString`, ...: shadow the prototype's value; `__proto__` needs a real property.
    if (name === '__proto__') Object.defineProperty(obj, name, { value, enumerable: true, configurable: true, writable: true })
    else obj[name] = value
  } else if (typeof cur === 'string') {
    obj[name] = [cur, value]
  } else {
    cur.push(value)
  }
}

export class ResponseParser {
  private readonly sink: ResponseSink
  private state = S_DONE
  private headRequest = false
  /** A head (or chunk-size / trailer line) split across reads, kept until its end arrives. */
  private partial: Buffer | null = null
  private remaining = 0
  private sawCR = false
  private trailerBytes = 0

  // Per-response results.
  statusCode = 0
  keepAlive = false
  /** The `keep-alive: timeout=N` hint in ms, or -1. */
  keepAliveMs = -1
  trailers: IncomingHttpHeaders | null = null
  /** Bytes followed the complete response in the same read (nothing should: no pipelining). */
  leftover = false
  error: Error | null = null
  /** Set with STOPPED: the bytes not yet parsed (its own copy), where to go on from. */
  held: Buffer | null = null
  /**
   * With `reset(.., true)`: the head's field lines a proxy forwards to its own client (all but
   * NOT_FORWARDED, `name: value\r\n` each, bytes as received, in their own buffer); the sink's
   * headers object is then left empty. Null otherwise.
   */
  forwardLines: Buffer | null = null
  /** The head had a Content-Length (set with the head, in either mode). */
  hasLength = false

  /** Build forwardLines instead of the headers object. */
  private linesOnly = false
  /** The lines-only parse's status text. */
  private message = ''

  // Head scratch, per response.
  private length = 0
  private chunked = false
  private hasTE = false
  private connClose = false
  private connKeepAlive = false

  constructor (sink: ResponseSink) {
    this.sink = sink
  }

  /** Ready for the response to a new request; `linesOnly`: see forwardLines. */
  reset (headRequest: boolean, linesOnly = false): void {
    this.state = S_HEAD
    this.headRequest = headRequest
    this.linesOnly = linesOnly
    this.forwardLines = null
    this.partial = null
    this.statusCode = 0
    this.keepAlive = false
    this.keepAliveMs = -1
    this.trailers = null
    this.leftover = false
    this.error = null
    this.held = null
    this.sawCR = false
    this.trailerBytes = 0
  }

  /** The body runs until the socket ends. */
  get closeDelimited (): boolean {
    return this.state === S_BODY_CLOSE
  }

  /** The socket ended: completes a close-delimited body (true), else the response is cut short (false). */
  finish (): boolean {
    if (this.state !== S_BODY_CLOSE) return false
    this.state = S_DONE
    this.trailers = {}
    this.keepAlive = false
    return true
  }

  /**
   * Parses `input` from `off`. `views`: input is views.base from its start (a read into a shared
   * buffer), so body pieces are cut as cheap views (shared/buffer-view.ts). Any other input (held
   * or joined bytes) is made a view too, so the byte loops only ever see one kind of buffer.
   */
  execute (input: Buffer, off: number, views: BufferViews | null = null): number {
    if (views === null) input = asView(input)
    let buf = input
    let len = buf.length
    let i = off
    const sink = this.sink
    for (;;) {
      switch (this.state) {
        case S_HEAD: {
          let start = i
          let from = i
          let resumed = false
          if (this.partial !== null) {
            const p = this.partial
            this.partial = null
            resumed = true
            from = Math.max(0, p.length - 3)
            buf = asView(i < len ? Buffer.concat([p, buf.subarray(i)]) : p)
            len = buf.length
            start = 0
          }
          if (start >= len) return NEED_MORE
          let message: string
          let headers: IncomingHttpHeaders
          if (this.linesOnly) {
            // The head is parsed as bytes in the same pass that looks for its end. A head split
            // across reads waits for its end (found with indexOf, so a trickled head costs no
            // rescans) before its one parse.
            if (resumed && buf.indexOf(CRLFCRLF, from) < 0) return this.waitForHead(buf, start, len)
            const next = this.parseLines(buf, start, len, buf === input ? views : null)
            if (next === LINES_FAILED) return FAILED
            if (next === LINES_MORE) return this.waitForHead(buf, start, len)
            if (next - 4 - start > MAX_HEAD_BYTES) return this.fail(new errors.HeadersOverflowError())
            i = next
            message = this.message
            headers = NO_HEADERS
          } else {
            // The head is looked for in its latin1 text, which the parse needs anyway (a Buffer
            // indexOf is a call into C++ of its own); past HEAD_WINDOW bytes, in the bytes.
            const windowEnd = Math.min(len, start + HEAD_WINDOW)
            const text = buf.toString('latin1', start, windowEnd)
            let end = text.indexOf('\r\n\r\n', from - start)
            if (end >= 0) end += start
            else if (windowEnd < len) end = buf.indexOf(CRLFCRLF, Math.max(from, windowEnd - 3))
            if (end < 0) return this.waitForHead(buf, start, len)
            if (end - start > MAX_HEAD_BYTES) return this.fail(new errors.HeadersOverflowError())
            i = end + 4
            headers = {}
            const m = this.parseHead(end <= windowEnd ? (end === windowEnd ? text : text.slice(0, end - start)) : buf.toString('latin1', start, end), headers)
            if (m === null) return FAILED
            message = m
          }
          const r = this.afterHead(this.statusCode)
          if (r === AFTER_INTERIM) continue
          if (r === AFTER_FAILED) return FAILED
          if (!sink.onHead(this.statusCode, message, headers)) return this.stop(buf, i)
          continue
        }
        case S_BODY_LEN: {
          if (i >= len) return NEED_MORE
          const n = Math.min(this.remaining, len - i)
          const chunk = i === 0 && n === len ? buf : piece(buf, input, views, i, i + n)
          i += n
          this.remaining -= n
          if (this.remaining === 0) this.state = S_END
          if (!sink.onBody(chunk)) return this.stop(buf, i)
          continue
        }
        case S_BODY_CLOSE: {
          if (i >= len) return NEED_MORE
          const chunk = i === 0 ? buf : piece(buf, input, views, i, len)
          i = len
          if (!sink.onBody(chunk)) return this.stop(buf, i)
          continue
        }
        case S_CHUNK_SIZE: {
          if (i >= len) return NEED_MORE
          // Size lines are a few bytes: a loop beats Buffer.indexOf's native call.
          let lf = i
          while (lf < len && buf[lf] !== 10) lf++
          if (lf === len) lf = -1
          let line: Buffer
          let ls: number
          let le: number
          if (lf < 0) {
            this.partial = this.partial === null ? retain(buf.subarray(i)) : Buffer.concat([this.partial, buf.subarray(i)])
            if (this.partial.length > MAX_CHUNK_LINE) return this.fail(parserError('Invalid chunk size line', 'INVALID_CHUNK_SIZE'))
            return NEED_MORE
          }
          if (this.partial !== null) {
            line = asView(Buffer.concat([this.partial, buf.subarray(i, lf)]))
            this.partial = null
            ls = 0
            le = line.length
          } else {
            line = buf
            ls = i
            le = lf
          }
          i = lf + 1
          const size = chunkSize(line, ls, le)
          if (size < 0) return this.fail(parserError('Invalid character in chunk size', 'INVALID_CHUNK_SIZE'))
          if (size === 0) {
            this.state = S_TRAILERS
          } else {
            this.remaining = size
            this.state = S_CHUNK_DATA
          }
          continue
        }
        case S_CHUNK_DATA: {
          if (i >= len) return NEED_MORE
          const n = Math.min(this.remaining, len - i)
          const chunk = piece(buf, input, views, i, i + n)
          i += n
          this.remaining -= n
          if (this.remaining === 0) this.state = S_CHUNK_CRLF
          if (!sink.onBody(chunk)) return this.stop(buf, i)
          continue
        }
        case S_CHUNK_CRLF: {
          if (i >= len) return NEED_MORE
          const c = buf[i]!
          if (c === 13 && !this.sawCR) {
            this.sawCR = true
            i++
            continue
          }
          if (c === 10) {
            this.sawCR = false
            this.state = S_CHUNK_SIZE
            i++
            continue
          }
          return this.fail(parserError('Expected CRLF after chunk data', 'STRICT'))
        }
        case S_TRAILERS: {
          if (i >= len) return NEED_MORE
          const lf = buf.indexOf(10, i)
          if (lf < 0) {
            this.partial = this.partial === null ? retain(buf.subarray(i)) : Buffer.concat([this.partial, buf.subarray(i)])
            this.trailerBytes += len - i
            if (this.trailerBytes > MAX_HEAD_BYTES) return this.fail(new errors.HeadersOverflowError())
            return NEED_MORE
          }
          let s: string
          if (this.partial !== null) {
            s = Buffer.concat([this.partial, buf.subarray(i, lf)]).toString('latin1')
            this.partial = null
          } else {
            s = buf.toString('latin1', i, lf)
          }
          this.trailerBytes += lf + 1 - i
          i = lf + 1
          if (s.length > 0 && s.charCodeAt(s.length - 1) === 13) s = s.slice(0, -1)
          if (s.length === 0) {
            this.state = S_END
            continue
          }
          if (this.trailerBytes > MAX_HEAD_BYTES) return this.fail(new errors.HeadersOverflowError())
          const colon = s.indexOf(':')
          if (colon <= 0) return this.fail(parserError('Invalid trailer line', 'INVALID_HEADER_TOKEN'))
          if (this.trailers === null) this.trailers = {}
          addHeader(this.trailers, s.slice(0, colon).toLowerCase(), s.slice(colon + 1).trim())
          continue
        }
        case S_END: {
          this.state = S_DONE
          if (this.trailers === null) this.trailers = {}
          this.leftover = i < len
          return COMPLETE
        }
        default:
          // S_DONE: bytes after a complete response.
          this.leftover = i < len
          return COMPLETE
      }
    }
  }

  /**
   * The status line's version digit and status digits (`spaced`: nothing or a space after them):
   * sets statusCode and clears the head's scratch; false after fail().
   */
  private status (minor: number, d0: number, d1: number, d2: number, spaced: boolean): boolean {
    if ((minor !== 0 && minor !== 1) || d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9 || !spaced) {
      this.fail(parserError('Invalid status line', minor !== 0 && minor !== 1 ? 'INVALID_VERSION' : 'INVALID_STATUS'))
      return false
    }
    this.statusCode = d0 * 100 + d1 * 10 + d2
    this.hasLength = false
    this.length = 0
    this.chunked = false
    this.hasTE = false
    this.connClose = false
    this.connKeepAlive = false
    this.keepAliveMs = -1
    return true
  }

  /** A Content-Length value (-1: not plain digits); false after fail(). */
  private contentLength (n: number): boolean {
    if (n < 0) { this.fail(parserError('Invalid content-length', 'INVALID_CONTENT_LENGTH')); return false }
    if (this.hasLength && n !== this.length) { this.fail(parserError('Duplicate Content-Length', 'UNEXPECTED_CONTENT_LENGTH')); return false }
    this.hasLength = true
    this.length = n
    return true
  }

  /** A Connection value other than a plain `keep-alive` or `close`. */
  private connectionList (value: string): void {
    const v = value.toLowerCase()
    if (v.includes('close')) this.connClose = true
    if (v.includes('keep-alive')) this.connKeepAlive = true
  }

  /** After a head's fields: refuses Content-Length next to Transfer-Encoding (false after fail()), else sets keepAlive. */
  private framingAgrees (minor: number): boolean {
    if (this.hasTE && this.hasLength && this.statusCode >= 200) {
      this.fail(parserError('Content-Length can\'t be present with Transfer-Encoding', 'UNEXPECTED_CONTENT_LENGTH'))
      return false
    }
    this.keepAlive = !this.connClose && (minor === 1 || this.connKeepAlive)
    return true
  }

  /** The state after a head: its body's framing, or another head after an interim one. */
  private afterHead (status: number): number {
    if (status < 200) {
      if (status === 101) { this.fail(socketError('bad upgrade', null)); return AFTER_FAILED }
      // 100 Continue, 102, 103: interim, no body; the real head follows.
      return AFTER_INTERIM
    }
    if (this.headRequest || status === 204 || status === 304) {
      this.state = S_END
    } else if (this.chunked) {
      this.state = S_CHUNK_SIZE
    } else if (this.hasLength) {
      this.remaining = this.length
      this.state = this.length === 0 ? S_END : S_BODY_LEN
    } else {
      this.state = S_BODY_CLOSE
      this.keepAlive = false
    }
    return AFTER_BODY
  }

  /** A head not whole yet: its bytes from `start` are kept for the next read (up to MAX_HEAD_BYTES). */
  private waitForHead (buf: Buffer, start: number, len: number): number {
    if (len - start > MAX_HEAD_BYTES) return this.fail(new errors.HeadersOverflowError())
    this.partial = retain(start === 0 ? buf : buf.subarray(start))
    return NEED_MORE
  }

  private stop (buf: Buffer, i: number): number {
    this.held = i < buf.length ? retain(buf.subarray(i)) : EMPTY
    return STOPPED
  }

  private fail (err: Error): number {
    this.error = err
    this.state = S_DONE
    this.partial = null
    return FAILED
  }

  /**
   * The lines-only parse of one head, as bytes, from `start`: status, framing, keep-alive and
   * `forwardLines`, in the pass that finds the head's end. No string is made for a head of the
   * usual kind (a status text of OK, framing values of plain digits, `chunked`, `keep-alive`,
   * `close`, `timeout=N`): charCodeAt on a decoded head checks the string's representation at
   * every char (`npm run bench -- head-parse`: 1.6-3.7x faster than the headers-object parse).
   * Returns the offset past the head's CRLFCRLF, LINES_MORE or LINES_FAILED (after fail()).
   * Strict as parseHead is.
   */
  private parseLines (buf: Buffer, start: number, len: number, views: BufferViews | null): number {
    let lf = start
    while (lf < len && buf[lf] !== 10) lf++
    if (lf >= len) return LINES_MORE
    if (lf === start || buf[lf - 1] !== 13) { this.fail(parserError('Expected CRLF', 'STRICT')); return LINES_FAILED }
    const lineEnd = lf - 1
    if (lineEnd - start < 12 || buf[start] !== 72 || buf[start + 1] !== 84 || buf[start + 2] !== 84 || buf[start + 3] !== 80 || buf[start + 4] !== 47 || buf[start + 5] !== 49 || buf[start + 6] !== 46 || buf[start + 8] !== 32) {
      this.fail(parserError('Response does not match the HTTP/1.1 protocol (Expected HTTP/)', 'INVALID_CONSTANT'))
      return LINES_FAILED
    }
    const minor = buf[start + 7]! - 48
    if (!this.status(minor, buf[start + 9]! - 48, buf[start + 10]! - 48, buf[start + 11]! - 48, lineEnd - start === 12 || buf[start + 12] === 32)) return LINES_FAILED
    const textAt = start + 13
    this.message = lineEnd <= textAt ? '' : lineEnd - textAt === 2 && buf[textAt] === 79 && buf[textAt + 1] === 75 ? 'OK' : buf.toString('latin1', textAt, lineEnd)
    let kaFrom = -1
    let kaTo = -1
    // The forwarded lines as runs of the head [from, to), cut where a line is left out.
    let runs: number[] | null = null
    let runFrom = -1
    let kept = 0

    let at = lf + 1
    for (;;) {
      if (at >= len) return LINES_MORE
      const first = buf[at]!
      if (first === 13) {
        if (at + 1 >= len) return LINES_MORE
        if (buf[at + 1] !== 10) { this.fail(parserError('Invalid header line', 'INVALID_HEADER_TOKEN')); return LINES_FAILED }
        break
      }
      // One pass: the colon, then the line's end.
      let colon = at
      let c = first
      while (c !== 58 && c !== 10 && ++colon < len) c = buf[colon]!
      let nl = colon
      while (nl < len && buf[nl] !== 10) nl++
      if (nl >= len) return LINES_MORE
      if (buf[nl - 1] !== 13) { this.fail(parserError('Expected CRLF after header value', 'STRICT')); return LINES_FAILED }
      if (colon >= nl - 1 || colon === at || first === 32 || first === 9) { this.fail(parserError('Invalid header line', 'INVALID_HEADER_TOKEN')); return LINES_FAILED }
      const before = buf[colon - 1]
      if (before === 32 || before === 9) { this.fail(parserError('Invalid header token', 'INVALID_HEADER_TOKEN')); return LINES_FAILED }
      const known = knownName(buf, at, colon - at)
      if (known.forward) {
        if (runFrom < 0) runFrom = at
        kept += nl + 1 - at
      } else if (runFrom >= 0) {
        (runs ??= []).push(runFrom, at)
        runFrom = -1
      }
      const kind = known.kind
      if (kind !== K_OTHER) {
        // The value without its OWS.
        let vs = colon + 1
        let ve = nl - 1
        while (vs < ve && (buf[vs] === 32 || buf[vs] === 9)) vs++
        while (ve > vs && (buf[ve - 1] === 32 || buf[ve - 1] === 9)) ve--
        switch (kind) {
          case K_CONTENT_LENGTH:
            if (!this.contentLength(decimalBytes(buf, vs, ve))) return LINES_FAILED
            break
          case K_TRANSFER_ENCODING:
            this.hasTE = true
            this.chunked = endsWithChunkedBytes(buf, vs, ve)
            break
          case K_CONNECTION: {
            if (bytesAre(buf, vs, ve, KEEP_ALIVE)) { this.connKeepAlive = true; break }
            if (bytesAre(buf, vs, ve, CLOSE)) { this.connClose = true; break }
            this.connectionList(buf.toString('latin1', vs, ve))
            break
          }
          case K_KEEP_ALIVE:
            kaFrom = vs
            kaTo = ve
            break
        }
      }
      at = nl + 1
    }
    // `at` is the blank line: a run still open ends there, its last line's CRLF included.
    if (runFrom >= 0) (runs ??= []).push(runFrom, at)
    this.forwardLines = copyRuns(buf, runs, kept, views)
    if (!this.framingAgrees(minor)) return LINES_FAILED
    if (kaFrom >= 0 && this.keepAlive) this.keepAliveMs = keepAliveTimeoutBytes(buf, kaFrom, kaTo)
    return at + 2
  }

  /**
   * Status line and header lines of one head (without its final CRLFCRLF) into `headers`.
   * Returns the status message, or null after fail().
   */
  private parseHead (s: string, headers: IncomingHttpHeaders): string | null {
    // Status line: HTTP/1.x SP 3DIGIT [SP reason]
    let eol = s.indexOf('\n')
    if (eol < 0) eol = s.length
    else if (s.charCodeAt(eol - 1) !== 13) { this.fail(parserError('Expected CRLF', 'STRICT')); return null }
    const lineEnd = eol < s.length ? eol - 1 : eol
    if (lineEnd < 12 || !s.startsWith('HTTP/1.') || s.charCodeAt(8) !== 32) {
      this.fail(parserError('Response does not match the HTTP/1.1 protocol (Expected HTTP/)', 'INVALID_CONSTANT'))
      return null
    }
    const minor = s.charCodeAt(7) - 48
    if (!this.status(minor, s.charCodeAt(9) - 48, s.charCodeAt(10) - 48, s.charCodeAt(11) - 48, lineEnd === 12 || s.charCodeAt(12) === 32)) return null
    const message = lineEnd > 13 ? s.slice(13, lineEnd) : ''
    let kaHeader: string | null = null
    const stamp = ++headStamp

    let at = eol + 1
    while (at < s.length) {
      let nl = s.indexOf('\n', at)
      let end: number
      if (nl < 0) {
        nl = s.length
        end = nl
      } else {
        if (s.charCodeAt(nl - 1) !== 13) { this.fail(parserError('Expected CRLF after header value', 'STRICT')); return null }
        end = nl - 1
      }
      const colon = s.indexOf(':', at)
      const first = s.charCodeAt(at)
      if (colon <= at || colon >= end || first === 32 || first === 9) {
        this.fail(parserError('Invalid header line', 'INVALID_HEADER_TOKEN'))
        return null
      }
      const before = s.charCodeAt(colon - 1)
      if (before === 32 || before === 9) { this.fail(parserError('Invalid header token', 'INVALID_HEADER_TOKEN')); return null }
      // The spelling's slot from its length and three of its chars (startsWith confirms).
      const nlen = colon - at
      const slot = (nlen * 7 + s.charCodeAt(at) + s.charCodeAt(colon - 1) * 3 + s.charCodeAt(at + (nlen >> 1)) * 5) & ((1 << TABLE_BITS) - 1)
      let e: NameEntry | null = TABLE[slot]!
      while (e !== null && !(e.raw.length === nlen && s.startsWith(e.raw, at))) e = e.next
      let key: NameKey
      if (e !== null) {
        key = e.key
      } else {
        const raw = s.slice(at, colon)
        key = keyFor(raw.toLowerCase())
        if (nameCount < MAX_NAMES) {
          TABLE[slot] = { raw, key, next: TABLE[slot]! }
          nameCount++
        }
      }
      const value = fieldValue(s, colon + 1, end)
      if (key.stamp !== stamp && !key.careful) {
        key.stamp = stamp
        headers[key.lower] = value
      } else {
        addHeader(headers, key.lower, value)
      }
      switch (key.kind) {
        case K_CONTENT_LENGTH:
          if (!this.contentLength(decimal(value))) return null
          break
        case K_TRANSFER_ENCODING:
          this.hasTE = true
          this.chunked = endsWithChunked(value)
          break
        case K_CONNECTION: {
          // The two values servers send, as node and uvicorn spell them, without lowercasing.
          if (value === 'keep-alive') { this.connKeepAlive = true; break }
          if (value === 'close') { this.connClose = true; break }
          this.connectionList(value)
          break
        }
        case K_KEEP_ALIVE:
          kaHeader = value
          break
      }
      at = nl + 1
    }
    if (!this.framingAgrees(minor)) return null
    if (kaHeader !== null && this.keepAlive) this.keepAliveMs = keepAliveTimeout(kaHeader)
    return message
  }
}

const NO_HEADERS: IncomingHttpHeaders = Object.freeze({}) as IncomingHttpHeaders

/** parseLines results besides the offset past the head. */
const LINES_MORE = -1
const LINES_FAILED = -2
/** afterHead results. */
const AFTER_BODY = 0
const AFTER_INTERIM = 1
const AFTER_FAILED = 2

/** Each byte lowercased (A-Z only): names compared as bytes, exactly as toLowerCase would. */
const LOWER = new Uint8Array(256)
for (let c = 0; c < 256; c++) LOWER[c] = c >= 65 && c <= 90 ? c + 32 : c

/** A name the lines-only parse acts on or leaves out, as lowercase bytes. */
interface KnownName { readonly name: Uint8Array, readonly kind: number, readonly forward: boolean }
/** Those names by length: every other name is forwarded without a look at its bytes. */
const KNOWN_BY_LENGTH: KnownName[][] = []
for (const lower of new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', ...NOT_FORWARDED])) {
  (KNOWN_BY_LENGTH[lower.length] ??= []).push({ name: Buffer.from(lower, 'latin1'), kind: keyFor(lower).kind, forward: !NOT_FORWARDED.has(lower) })
}
for (let n = 0; n < KNOWN_BY_LENGTH.length; n++) KNOWN_BY_LENGTH[n] ??= []
const NONE: KnownName = { name: new Uint8Array(0), kind: K_OTHER, forward: true }

function knownName (buf: Buffer, at: number, n: number): KnownName {
  if (n >= KNOWN_BY_LENGTH.length) return NONE
  const list = KNOWN_BY_LENGTH[n]!
  for (let k = 0; k < list.length; k++) {
    const name = list[k]!.name
    let i = 0
    while (i < n && LOWER[buf[at + i]!] === name[i]) i++
    if (i === n) return list[k]!
  }
  return NONE
}

// The words bytesAre looks for, as char codes (shared/char-codes.ts): with strings it was 4% of
// a node answer's head parse.
const KEEP_ALIVE = charCodes('keep-alive')
const CLOSE = charCodes('close')
const CHUNKED = charCodes('chunked')
const TIMEOUT = charCodes('timeout=')

/** buf[from, to) for the sink: a cheap view when buf is the read `views` were made for (`input`), else a subarray. */
function piece (buf: Buffer, input: Buffer, views: BufferViews | null, from: number, to: number): Buffer {
  return views !== null && buf === input ? views.view(from, to) : buf.subarray(from, to)
}

/** Whether buf[from, to) is the word `lower` (codes of lowercase ASCII), ignoring case. */
function bytesAre (buf: Buffer, from: number, to: number, lower: readonly number[]): boolean {
  if (to - from !== lower.length) return false
  for (let i = 0; i < lower.length; i++) if (LOWER[buf[from + i]!] !== lower[i]) return false
  return true
}

/** Plain digits in buf[from, to) as a number, or -1 (empty, anything else, over 15 digits). */
function decimalBytes (buf: Buffer, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1
  let n = 0
  for (let i = from; i < to; i++) {
    const d = buf[i]! - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

/** endsWithChunked over bytes (the value without its OWS). */
function endsWithChunkedBytes (buf: Buffer, from: number, to: number): boolean {
  if (to - from < 7 || !bytesAre(buf, to - 7, to, CHUNKED)) return false
  if (to - from === 7) return true
  const c = buf[to - 8]
  return c === 44 || c === 32 || c === 9
}

/**
 * The runs [from, to) of `buf` copied into one buffer of `kept` bytes (`views`: buf is their
 * base, from its start). Byte loops only for runs of up to 24 bytes; longer ones through a view
 * of the read buffer (Buffer#copy on a part of a buffer makes a typed array through a call into
 * C++ for the source's ArrayBuffer: ~800 user instructions a copy in the proxy's profile).
 */
function copyRuns (buf: Buffer, runs: number[] | null, kept: number, views: BufferViews | null): Buffer {
  const out = Buffer.allocUnsafe(kept)
  if (runs === null) return out
  let p = 0
  for (let r = 0; r < runs.length; r += 2) {
    const from = runs[r]!
    const to = runs[r + 1]!
    if (to - from <= 24) {
      for (let k = from; k < to; k++) out[p++] = buf[k]!
    } else {
      if (views !== null) out.set(views.view(from, to), p)
      else buf.copy(out, p, from, to)
      p += to - from
    }
  }
  return out
}

/** keepAliveTimeout over bytes; a value not starting with `timeout=` goes through the string version. */
function keepAliveTimeoutBytes (buf: Buffer, from: number, to: number): number {
  if (to - from < 8 || !bytesAre(buf, from, from + 8, TIMEOUT)) return keepAliveTimeout(buf.toString('latin1', from, to))
  let n = 0
  let i = from + 8
  for (; i < to; i++) {
    const d = buf[i]! - 48
    if (d < 0 || d > 9) break
    n = n * 10 + d
  }
  return i === from + 8 ? -1 : n * 1000
}

/** Size from a chunk-size line `HEX [ws] [; ext] [CR]` in b[start, end), or -1. */
function chunkSize (b: Buffer, start: number, end: number): number {
  if (end > start && b[end - 1] === 13) end--
  let i = start
  let size = 0
  while (i < end) {
    const v = hexVal(b[i]!)
    if (v < 0) break
    size = size * 16 + v
    i++
  }
  if (i === start || i - start > 13) return -1
  while (i < end && (b[i] === 32 || b[i] === 9)) i++
  if (i < end && b[i] !== 59 /* ; */) return -1
  return size
}

/** A Content-Length value as a number, or -1 when it is not plain digits. */
function decimal (v: string): number {
  if (v.length === 0 || v.length > 15) return -1
  let n = 0
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

/** `transfer-encoding` whose last coding is chunked (RFC 9112 6.3). */
function endsWithChunked (v: string): boolean {
  let e = v.length
  while (e > 0 && (v.charCodeAt(e - 1) === 32 || v.charCodeAt(e - 1) === 9)) e--
  if (e < 7) return false
  if (v.slice(e - 7, e).toLowerCase() !== 'chunked') return false
  if (e === 7) return true
  const c = v.charCodeAt(e - 8)
  return c === 44 || c === 32 || c === 9
}

/** `timeout=N` of a keep-alive header in ms, or -1. */
function keepAliveTimeout (v: string): number {
  const at = v.startsWith('timeout=') ? 0 : v.toLowerCase().indexOf('timeout=')
  if (at < 0) return -1
  let i = at + 8
  let n = 0
  const s = i
  for (; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48
    if (d < 0 || d > 9) break
    n = n * 10 + d
  }
  return i === s ? -1 : n * 1000
}
