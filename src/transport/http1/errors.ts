/**
 * undici's own error classes, so errors from Http1Pool carry the names, codes and classes the
 * gateway already handles (classifyUpstreamError, `instanceof errors.SocketError`). undici's
 * typings declare these constructors with Error's signature; the real ones take these arguments.
 */
import type { Socket } from 'node:net'
import { errors } from 'undici'

const ctors = errors as unknown as {
  SocketError: new (message: string, socket: unknown) => errors.SocketError
  HTTPParserError: new (message: string, code: string) => errors.HTTPParserError
}

/** `code` is the llhttp name without its `HPE_` prefix (the error's code gets it). */
export function parserError (message: string, code: string): Error {
  return new ctors.HTTPParserError(message, code)
}

/** UND_ERR_SOCKET with undici's socket info. */
export function socketError (message: string, s: Socket | null): Error {
  return new ctors.SocketError(message, s === null
    ? null
    : {
        localAddress: s.localAddress,
        localPort: s.localPort,
        remoteAddress: s.remoteAddress,
        remotePort: s.remotePort,
        remoteFamily: s.remoteFamily,
        timeout: s.timeout,
        bytesWritten: s.bytesWritten,
        bytesRead: s.bytesRead
      })
}

export { errors }
