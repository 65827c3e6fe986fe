/**
 * What a connection writes during one tick, handed to its socket when the tick ends: one
 * `socket.write` per connection per tick, however many pieces its response produced (head, SSE
 * chunks, the chunked terminator).
 *
 * Why not cork/uncork, which does the same: a corked write goes through Writable's buffering and
 * the uncork through `clearBuffer`, about 1.1k more user instructions per write than a direct
 * write, measured with 256 sockets and one write each per 10 ms (the common case of paced
 * streams: one token per stream per engine pass). Here the usual tick holds one buffer and costs
 * one array push; two or more small ones are joined into one buffer (cheaper than a writev of
 * small pieces), large ones go out as a corked writev.
 *
 * A tick's bytes go to the socket's handle directly while node's Writable holds nothing (see
 * src/shared/handle-write.ts for why and how), through `socket.write` otherwise.
 *
 * The owner must flush before anything else touches the socket (end, hand-over), so bytes keep
 * their order.
 */
import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import { handleWrites, writableHandleOf, writeError, type WriteReq } from '../../shared/handle-write.js'

/** Queued bytes past which a tick's pieces are written at once rather than at the tick's end. */
const FLUSH_BYTES = 16 * 1024

/*
 * This tick's queue, for all connections: `dueConns[i]` has `duePieces[i]` (one buffer, or a list
 * of them) waiting, while its `slot` is i. The pieces live in these arrays, made afresh each tick,
 * rather than on the connection's TickWrites: that object is long-lived (old space), so storing
 * each token's new buffer on it ran V8's old-to-new write barrier (RecordWrite, ~7% of the user
 * samples on the native token path); a store into a young array needs none.
 */
let dueConns: TickWrites[] = []
let duePieces: Array<Buffer | Buffer[] | null> = []
/*
 * The flush is a promise reaction, not a process.nextTick: a read callback that queued a write
 * then ends in V8's own microtask checkpoint, while a nextTick makes node enter its JS tick loop
 * (processTicksAndRejections, processPromiseRejections) after every such callback. Over HTTP
 * upstreams that is once per streamed token (each token is its own read), ~4.5% of the path's
 * user-space samples. It runs at the same point: when the callback's synchronous work is done.
 */
const RESOLVED = Promise.resolve()
function flushDue (): void {
  let i = 0
  try {
    // A flush can queue more (a 'drain' handler writing): those join the end of this pass.
    for (; i < dueConns.length; i++) {
      const w = dueConns[i]!
      if (w.slot === i) w.flush()
    }
  } finally {
    // Only if a flush threw: what it did not reach is dropped, not left pointing into the next tick's queue.
    for (; i < dueConns.length; i++) if (dueConns[i]!.slot === i) { dueConns[i]!.slot = -1; dueConns[i]!.bytes = 0 }
    dueConns = []
    duePieces = []
  }
}

interface OwnedWriteReq extends WriteReq {
  owner: TickWrites
}

/** A handle write libuv had queued has finished (`this` is its request). */
function afterHandleWrite (this: WriteReq, status: number): void {
  const req = this as OwnedWriteReq
  req.buffer = null
  req.owner.handleWriteDone(req.bytes, status)
}

export class TickWrites {
  readonly socket: Socket
  /** Index of this connection's pieces in this tick's queue, −1 when nothing is queued. */
  slot = -1
  /** Bytes queued and not yet handed to the socket. */
  bytes = 0
  /** Bytes of handle writes libuv still holds (the kernel took less than it was given). */
  private inLibuv = 0
  /** The socket's last `write` returned false: node buffers at least its high-water mark until 'drain'. */
  private nodeFull = false
  /** The request object for the next handle write (replaced once one goes async). */
  private req: OwnedWriteReq | null = null
  /** Called when bytes that made `blocked` true have all gone to the kernel. */
  private readonly onDrain: (() => void) | null

  constructor (socket: Socket, onDrain?: () => void) {
    this.socket = socket
    this.onDrain = onDrain ?? null
  }

  /**
   * The kernel took less than it was given: the rest waits in node or libuv. Until it is gone
   * (the `onDrain` callback), a caller that respects backpressure stops writing.
   */
  get blocked (): boolean {
    return this.nodeFull || this.inLibuv > 0
  }

  /** Bytes given to this connection and not yet taken by the kernel (node's and libuv's buffers, this tick's queue). */
  get backlog (): number {
    return this.socket.writableLength + this.inLibuv + this.bytes
  }

  /** Queues `buf` for the end of this tick. */
  send (buf: Buffer): void {
    const slot = this.slot
    if (slot < 0) {
      if (dueConns.length === 0) void RESOLVED.then(flushDue)
      this.slot = dueConns.length
      dueConns.push(this)
      duePieces.push(buf)
      this.bytes = buf.length
      return
    }
    const queued = duePieces[slot]!
    if (Array.isArray(queued)) queued.push(buf)
    else duePieces[slot] = [queued, buf]
    this.bytes += buf.length
    if (this.bytes >= FLUSH_BYTES) this.flush()
  }

  /** Writes `buf` now, behind whatever is queued (one write when the queue is empty). */
  sendNow (buf: Buffer): void {
    if (this.slot < 0) {
      this.put(buf)
      return
    }
    this.send(buf)
    this.flush()
  }

  /**
   * Hands the queued bytes to the socket. A destroyed socket drops them (its write fails quietly:
   * the connection listens for 'error').
   */
  flush (): void {
    const slot = this.slot
    if (slot < 0) return
    const queued = duePieces[slot]!
    duePieces[slot] = null
    const bytes = this.bytes
    this.slot = -1
    this.bytes = 0
    if (!Array.isArray(queued)) {
      this.put(queued)
      return
    }
    if (bytes <= FLUSH_BYTES) {
      const joined = Buffer.allocUnsafe(bytes)
      let p = 0
      for (let i = 0; i < queued.length; i++) {
        queued[i]!.copy(joined, p)
        p += queued[i]!.length
      }
      this.put(joined)
      return
    }
    const socket = this.socket
    socket.cork()
    for (let i = 0; i < queued.length; i++) socket.write(queued[i]!)
    socket.uncork()
    this.nodeFull = socket.writableNeedDrain
  }

  /** One buffer to the kernel: through the handle when node holds nothing for this socket. */
  private put (buf: Buffer): void {
    const socket = this.socket
    const handle = this.nodeFull ? null : writableHandleOf(socket)
    if (handle !== null) {
      let req = this.req
      if (req === null || req.handle !== handle) {
        req = handleWrites!.request(handle, afterHandleWrite) as OwnedWriteReq
        req.owner = this
        this.req = req
      }
      const err = handle.writeBuffer(req, buf)
      if (err !== 0) {
        socket.destroy(writeError(err))
        return
      }
      if (handleWrites!.lastWasAsync()) {
        // libuv holds the rest and this request until it calls afterHandleWrite.
        req.buffer = buf
        req.bytes = buf.length
        this.inLibuv += buf.length
        this.req = null
      }
      return
    }
    this.nodeFull = !socket.write(buf)
  }

  /** A handle write libuv had queued finished with `status` (0, or a negative errno). */
  handleWriteDone (bytes: number, status: number): void {
    this.inLibuv -= bytes
    if (status < 0) {
      this.socket.destroy(writeError(status))
      return
    }
    if (this.inLibuv === 0 && !this.nodeFull) this.onDrain?.()
  }

  /** The socket emitted 'drain': node's buffer went to the kernel. */
  socketDrained (): void {
    this.nodeFull = false
    if (this.inLibuv === 0) this.onDrain?.()
  }

  /** Bytes given to this connection and not yet taken by the kernel exceed `limit`. */
  backlogOver (limit: number): boolean {
    return (this.blocked || this.bytes > limit) && this.backlog > limit
  }
}


/** Sockets corked during this tick, uncorked together at its end (one nextTick for all of them). */
let corked: Socket[] = []
function uncorkAll (): void {
  const list = corked
  corked = []
  for (let i = 0; i < list.length; i++) list[i]!.uncork()
}

/**
 * Corks a socket until the end of this tick, so what a response writes in one tick leaves in one
 * writev: for node:http's responses (the SSE chunk writer), whose sockets have no TickWrites.
 */
export function corkForTick (socket: Socket): void {
  if (socket.writableCorked !== 0) return
  socket.cork()
  if (corked.length === 0) process.nextTick(uncorkAll)
  corked.push(socket)
}
