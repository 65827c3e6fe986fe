import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

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
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const lower = name.toLowerCase()
    if (REQUEST_DROP.has(lower)) continue
    if (lower === 'authorization' && (dropAuth || workerKey !== null)) continue
    if (lower === 'content-type') {
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
