/**
 * Per-worker request counts from the gateway's Prometheus endpoint: scraped before and after a
 * run, the deltas show how the router spread the load. Servers without the metric (an engine
 * benchmarked directly) give null and the report leaves the section out.
 */
import type { Dispatcher } from 'undici'

const METRIC = 'switchyard_worker_requests_total'
const SCRAPE_TIMEOUT_MS = 5000
const MAX_BODY = 8 * 1024 * 1024

export interface WorkerCounts {
  before: Record<string, number>
  after: Record<string, number>
  delta: Record<string, number>
}

/** `worker="..."` label values and sample values of the metric, from Prometheus text format. */
export function parseWorkerRequests (text: string): Record<string, number> | null {
  const out: Record<string, number> = {}
  let found = false
  for (const line of text.split('\n')) {
    if (!line.startsWith(METRIC + '{')) continue
    const close = line.lastIndexOf('}')
    if (close < 0) continue
    const m = /(?:^|[{,])\s*worker="((?:[^"\\]|\\.)*)"/.exec(line.slice(METRIC.length, close + 1))
    if (m === null) continue
    const value = Number(line.slice(close + 1).trim().split(/\s+/)[0])
    if (!Number.isFinite(value)) continue
    const worker = m[1]!.replace(/\\(.)/g, (_, c: string) => c === 'n' ? '\n' : c)
    out[worker] = (out[worker] ?? 0) + value
    found = true
  }
  return found ? out : null
}

/** GET /metrics through the run's dispatcher; null on any failure (the section is optional). */
export async function scrapeWorkerRequests (dispatcher: Dispatcher, basePath: string, headers: Record<string, string>): Promise<Record<string, number> | null> {
  try {
    const res = await dispatcher.request({
      method: 'GET',
      path: basePath + '/metrics',
      headers: headers.authorization === undefined ? {} : { authorization: headers.authorization },
      headersTimeout: SCRAPE_TIMEOUT_MS,
      bodyTimeout: SCRAPE_TIMEOUT_MS
    })
    if (res.statusCode !== 200) {
      await res.body.dump()
      return null
    }
    const len = Number(res.headers['content-length'] ?? 0)
    if (len > MAX_BODY) {
      await res.body.dump()
      return null
    }
    return parseWorkerRequests(await res.body.text())
  } catch {
    return null
  }
}

export function workerDelta (before: Record<string, number> | null, after: Record<string, number> | null): WorkerCounts | null {
  if (after === null) return null
  const b = before ?? {}
  const delta: Record<string, number> = {}
  for (const [w, v] of Object.entries(after)) delta[w] = v - (b[w] ?? 0)
  return { before: b, after, delta }
}
