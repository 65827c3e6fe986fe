import { Buffer } from 'node:buffer'
import type { IncomingMessage } from 'node:http'
import { SwitchyardError } from '../shared/errors.js'
import { Http1Request, type HttpReq } from './http1/server.js'

export function bodyTooLarge (limit: number): SwitchyardError {
  return new SwitchyardError('SWY_ERR_BODY_TOO_LARGE', `the request body is larger than ${limit} bytes (see --max-body-size)`, { status: 413, type: 'invalid_request_error', apiCode: 'request_too_large' })
}

/**
 * The body when the fast server read it already (no promise, no microtask turn on the hot path);
 * null when it must be read from the stream (`readBody`). Throws 413 past `limit`.
 */
export function bodyIfRead (req: HttpReq, limit: number): Buffer | null {
  if (!(req instanceof Http1Request)) return null
  if (req.contentLength > limit) throw bodyTooLarge(limit)
  return req.body
}

/**
 * Reads the whole body, failing with 413 as soon as it passes `limit` (a declared
 * content-length over the limit fails before reading anything).
 */
export function readBody (req: HttpReq, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(bodyTooLarge(limit))
  // The fast server read the body already (and left alone any it would refuse, caught above).
  if (req instanceof Http1Request) return Promise.resolve(req.body)
  return readStream(req as IncomingMessage, limit)
}

function readStream (req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        reject(bodyTooLarge(limit))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const onError = (err: Error): void => { cleanup(); reject(err) }
    const onClose = (): void => { cleanup(); reject(new Error('client closed the connection while sending the body')) }
    function cleanup (): void {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
  })
}
