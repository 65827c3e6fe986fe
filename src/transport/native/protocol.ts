/**
 * The native wire format (docs/native-protocol.md): frames of
 *   u32 BE length (bytes after this field) | u8 kind | u32 BE stream id | msgpack body (may be empty)
 * The kind and stream id sit outside the msgpack body so cancel, end, ping and routing of a frame
 * to its stream need no msgpack decoding at all.
 *
 * FrameReader decodes in place: a frame that lies inside one socket chunk is handed out as offsets
 * into that chunk; only a frame split across chunks is copied, once, into a buffer of its exact
 * size (no quadratic re-concatenation for large frames).
 *
 * FrameWriter coalesces: frames are appended to an arena and the first append of a tick schedules
 * one socket write (setImmediate, so frames written from different I/O callbacks of the same loop
 * turn share it); a full arena is written at once. Written bytes are never overwritten (the socket
 * may still hold them): the next frames go after them, and a full arena is replaced, not reused.
 */
import { Buffer } from 'node:buffer'
import { Packr, Unpackr } from 'msgpackr'
import type { Socket } from 'node:net'
import { NativeProtocolError } from './errors.js'
import type { NativeFinishReason, NativeMessage, NativeRequest, NativeUsage, ResponseItem } from './types.js'

export const PROTOCOL_VERSION = 1
/** Frame bytes after the length field that are not body: kind + stream id. */
export const FRAME_OVERHEAD = 5
export const HEADER_BYTES = 4 + FRAME_OVERHEAD
/** Default receive limit for one frame (length field value). Prompts of ~1M tokens fit. */
export const DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024

export const FrameKind = {
  HELLO: 1,
  REQUEST: 2,
  ACCEPT: 3,
  ITEM: 4,
  END: 5,
  ERROR: 6,
  CANCEL: 7,
  PING: 8,
  PONG: 9,
  GOAWAY: 10
} as const
export type FrameKindValue = typeof FrameKind[keyof typeof FrameKind]
const MAX_KIND = 10

export const KIND_NAMES: Record<number, string> = {
  1: 'hello', 2: 'request', 3: 'accept', 4: 'item', 5: 'end', 6: 'error', 7: 'cancel', 8: 'ping', 9: 'pong', 10: 'goaway'
}

// useRecords false: plain msgpack maps, decodable by any msgpack library (an engine adapter in
// Python or Rust must be able to speak this).
export const packr = new Packr({ useRecords: false, moreTypes: false })
export const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

export interface FrameSink {
  /**
   * The frame's body is `buf[start, end)`, inside the received bytes and valid to keep (socket
   * chunks are never reused); `buf.subarray(start, end)` makes it a Buffer of its own. Offsets,
   * not a view: the item path decodes in place, and a view per frame was a typed array per
   * streamed token.
   */
  onFrame (kind: FrameKindValue, streamId: number, buf: Buffer, start: number, end: number): void
}

const EMPTY = Buffer.alloc(0)

/** Splits a byte stream into frames. Throws NativeProtocolError on a bad length or kind. */
export class FrameReader {
  readonly maxFrameBytes: number
  private readonly sink: FrameSink
  /** A frame split across chunks: its full bytes (length field included) as they arrive. */
  private partial: Buffer | null
  private partialLen: number
  /** Fewer than 4 bytes of a length field. */
  private readonly head: Buffer
  private headLen: number
  framesIn: number
  bytesIn: number

  constructor (sink: FrameSink, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.sink = sink
    this.maxFrameBytes = maxFrameBytes
    this.partial = null
    this.partialLen = 0
    this.head = Buffer.alloc(4)
    this.headLen = 0
    this.framesIn = 0
    this.bytesIn = 0
  }

  push (chunk: Buffer): void {
    this.bytesIn += chunk.length
    let off = 0
    const n = chunk.length
    if (this.headLen > 0) {
      const take = Math.min(4 - this.headLen, n)
      chunk.copy(this.head, this.headLen, 0, take)
      this.headLen += take
      off = take
      if (this.headLen < 4) return
      this.headLen = 0
      this.startPartial(this.head, 0)
    }
    const p = this.partial
    if (p !== null) {
      const take = Math.min(p.length - this.partialLen, n - off)
      chunk.copy(p, this.partialLen, off, off + take)
      this.partialLen += take
      off += take
      if (this.partialLen < p.length) return
      this.partial = null
      this.emit(p, 0, p.length)
    }
    while (n - off >= 4) {
      const len = this.checkLength(chunk.readUInt32BE(off))
      const end = off + 4 + len
      if (end > n) break
      this.emit(chunk, off, end)
      off = end
    }
    if (off === n) return
    if (n - off < 4) {
      chunk.copy(this.head, 0, off, n)
      this.headLen = n - off
      return
    }
    this.startPartial(chunk, off)
    chunk.copy(this.partial!, 0, off, n)
    this.partialLen = n - off
  }

  /** Bytes of an incomplete frame held back (for tests: 0 means nothing is pending). */
  get pendingBytes (): number {
    return this.headLen + (this.partial === null ? 0 : this.partialLen)
  }

  private startPartial (src: Buffer, at: number): void {
    const len = this.checkLength(src.readUInt32BE(at))
    const p = Buffer.allocUnsafe(4 + len)
    p.writeUInt32BE(len, 0)
    this.partial = p
    this.partialLen = 4
  }

  private checkLength (len: number): number {
    if (len > this.maxFrameBytes) {
      throw new NativeProtocolError(`native frame of ${len} bytes exceeds the ${this.maxFrameBytes}-byte frame size limit`, true)
    }
    if (len < FRAME_OVERHEAD) throw new NativeProtocolError(`corrupt native frame: length ${len} is shorter than a frame header`)
    return len
  }

  private emit (buf: Buffer, start: number, end: number): void {
    const kind = buf[start + 4]!
    if (kind === 0 || kind > MAX_KIND) throw new NativeProtocolError(`corrupt native frame: unknown kind ${kind}`)
    const id = buf.readUInt32BE(start + 5)
    this.framesIn++
    this.sink.onFrame(kind as FrameKindValue, id, buf, start + HEADER_BYTES, end)
  }
}

/** Arena size; a full arena is written at once instead of waiting for the tick. */
const MIN_ARENA = 64 * 1024

/** Appends frames to an arena and writes them to the socket once per tick. */
export class FrameWriter {
  private socket: Socket | null
  private buf: Buffer
  /** Start of the bytes not yet handed to the socket. */
  private start: number
  private pos: number
  private scheduled: boolean
  /** While corked (before the handshake completes), frames accumulate and nothing is written. */
  corked: boolean
  /** The last socket.write returned false and 'drain' has not come yet. */
  needDrain: boolean
  framesOut: number
  bytesOut: number
  private readonly boundFlush: () => void
  private readonly onWriteResult: ((ok: boolean) => void) | null

  constructor (socket: Socket | null, onWriteResult: ((ok: boolean) => void) | null = null) {
    this.socket = socket
    this.buf = Buffer.allocUnsafe(MIN_ARENA)
    this.start = 0
    this.pos = 0
    this.scheduled = false
    this.corked = false
    this.needDrain = false
    this.framesOut = 0
    this.bytesOut = 0
    this.boundFlush = () => { this.scheduled = false; this.flush() }
    this.onWriteResult = onWriteResult
  }

  attach (socket: Socket): void {
    this.socket = socket
  }

  get pendingBytes (): number {
    return this.pos - this.start
  }

  /** A frame with an optional msgpack body already encoded. */
  frame (kind: FrameKindValue, id: number, body: Uint8Array | null = null): void {
    const bodyLen = body === null ? 0 : body.length
    const at = this.reserve(HEADER_BYTES + bodyLen)
    const buf = this.buf
    buf.writeUInt32BE(FRAME_OVERHEAD + bodyLen, at)
    buf[at + 4] = kind
    buf.writeUInt32BE(id, at + 5)
    if (body !== null) buf.set(body, at + HEADER_BYTES)
    this.pos = at + HEADER_BYTES + bodyLen
    this.written()
  }

  /**
   * An ITEM frame encoded straight into the arena: fixarray [text|nil, bin LE u32 tokens|nil,
   * finish|nil, [prompt, completion, cached]|nil]. `token` ≥ 0 sends that one id without an array.
   */
  item (id: number, text: string | null, tokenIds: ArrayLike<number> | null, token: number, finish: string | null, usage: NativeUsage | null): void {
    const nTok = token >= 0 ? 1 : tokenIds === null ? 0 : tokenIds.length
    // Upper bound: header, array, str32 header + 3 bytes per UTF-16 unit, bin32, finish, usage.
    const max = HEADER_BYTES + 1 + (text === null ? 1 : 5 + text.length * 3) + 5 + nTok * 4 + 2 + (finish === null ? 0 : finish.length * 3 + 2) + 16
    const at = this.reserve(max)
    const buf = this.buf
    let p = at + HEADER_BYTES
    buf[p++] = 0x94
    if (text === null) buf[p++] = 0xc0
    else p = writeStr(buf, p, text)
    if (nTok === 0) {
      buf[p++] = 0xc0
    } else {
      const bytes = nTok * 4
      if (bytes < 256) { buf[p++] = 0xc4; buf[p++] = bytes } else { buf[p++] = 0xc6; buf.writeUInt32BE(bytes, p); p += 4 }
      if (token >= 0) { buf.writeUInt32LE(token, p); p += 4 } else {
        for (let i = 0; i < nTok; i++) { buf.writeUInt32LE(tokenIds![i]!, p); p += 4 }
      }
    }
    if (finish === null) buf[p++] = 0xc0
    else p = writeStr(buf, p, finish)
    if (usage === null) buf[p++] = 0xc0
    else {
      buf[p++] = 0x93
      buf[p++] = 0xce; buf.writeUInt32BE(usage.promptTokens >>> 0, p); p += 4
      buf[p++] = 0xce; buf.writeUInt32BE(usage.completionTokens >>> 0, p); p += 4
      buf[p++] = 0xce; buf.writeUInt32BE(usage.cachedTokens >>> 0, p); p += 4
    }
    buf.writeUInt32BE(p - at - 4, at)
    buf[at + 4] = FrameKind.ITEM
    buf.writeUInt32BE(id, at + 5)
    this.pos = p
    this.written()
  }

  /** Writes what is pending now. Returns socket.write's answer (false: wait for 'drain'). */
  flush (): boolean {
    const socket = this.socket
    if (this.corked || socket === null || this.pos === this.start) return !this.needDrain
    if (socket.destroyed || socket.writableEnded) {
      this.start = this.pos = 0
      return false
    }
    const out = this.buf.subarray(this.start, this.pos)
    this.bytesOut += out.length
    this.start = this.pos
    const ok = socket.write(out)
    if (!ok) this.needDrain = true
    this.onWriteResult?.(ok)
    return ok
  }

  private reserve (bytes: number): number {
    if (this.pos + bytes <= this.buf.length) return this.pos
    // Full: write what is pending now rather than copy it. Only while corked (before the
    // handshake) must pending bytes move to the new arena; doubling keeps that linear.
    if (!this.corked && this.socket !== null && this.pos > this.start) this.flush()
    const pending = this.pos - this.start
    // A large frame gets an arena of its own size plus the usual room, not a doubled one that
    // would stay allocated for the connection's lifetime.
    const next = Buffer.allocUnsafe(pending === 0 ? Math.max(MIN_ARENA, bytes + (bytes > MIN_ARENA ? MIN_ARENA : 0)) : Math.max(MIN_ARENA, (pending + bytes) * 2))
    if (pending > 0) this.buf.copy(next, 0, this.start, this.pos)
    this.buf = next
    this.start = 0
    this.pos = pending
    return this.pos
  }

  private written (): void {
    this.framesOut++
    if (this.corked) return
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.boundFlush)
    }
  }
}

function writeStr (buf: Buffer, p: number, s: string): number {
  const n = s.length
  // Short ASCII strings (most token deltas) by hand: Buffer#write costs more than the copy.
  if (n < 32) {
    let ascii = true
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) > 0x7f) { ascii = false; break }
    }
    if (ascii) {
      buf[p++] = 0xa0 | n
      for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i)
      return p
    }
  }
  // Reserve the widest header the string can need, then fill the length in.
  if (n * 3 < 256) {
    const w = buf.write(s, p + 2, 'utf8')
    buf[p] = 0xd9
    buf[p + 1] = w
    return p + 2 + w
  }
  if (n * 3 < 65536) {
    const w = buf.write(s, p + 3, 'utf8')
    buf[p] = 0xda
    buf.writeUInt16BE(w, p + 1)
    return p + 3 + w
  }
  const w = buf.write(s, p + 5, 'utf8')
  buf[p] = 0xdb
  buf.writeUInt32BE(w, p + 1)
  return p + 5 + w
}

/**
 * Decodes an ITEM body, `buf[start, end)`, into `out` (reused by the caller). Accepts any msgpack
 * encoding of the 4-element array (a worker written in another language need not match our byte
 * choices). `out.raw` is `buf`, with the text at `[rawStart, rawEnd)`.
 */
export function decodeItem (buf: Buffer, start: number, end: number, out: ResponseItem, rawText = false): void {
  const c = cursor
  c.buf = buf
  c.pos = start
  c.end = end
  const body = buf
  const n = readArrayHeader(c)
  if (n < 4) throw new NativeProtocolError(`corrupt native item: array of ${n} elements, expected 4`)
  const len = readStrLength(c)
  out.raw = body
  out.rawStart = c.pos
  out.rawEnd = len < 0 ? c.pos : c.pos + len
  if (len < 0) out.text = null
  else {
    need(c, len)
    out.text = rawText ? null : body.toString('utf8', c.pos, c.pos + len)
    c.pos += len
  }
  out.tokenIds = readTokensOrNil(c)
  out.finishReason = readStrOrNil(c) as NativeFinishReason | null
  // The last item is rare: give it its text decoded whatever the handler asked.
  if (rawText && out.finishReason !== null && len > 0) out.text = body.toString('utf8', out.rawStart, out.rawEnd)
  need(c, 1)
  if (body[c.pos] === 0xc0) {
    c.pos++
    out.usage = null
  } else {
    const m = readArrayHeader(c)
    if (m < 3) throw new NativeProtocolError('corrupt native item: usage needs 3 numbers')
    out.usage = { promptTokens: readUint(c), completionTokens: readUint(c), cachedTokens: readUint(c) }
    for (let i = 3; i < m; i++) skip(c)
  }
  for (let i = 4; i < n; i++) skip(c)
  if (c.pos !== end) throw new NativeProtocolError('corrupt native item: trailing bytes')
}

/** Reads `buf` from `pos` up to `end`. */
interface Cursor { buf: Buffer, pos: number, end: number }
const cursor: Cursor = { buf: EMPTY, pos: 0, end: 0 }

function need (c: Cursor, k: number): void {
  if (c.pos + k > c.end) throw new NativeProtocolError('corrupt native item: truncated')
}

function readArrayHeader (c: Cursor): number {
  need(c, 1)
  const b = c.buf[c.pos++]!
  if ((b & 0xf0) === 0x90) return b & 0x0f
  if (b === 0xdc) { need(c, 2); const n = c.buf.readUInt16BE(c.pos); c.pos += 2; return n }
  if (b === 0xdd) { need(c, 4); const n = c.buf.readUInt32BE(c.pos); c.pos += 4; return n }
  throw new NativeProtocolError(`corrupt native item: expected an array, got byte 0x${b.toString(16)}`)
}

/** A string header: its byte length (the cursor then at its first byte), or −1 for nil. */
function readStrLength (c: Cursor): number {
  need(c, 1)
  const b = c.buf[c.pos++]!
  if (b === 0xc0) return -1
  if ((b & 0xe0) === 0xa0) return b & 0x1f
  let len: number
  if (b === 0xd9) { need(c, 1); len = c.buf[c.pos++]! } else if (b === 0xda) { need(c, 2); len = c.buf.readUInt16BE(c.pos); c.pos += 2 } else if (b === 0xdb) { need(c, 4); len = c.buf.readUInt32BE(c.pos); c.pos += 4 } else throw new NativeProtocolError(`corrupt native item: expected a string, got byte 0x${b.toString(16)}`)
  return len
}

function readStrOrNil (c: Cursor): string | null {
  const len = readStrLength(c)
  if (len < 0) return null
  need(c, len)
  const s = c.buf.toString('utf8', c.pos, c.pos + len)
  c.pos += len
  return s
}

function readTokensOrNil (c: Cursor): Uint32Array | null {
  need(c, 1)
  const b = c.buf[c.pos++]!
  let len: number
  if (b === 0xc0) return null
  if (b === 0xc4) { need(c, 1); len = c.buf[c.pos++]! } else if (b === 0xc5) { need(c, 2); len = c.buf.readUInt16BE(c.pos); c.pos += 2 } else if (b === 0xc6) { need(c, 4); len = c.buf.readUInt32BE(c.pos); c.pos += 4 } else throw new NativeProtocolError(`corrupt native item: expected token bytes, got byte 0x${b.toString(16)}`)
  need(c, len)
  if ((len & 3) !== 0) throw new NativeProtocolError('corrupt native item: token bytes not a multiple of 4')
  const out = tokensView(c.buf, c.pos, len)
  c.pos += len
  return out
}

/** LE u32 ids as a Uint32Array: a view when aligned (no copy), else a copy. */
export function tokensView (buf: Uint8Array, at: number, bytes: number): Uint32Array {
  const off = buf.byteOffset + at
  if ((off & 3) === 0 && LITTLE_ENDIAN) return new Uint32Array(buf.buffer, off, bytes >>> 2)
  const out = new Uint32Array(bytes >>> 2)
  const dv = new DataView(buf.buffer, off, bytes)
  for (let i = 0; i < out.length; i++) out[i] = dv.getUint32(i * 4, true)
  return out
}

/** Uint32Array ids as LE bytes for msgpack `bin` (a view on little-endian hosts). */
export function tokensBytes (ids: Uint32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength)
  const out = Buffer.allocUnsafe(ids.length * 4)
  for (let i = 0; i < ids.length; i++) out.writeUInt32LE(ids[i]!, i * 4)
  return out
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

function readUint (c: Cursor): number {
  need(c, 1)
  const b = c.buf[c.pos++]!
  if (b < 0x80) return b
  switch (b) {
    case 0xcc: need(c, 1); return c.buf[c.pos++]!
    case 0xcd: { need(c, 2); const v = c.buf.readUInt16BE(c.pos); c.pos += 2; return v }
    case 0xce: { need(c, 4); const v = c.buf.readUInt32BE(c.pos); c.pos += 4; return v }
    case 0xcf: { need(c, 8); const v = Number(c.buf.readBigUInt64BE(c.pos)); c.pos += 8; return v }
  }
  throw new NativeProtocolError(`corrupt native item: expected an unsigned integer, got byte 0x${b.toString(16)}`)
}

// Extra trailing elements (a newer peer's fields) are skipped with msgpackr's decoder.
function skip (c: Cursor): void {
  const rest = c.buf.subarray(c.pos, c.end)
  let consumed = 0
  try {
    unpackr.unpackMultiple(rest, (_v: unknown, _start?: number, end?: number) => { consumed = end ?? rest.length; return false })
  } catch (err) {
    throw new NativeProtocolError(`corrupt native item: ${(err as Error).message}`)
  }
  c.pos += consumed
}

/** Decodes a msgpack body (hello, request, error). Throws NativeProtocolError. */
export function decodeBody (body: Buffer, what: string): Record<string, unknown> {
  let v: unknown
  try {
    v = unpackr.unpack(body)
  } catch (err) {
    throw new NativeProtocolError(`corrupt native ${what} frame: ${(err as Error).message}`)
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new NativeProtocolError(`corrupt native ${what} frame: the body is not a map`)
  return v as Record<string, unknown>
}

/** The REQUEST body: a msgpack map with the NativeRequest field names; token ids as LE u32 `bin`. */
export function encodeRequest (req: NativeRequest): Buffer {
  const ids = req.tokenIds
  const body: Record<string, unknown> = {
    model: req.model,
    endpoint: req.endpoint
  }
  if (ids !== undefined && ids !== null) body.tokenIds = tokensBytes(ids)
  if (req.prompt !== undefined && req.prompt !== null) body.prompt = req.prompt
  if (req.messages !== undefined && req.messages !== null) body.messages = req.messages
  if (req.sampling !== undefined) body.sampling = req.sampling
  if (req.priority !== undefined && req.priority !== 0) body.priority = req.priority
  if (req.deadlineMs !== undefined && req.deadlineMs > 0) body.deadlineMs = req.deadlineMs
  if (req.requestId !== undefined) body.requestId = req.requestId
  if (req.returnTokenIds === true) body.returnTokenIds = true
  if (req.extra !== undefined && req.extra !== null) body.extra = req.extra
  return packr.pack(body)
}

/** Validates a decoded REQUEST body. Throws a plain Error naming the field (sent back as a stream error). */
export function decodeRequest (m: Record<string, unknown>): NativeRequest {
  const model = m.model
  if (typeof model !== 'string') throw new Error('request.model must be a string')
  const endpoint = m.endpoint
  if (endpoint !== 'chat' && endpoint !== 'completions') throw new Error('request.endpoint must be "chat" or "completions"')
  const req: NativeRequest = { model, endpoint }
  const ids = m.tokenIds
  if (ids !== undefined && ids !== null) {
    if (!(ids instanceof Uint8Array) || (ids.length & 3) !== 0) throw new Error('request.tokenIds must be bytes of little-endian u32')
    req.tokenIds = tokensView(ids, 0, ids.length)
  }
  if (typeof m.prompt === 'string') req.prompt = m.prompt
  if (Array.isArray(m.messages)) req.messages = m.messages as NativeMessage[]
  if (m.sampling !== undefined && m.sampling !== null) {
    if (typeof m.sampling !== 'object') throw new Error('request.sampling must be a map')
    req.sampling = m.sampling as NativeRequest['sampling'] & object
  }
  if (typeof m.priority === 'number') req.priority = m.priority
  if (typeof m.deadlineMs === 'number') req.deadlineMs = m.deadlineMs
  if (typeof m.requestId === 'string') req.requestId = m.requestId
  if (m.returnTokenIds === true) req.returnTokenIds = true
  if (m.extra !== undefined && m.extra !== null && typeof m.extra === 'object') req.extra = m.extra as Record<string, unknown>
  return req
}

export interface ErrorBody {
  code: string
  message: string
  retryable: boolean
  status?: number
  param?: string | null
  apiCode?: string | null
}

export function encodeError (e: ErrorBody): Buffer {
  return packr.pack(e)
}

export type { NativeFinishReason }
