import { request } from 'undici'

/**
 * Control-plane calls to a worker, outside the per-worker pool so probes never queue behind
 * (or hold a slot from) user traffic.
 */

function authHeaders (apiKey: string | null): Record<string, string> {
  return apiKey === null ? {} : { authorization: `Bearer ${apiKey}` }
}

/** The model ids a worker serves, from its GET /v1/models. Throws with a reason on failure. */
export async function discoverModels (url: string, timeoutMs: number, apiKey: string | null): Promise<string[]> {
  const res = await request(url + '/v1/models', {
    method: 'GET',
    headers: authHeaders(apiKey),
    signal: AbortSignal.timeout(timeoutMs),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs
  })
  if (res.statusCode !== 200) {
    await res.body.dump()
    throw new Error(`GET /v1/models answered ${res.statusCode}`)
  }
  const doc = await res.body.json() as { data?: Array<{ id?: unknown }> }
  const ids = Array.isArray(doc?.data) ? doc.data.map(m => m?.id).filter((id): id is string => typeof id === 'string' && id !== '') : []
  if (ids.length === 0) throw new Error('GET /v1/models listed no model')
  return ids
}

/** One health probe: GET /health answering 2xx within the deadline. */
export async function probeHealth (url: string, timeoutMs: number, apiKey: string | null): Promise<boolean> {
  try {
    const res = await request(url + '/health', {
      method: 'GET',
      headers: authHeaders(apiKey),
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs
    })
    await res.body.dump()
    return res.statusCode >= 200 && res.statusCode < 300
  } catch {
    return false
  }
}
