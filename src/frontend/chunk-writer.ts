/**
 * Streamed response bodies written as HTTP/1.1 chunks straight to the client's socket, one
 * `socket.write` per chunk.
 *
 * Why not `res.write`: ServerResponse corks the socket, writes the chunk-size line, the data and
 * the CRLF as three pieces, and uncorks on the next tick into a three-buffer writev; per streamed
 * token that machinery cost more user CPU than the whole rest of the native path (profile of 256
 * paced streams, docs/BENCHMARKS.md `transport`). One string per chunk is one write.
 *
 * Used only when it is safe: the headers went out with chunked encoding and the response owns the
 * socket (a pipelined response waiting its turn has none). `res.end()` then writes the last chunk
 * and the terminator after ours, in order, through the same socket.
 *
 * Token deltas take a byte path (`writeJsonString`): the worker's UTF-8 text is JSON-escaped byte
 * by byte between a prefix and a suffix prebuilt per request, straight into one Buffer with the
 * chunk framing: no UTF-8 decode of the delta, no string concatenation, no UTF-8 re-encode at the
 * socket. Bytes from 0x80 up pass as they are (a JSON string may hold raw UTF-8).
 *
 * Several chunks for one client in the same tick (a busy engine's pass carries more than one
 * token per stream) go out as one write. On the fast server's connections the chunks join the
 * connection's queue for the tick (http1/tick-writes.ts); on node:http's, the first write of a
 * tick corks the socket and one process-wide nextTick uncorks every socket corked in that tick
 * (ServerResponse pays a nextTick per response for the same effect).
 *
 * Slow consumers: an engine cannot pause one sequence of its batch, so tokens a client does not
 * read pile up in the gateway. Past `limit` bytes queued on the socket the stream is cut
 * (`write` returns false) — NATS's slow-consumer rule, instead of unbounded memory.
 */
import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import { corkForTick, Http1Response, type HttpRes } from './http1/server.js'
import type { TickWrites } from './http1/tick-writes.js'

/** OutgoingMessage's own fields (undocumented, stable since Node 0.x): `headersSent` is true once writeHead stored them, `_headerSent` once they went out. */
interface ChunkedResponse { chunkedEncoding?: boolean, _headerSent?: boolean }

/** Extra output bytes a byte needs inside a JSON string: 1 for \" \\ \n..., 5 for \u00XX. */
const ESCAPE_EXTRA = new Uint8Array(256)
/** The letter after the backslash of the short escapes. */
const SHORT_ESCAPE = new Uint8Array(256)
for (let b = 0; b < 0x20; b++) ESCAPE_EXTRA[b] = 5
for (const [b, c] of [[8, 'b'], [9, 't'], [10, 'n'], [12, 'f'], [13, 'r'], [0x22, '"'], [0x5c, '\\']] as const) {
  ESCAPE_EXTRA[b] = 1
  SHORT_ESCAPE[b] = c.charCodeAt(0)
}
const HEX_DIGITS = Buffer.from('0123456789abcdef')

/** Copies src[start, end) into dst at `p` as JSON string content; returns the end position. */
function escapeInto (src: Buffer, start: number, end: number, dst: Buffer, p: number): number {
  for (let i = start; i < end; i++) {
    const b = src[i]!
    const x = ESCAPE_EXTRA[b]!
    if (x === 0) dst[p++] = b
    else {
      dst[p++] = 0x5c
      if (x === 1) dst[p++] = SHORT_ESCAPE[b]!
      else {
        dst[p++] = 0x75 // u00XX
        dst[p++] = 0x30
        dst[p++] = 0x30
        dst[p++] = HEX_DIGITS[b >> 4]!
        dst[p++] = HEX_DIGITS[b & 15]!
      }
    }
  }
  return p
}

/** Writes the chunk-size line for `size` at buf[0]; returns where the chunk's data starts. */
function sizeLine (buf: Buffer, size: number, digits: number): number {
  for (let k = digits - 1, v = size; k >= 0; k--, v >>>= 4) buf[k] = HEX_DIGITS[v & 15]!
  buf[digits] = 13
  buf[digits + 1] = 10
  return digits + 2
}

function hexDigits (size: number): number {
  let digits = 0
  for (let v = size; v > 0; v >>>= 4) digits++
  return digits
}

/**
 * `prefix` + src[start, end) as JSON string content + `suffix`, in one Buffer; with `framed`, as
 * one HTTP/1.1 chunk (size line and CRLF included).
 *
 * One pass in the usual case: the bytes are copied as they are while none needs escaping (a token
 * delta rarely holds a quote, a backslash or a control byte); the first one that does sends the
 * chunk down the counting path. Deltas are a few bytes, so a JS loop beats a native copy's call.
 */
export function jsonChunk (prefix: Buffer, src: Buffer, start: number, end: number, suffix: Buffer, framed: boolean): Buffer {
  const size = prefix.length + (end - start) + suffix.length
  const buf = openChunk(size, framed, prefix)
  let p = buf.length - size - (framed ? 2 : 0) + prefix.length
  let i = start
  for (; i < end; i++) {
    const b = src[i]!
    if (ESCAPE_EXTRA[b] !== 0) break
    buf[p++] = b
  }
  if (i < end) return escapedChunk(prefix, src, start, end, suffix, framed)
  return closeChunk(buf, p, suffix, framed)
}

/** jsonChunk's path for a delta with bytes to escape: sized first, then escaped. */
function escapedChunk (prefix: Buffer, src: Buffer, start: number, end: number, suffix: Buffer, framed: boolean): Buffer {
  let extra = 0
  for (let i = start; i < end; i++) extra += ESCAPE_EXTRA[src[i]!]!
  const size = prefix.length + (end - start) + extra + suffix.length
  const buf = openChunk(size, framed, prefix)
  const p = escapeInto(src, start, end, buf, buf.length - size - (framed ? 2 : 0) + prefix.length)
  return closeChunk(buf, p, suffix, framed)
}

/** A Buffer for `size` bytes of chunk data (framed: after its size line, CRLF after it), `prefix` written at the data's start. */
function openChunk (size: number, framed: boolean, prefix: Buffer): Buffer {
  const digits = framed ? hexDigits(size) : 0
  const buf = Buffer.allocUnsafe(framed ? digits + size + 4 : size)
  buf.set(prefix, framed ? sizeLine(buf, size, digits) : 0)
  return buf
}

/** Writes `suffix` at `p` and, when framed, the chunk's CRLF. */
function closeChunk (buf: Buffer, p: number, suffix: Buffer, framed: boolean): Buffer {
  buf.set(suffix, p)
  if (framed) {
    p += suffix.length
    buf[p++] = 13
    buf[p] = 10
  }
  return buf
}

export class ChunkWriter {
  /** node:http's response writing straight to its socket (see `write`). */
  private readonly socket: Socket | null
  /** The fast server's chunked response: framed chunks go to its connection's queue for the tick. */
  private readonly fast: TickWrites | null
  private readonly res: HttpRes
  private readonly limit: number

  /** Call after the headers were written (writeHead); flushes them. */
  constructor (res: HttpRes, limit: number) {
    this.res = res
    this.limit = limit
    if (res instanceof Http1Response) {
      // The fast server's response: its head is queued now (it leaves with the first chunk) and
      // says chunked unless the handler gave a length.
      res.flushHeaders()
      this.fast = res.chunked && !res.destroyed ? res.out : null
      this.socket = null
      return
    }
    this.fast = null
    const socket = res.socket
    const direct = socket !== null && !socket.destroyed && (socket as unknown as { _httpMessage: unknown })._httpMessage === res &&
      (res as unknown as ChunkedResponse).chunkedEncoding === true
    this.socket = direct ? socket : null
    // Corked first, the headers leave with the first chunk in one write, not a syscall of their own.
    if (direct) corkForTick(socket)
    if ((res as unknown as ChunkedResponse)._headerSent !== true) res.flushHeaders()
  }

  /** Writes one body chunk; false once the client has fallen more than `limit` bytes behind. */
  write (data: string): boolean {
    const socket = this.socket
    if (socket === null) {
      // The fast response frames the chunk into one buffer itself.
      this.res.write(data)
      return this.res.writableLength <= this.limit
    }
    corkForTick(socket)
    socket.write(Buffer.byteLength(data).toString(16) + '\r\n' + data + '\r\n')
    return socket.writableLength <= this.limit
  }

  /**
   * The fast server's queue for this response's tick, when chunks may go straight to it
   * (`jsonChunk(..., true)` then `send`): the native path keeps it beside its other per-token
   * fields rather than reaching it through this writer.
   */
  get tickQueue (): TickWrites | null {
    return this.fast
  }

  /** Writes `prefix` + src[start, end) JSON-escaped + `suffix` as one chunk; false as `write`. */
  writeJsonString (prefix: Buffer, src: Buffer, start: number, end: number, suffix: Buffer): boolean {
    const socket = this.socket
    const fast = this.fast
    const buf = jsonChunk(prefix, src, start, end, suffix, socket !== null || fast !== null)
    if (fast !== null) {
      fast.send(buf)
      return !fast.backlogOver(this.limit)
    }
    if (socket === null) {
      this.res.write(buf)
      return this.res.writableLength <= this.limit
    }
    corkForTick(socket)
    socket.write(buf)
    return socket.writableLength <= this.limit
  }
}
