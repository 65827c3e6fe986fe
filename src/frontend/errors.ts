import { Buffer } from 'node:buffer'
import type { HttpRes } from './http1/server.js'
import { MethodNotAllowedError, SwitchyardError } from '../shared/errors.js'

/** Anything thrown on the request path, as a SwitchyardError (unknown errors become a 500). */
export function asSwitchyardError (err: unknown): SwitchyardError {
  if (err instanceof SwitchyardError) return err
  return new SwitchyardError('SWY_ERR_INTERNAL', `internal error: ${(err as Error)?.message ?? String(err)}`, { status: 500, type: 'server_error', apiCode: 'internal_error', cause: err })
}

/** Writes `{"error":{...}}` with the error's status (and Retry-After when it has one). */
export function sendError (res: HttpRes, err: SwitchyardError, requestId: string | null): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = JSON.stringify(err.toJSON())
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body)
  }
  if (requestId !== null) headers['x-request-id'] = requestId
  if (err.retryAfter !== null) headers['retry-after'] = Math.max(1, Math.ceil(err.retryAfter))
  if (err instanceof MethodNotAllowedError) headers.allow = err.allow
  // The rest of an oversized body is not worth reading: close the connection after answering.
  if (err.status === 413) headers.connection = 'close'
  res.writeHead(err.status, headers)
  res.end(body)
}

/** The SSE event that ends a stream which failed after it started (never a silent truncation). */
export function sseErrorEvent (err: SwitchyardError): string {
  return `data: ${JSON.stringify(err.toJSON())}\n\n`
}
