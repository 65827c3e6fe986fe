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
 * Slow consumers: an engine cannot pause one sequence of its batch, so tokens a client does not
 * read pile up in the gateway. Past `limit` bytes queued on the socket the stream is cut
 * (`write` returns false) — NATS's slow-consumer rule, instead of unbounded memory.
 */
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** OutgoingMessage's own fields (undocumented, stable since Node 0.x): `headersSent` is true once writeHead stored them, `_headerSent` once they went out. */
interface ChunkedResponse { chunkedEncoding?: boolean, _headerSent?: boolean }

export class ChunkWriter {
  private readonly socket: Socket | null
  private readonly res: ServerResponse
  private readonly limit: number

  /** Call after the headers were written (writeHead); flushes them. */
  constructor (res: ServerResponse, limit: number) {
    this.res = res
    this.limit = limit
    if ((res as unknown as ChunkedResponse)._headerSent !== true) res.flushHeaders()
    const socket = res.socket
    const direct = socket !== null && !socket.destroyed && (socket as unknown as { _httpMessage: unknown })._httpMessage === res &&
      (res as unknown as ChunkedResponse).chunkedEncoding === true
    this.socket = direct ? socket : null
  }

  /** Writes one body chunk; false once the client has fallen more than `limit` bytes behind. */
  write (data: string): boolean {
    const socket = this.socket
    if (socket === null) {
      this.res.write(data)
      return this.res.writableLength <= this.limit
    }
    socket.write(Buffer.byteLength(data).toString(16) + '\r\n' + data + '\r\n')
    return socket.writableLength <= this.limit
  }
}
