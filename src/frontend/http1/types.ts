import { Buffer } from 'node:buffer'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'

/**
 * What the gateway's handlers read from a request. Both node's IncomingMessage (connections the
 * fast server handed over) and `Http1Request` (the fast server's own) have it.
 */
export interface HttpReq {
  readonly method?: string | undefined
  readonly url?: string | undefined
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
}

/**
 * What the gateway's handlers do with a response: the part of node's ServerResponse they use,
 * so a ServerResponse and an `Http1Response` both fit.
 */
export interface HttpRes {
  statusCode: number
  readonly headersSent: boolean
  readonly writableEnded: boolean
  readonly writableFinished: boolean
  readonly writableLength: number
  readonly destroyed: boolean
  readonly socket: Socket | null
  writeHead: (status: number, headers?: OutgoingHttpHeaders) => unknown
  write: (chunk: string | Buffer) => boolean
  end: (chunk?: string | Buffer) => unknown
  destroy: (err?: Error) => unknown
  flushHeaders: () => void
  on: (event: 'close' | 'drain', listener: () => void) => unknown
  once: (event: 'close' | 'drain', listener: () => void) => unknown
  off: (event: 'close' | 'drain', listener: () => void) => unknown
}
