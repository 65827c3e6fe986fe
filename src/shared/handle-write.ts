/**
 * Writing a buffer to a TCP socket's libuv handle directly, past node's Writable.
 *
 * Why: a paced stream writes one small chunk per socket per engine pass, and `socket.write` spends
 * about 1.3–1.8 µs of user CPU per write above the handle's own write (Writable's state machine,
 * a WriteWrap per write, the after-write tick): 4.9–6.1 against 3.1–4.4 µs per write, 256
 * sockets written every 10 ms (`node dist/bench/lib/write-floor.js 256 10 5 socket|handle`). At
 * 10 ms pacing that is a tenth of the gateway's cost per streamed token.
 *
 * How: the calls node's own net.Socket makes (lib/internal/stream_base_commons.js): a WriteWrap
 * request object, `handle.writeBuffer(req, buffer)`, and the shared `streamBaseState` that says
 * whether the write finished in the call (the kernel took every byte: the common case) or libuv
 * queued the rest and will call `req.oncomplete(status)`. The binding comes from
 * `process.binding('stream_wrap')`, which node still allows for this module (DEP0111 is a
 * documentation-only deprecation). If it is missing or shaped differently, `handleWrites` is null
 * and every write goes through `socket.write`.
 *
 * Ordering with node's own writes holds because libuv writes a handle's requests in the order they
 * were made: callers write directly only while node's Writable holds nothing (`writableLength`
 * is 0), so nothing node has buffered can be overtaken; what node writes later queues behind.
 */
import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import { getSystemErrorName } from 'node:util'

/** The request object a handle write takes (node's WriteWrap). */
export interface WriteReq {
  handle: StreamHandle
  oncomplete: (this: WriteReq, status: number) => void
  async: boolean
  bytes: number
  /** Kept alive while libuv still holds the write. */
  buffer: Buffer | null
  /** Set by node on an error it has a message for. */
  error?: string
}

export interface StreamHandle {
  writeBuffer: (req: WriteReq, data: Uint8Array) => number
  writeLatin1String: (req: WriteReq, data: string) => number
  writeUtf8String: (req: WriteReq, data: string) => number
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteReq
  streamBaseState: Int32Array
  kLastWriteWasAsync: number
}

function loadBinding (): StreamWrapBinding | null {
  const binding = (process as unknown as { binding?: (name: string) => unknown }).binding
  if (typeof binding !== 'function') return null
  try {
    const b = binding.call(process, 'stream_wrap') as Partial<StreamWrapBinding> | undefined
    if (b === undefined || typeof b.WriteWrap !== 'function' || !(b.streamBaseState instanceof Int32Array) ||
        typeof b.kLastWriteWasAsync !== 'number') return null
    return b as StreamWrapBinding
  } catch {
    return null
  }
}

const binding = loadBinding()
// Read once: the binding object is in dictionary mode, and a load from it on every write showed
// up as a megamorphic keyed load in the token path's profile.
const writeState: Int32Array = binding === null ? new Int32Array(1) : binding.streamBaseState
const lastWriteWasAsync = binding === null ? 0 : binding.kLastWriteWasAsync
const WriteWrapClass = binding === null ? null : binding.WriteWrap

export interface HandleWrites {
  /** A request object for `handle`, reusable until a write through it goes async. */
  request: (handle: StreamHandle, oncomplete: (this: WriteReq, status: number) => void) => WriteReq
  /** The last handle write left bytes queued in libuv (its request's oncomplete will fire). */
  lastWasAsync: () => boolean
}

/** Null where node's stream binding is not available: write through `socket.write` then. */
export const handleWrites: HandleWrites | null = WriteWrapClass === null
  ? null
  : {
      request (handle, oncomplete) {
        const req = new WriteWrapClass()
        req.handle = handle
        req.oncomplete = oncomplete
        req.async = false
        req.bytes = 0
        req.buffer = null
        return req
      },
      lastWasAsync () {
        return writeState[lastWriteWasAsync] !== 0
      }
    }

/**
 * The socket's libuv handle if a write may go to it now: node's stream binding is usable, the
 * socket is connected and writable, and node's Writable holds nothing for it (so nothing node
 * has buffered can be overtaken). Null otherwise: write through `socket.write` then.
 */
export function writableHandleOf (socket: Socket): StreamHandle | null {
  if (handleWrites === null || socket.writableLength !== 0 || !socket.writable || socket.connecting) return null
  // node sets _handle to null when the socket is destroyed.
  const h = (socket as unknown as { _handle?: StreamHandle | null })._handle
  return h !== undefined && h !== null && typeof h.writeBuffer === 'function' ? h : null
}

/** An errno from a handle write as node reports one (`code`, `syscall`). */
export function writeError (errno: unknown): Error {
  const n = typeof errno === 'number' && errno < 0 ? errno : -9 // EBADF: the handle was gone
  const code = getSystemErrorName(n)
  return Object.assign(new Error(`write ${code}`), { code, errno: n, syscall: 'write' })
}

interface StringWriteReq extends WriteReq { socket: Socket | null }
/** A request object free for the next string write (one that went async stays libuv's). */
let spare: StringWriteReq | null = null

function afterStringWrite (this: WriteReq, status: number): void {
  const req = this as StringWriteReq
  const socket = req.socket
  req.socket = null
  if (status < 0) socket?.destroy(writeError(status))
}

/**
 * Writes a string to the socket's handle when node's Writable holds nothing for it (through
 * `socket.write` otherwise; node's `bytesWritten` counts it either way: the handle keeps the count).
 * For writes that need no backpressure of their own: the upstream pool's requests (one per
 * connection at a time, small). Node copies what the kernel does not take at once, so the
 * string need not be kept alive. A failed write destroys the socket with the errno, as node would.
 */
export function writeString (socket: Socket, data: string, encoding: 'latin1' | 'utf8'): void {
  const handle = writableHandleOf(socket)
  if (handle !== null) {
    const req = spare ?? (handleWrites!.request(handle, afterStringWrite) as StringWriteReq)
    req.handle = handle
    req.socket = socket
    const err = encoding === 'latin1' ? handle.writeLatin1String(req, data) : handle.writeUtf8String(req, data)
    if (err === 0 && handleWrites!.lastWasAsync()) {
      spare = null // libuv holds this request until afterStringWrite
      return
    }
    req.socket = null
    spare = req
    if (err !== 0) socket.destroy(writeError(err))
    return
  }
  socket.write(data, encoding)
}
