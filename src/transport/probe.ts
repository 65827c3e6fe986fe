import { connect } from 'node:net'
import { request } from 'undici'

/**
 * Control-plane calls to a worker, outside the per-worker pool so probes never queue behind
 * (or hold a slot from) user traffic.
 */

function authHeaders (apiKey: string | null): Record<string, string> {
  return apiKey === null ? {} : { authorization: `Bearer ${apiKey}` }
}

/** What a worker's GET /v1/models tells: its models, and the dispatch window it reports, if any. */
export interface ModelCard {
  models: string[]
  /**
   * From a model entry's `capacity` {max_num_seqs, kv_cache_tokens} (the mock engine sends it;
   * vLLM does not, so its windows come from configuration).
   */
  window: { requests: number | null, tokens: number | null } | null
  /** swy://host:port from a model entry's `native_url` (the mock engine advertises its native port); null: none. */
  nativeUrl: string | null
}

function positive (v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null
}

/** Reads GET /v1/models. Throws with a reason on failure. */
export async function discoverModelCard (url: string, timeoutMs: number, apiKey: string | null): Promise<ModelCard> {
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
  const doc = await res.body.json() as { data?: Array<{ id?: unknown, native_url?: unknown, capacity?: { max_num_seqs?: unknown, kv_cache_tokens?: unknown } }> }
  const data = Array.isArray(doc?.data) ? doc.data : []
  const ids = data.map(m => m?.id).filter((id): id is string => typeof id === 'string' && id !== '')
  if (ids.length === 0) throw new Error('GET /v1/models listed no model')
  const cap = data.find(m => m?.capacity !== undefined && m.capacity !== null)?.capacity
  const window = cap === undefined ? null : { requests: positive(cap.max_num_seqs), tokens: positive(cap.kv_cache_tokens) }
  const native = data.find(m => typeof m?.native_url === 'string' && /^swy:\/\/[^/]+:\d+$/.test(m.native_url))?.native_url as string | undefined
  return { models: ids, window, nativeUrl: native ?? null }
}

/** The model ids a worker serves, from its GET /v1/models. Throws with a reason on failure. */
export async function discoverModels (url: string, timeoutMs: number, apiKey: string | null): Promise<string[]> {
  return (await discoverModelCard(url, timeoutMs, apiKey)).models
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

/** A native-only worker's probe: a TCP connection to swy://host:port opens within the deadline. */
export function probeTcp (url: string, timeoutMs: number): Promise<boolean> {
  const u = new URL(url)
  return new Promise(resolve => {
    const socket = connect(Number(u.port), u.hostname)
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
