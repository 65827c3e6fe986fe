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
 * The owner must flush before anything else touches the socket (end, hand-over), so bytes keep
 * their order.
 */
import type { Socket } from 'node:net'

/** Queued bytes past which a tick's pieces are written at once rather than at the tick's end. */
const FLUSH_BYTES = 16 * 1024

let due: TickWrites[] = []
function flushDue (): void {
  const list = due
  due = []
  for (let i = 0; i < list.length; i++) list[i]!.flush()
}

export class TickWrites {
  readonly socket: Socket
  private first: Buffer | null = null
  private more: Buffer[] | null = null
  /** Bytes queued and not yet handed to the socket. */
  bytes = 0
  /**
   * The socket's last write returned false: the kernel took less than it was given and node
   * buffers the rest. Until then a backlog check needs no getter (`socket.writableLength`).
   */
  blocked = false

  constructor (socket: Socket) {
    this.socket = socket
  }

  /** Queues `buf` for the end of this tick. */
  send (buf: Buffer): void {
    if (this.first === null) {
      this.first = buf
      this.bytes = buf.length
      if (due.length === 0) process.nextTick(flushDue)
      due.push(this)
      return
    }
    if (this.more === null) this.more = [buf]
    else this.more.push(buf)
    this.bytes += buf.length
    if (this.bytes >= FLUSH_BYTES) this.flush()
  }

  /** Writes `buf` now, behind whatever is queued (one write when the queue is empty). */
  sendNow (buf: Buffer): void {
    if (this.first === null) {
      this.blocked = !this.socket.write(buf)
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
    const first = this.first
    if (first === null) return
    const more = this.more
    const bytes = this.bytes
    this.first = null
    this.more = null
    this.bytes = 0
    const socket = this.socket
    if (more === null) {
      this.blocked = !socket.write(first)
      return
    }
    if (bytes <= FLUSH_BYTES) {
      const joined = Buffer.allocUnsafe(bytes)
      first.copy(joined, 0)
      let p = first.length
      for (let i = 0; i < more.length; i++) {
        more[i]!.copy(joined, p)
        p += more[i]!.length
      }
      this.blocked = !socket.write(joined)
      return
    }
    socket.cork()
    socket.write(first)
    for (let i = 0; i < more.length; i++) socket.write(more[i]!)
    socket.uncork()
    this.blocked = socket.writableNeedDrain
  }

  /** Bytes given to this connection and not yet taken by the kernel exceed `limit`. */
  backlogOver (limit: number): boolean {
    return (this.blocked || this.bytes > limit) && this.socket.writableLength + this.bytes > limit
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
