import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { HeaderLookup } from '../routing/policy.js'
import { Http1Request, type HttpReq } from './http1/server.js'
import { firstValue } from '../shared/http-fields.js'

/**
 * Hop-by-hop headers (RFC 9110 7.6.1) and the ones the gateway sets itself; everything else
 * passes through in both directions untouched.
 */
const REQUEST_DROP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'host', 'content-length', 'x-request-id', 'expect'
])

const RESPONSE_DROP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'x-request-id', 'date'
])

/**
 * Upstream request headers as a flat [name, value, ...] list built from the client's rawHeaders
 * (no object per request, names kept as sent). `dropAuth` removes the client's Authorization when
 * it was the gateway's own key; `workerKey` sets the worker's key instead.
 */
export function upstreamHeaders (raw: string[], requestId: string, dropAuth: boolean, workerKey: string | null, bodyRewritten: boolean): string[] {
  const out: string[] = []
  let hasType = false
  let hasAuth = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const lower = name.toLowerCase()
    if (REQUEST_DROP.has(lower)) continue
    // Both are first-wins in node's header object: a repeat is not forwarded either.
    if (lower === 'authorization') {
      if (dropAuth || workerKey !== null || hasAuth) continue
      hasAuth = true
    } else if (lower === 'content-type') {
      if (hasType) continue
      hasType = true
      if (bodyRewritten) { out.push(name, 'application/json'); continue }
    }
    out.push(name, raw[i + 1]!)
  }
  if (!hasType) out.push('content-type', 'application/json')
  if (workerKey !== null) out.push('authorization', `Bearer ${workerKey}`)
  out.push('x-request-id', requestId)
  return out
}

/**
 * The upstream request's header lines (`name: value\r\n` each; the transport adds host and
 * content-length). From the fast server's request, its field lines go through as bytes
 * (`forward`, cut during the parse) with the few the proxy sets appended; from node:http's,
 * through `upstreamHeaders`.
 */
export function upstreamHeaderBlock (req: HttpReq, requestId: string, dropAuth: boolean, workerKey: string | null, bodyRewritten: boolean): string {
  if (req instanceof Http1Request) {
    const type = req.contentType
    let out = req.forward + 'content-type: ' + (bodyRewritten || type === undefined ? 'application/json' : type) + '\r\n'
    if (workerKey !== null) out += 'authorization: Bearer ' + workerKey + '\r\n'
    else if (!dropAuth && req.authorization !== undefined) out += 'authorization: ' + req.authorization + '\r\n'
    return out + 'x-request-id: ' + requestId + '\r\n'
  }
  const h = upstreamHeaders(req.rawHeaders, requestId, dropAuth, workerKey, bodyRewritten)
  let out = ''
  for (let i = 0; i < h.length; i += 2) out += h[i]! + ': ' + h[i + 1]! + '\r\n'
  return out
}

/** What a policy reads of a request's headers: the fast request itself; node's header object behind a lookup. */
export function headerLookup (req: HttpReq): HeaderLookup {
  if (req instanceof Http1Request) return req
  const h = req.headers
  return { get: (name) => firstValue(h[name]) }
}

/** Client response headers from the worker's, with the request id added. */
export function clientHeaders (up: IncomingHttpHeaders, requestId: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const name in up) {
    if (RESPONSE_DROP.has(name)) continue
    const v = up[name]
    if (v !== undefined) out[name] = v
  }
  out['x-request-id'] = requestId
  return out
}
