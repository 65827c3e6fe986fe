/**
 * A worker record in the discovery bucket (DESIGN 4.6): what a gateway needs to route to a worker
 * it has never talked to. Stored as JSON (readable with `nats kv get switchyard-workers <key>`).
 */

import { Buffer } from 'node:buffer'

export const DEFAULT_BUCKET = 'switchyard-workers'
/** Records live this long without a refresh (the bucket's max age). */
export const DEFAULT_TTL_MS = 15_000

export interface WorkerRecord {
  id: string
  models: string[]
  /** HTTP base URL (OpenAI API), e.g. http://10.0.0.5:8000. */
  url: string
  /** Native transport address, swy://host:port, when the worker speaks it. */
  native: string | null
  /** Tokens per KV block. */
  block_size: number | null
  /** KV cache capacity, in blocks. */
  kv_blocks: number | null
  max_batched_tokens: number | null
  /** The worker publishes its KV events (and load) on the NATS event plane. */
  nats_events: boolean
  /** Otherwise, its ZMQ KV event endpoints, which gateways follow directly. */
  kv_events: string | null
  kv_replay: string | null
  labels: Record<string, string>
  /** When this registration started (ms since the epoch): a new value means the worker restarted. */
  started_at: number
  /**
   * How long the record stays valid without a refresh (ms), when shorter than the bucket's max
   * age: gateways age it by the smaller of the two. Null: the bucket's.
   */
  ttl_ms: number | null
}

export type WorkerRecordInit = Partial<WorkerRecord> & Pick<WorkerRecord, 'id' | 'url' | 'models'>

export function makeRecord (init: WorkerRecordInit): WorkerRecord {
  return {
    id: init.id,
    models: [...init.models],
    url: init.url,
    native: init.native ?? null,
    block_size: init.block_size ?? null,
    kv_blocks: init.kv_blocks ?? null,
    max_batched_tokens: init.max_batched_tokens ?? null,
    nats_events: init.nats_events ?? false,
    kv_events: init.kv_events ?? null,
    kv_replay: init.kv_replay ?? null,
    labels: { ...init.labels },
    started_at: init.started_at ?? Date.now(),
    ttl_ms: init.ttl_ms ?? null
  }
}

/**
 * Bucket keys allow `[-/_=.a-zA-Z0-9]` and dots only between tokens; worker ids are often
 * `host:port`. Everything but letters, digits, '-' and '_' becomes `=XX` (reversible).
 */
export function keyOf (id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, (c) => {
    const b = Buffer.from(c, 'utf8')
    let out = ''
    for (const x of b) out += '=' + x.toString(16).toUpperCase().padStart(2, '0')
    return out
  })
}

export function idOfKey (key: string): string {
  const bytes: number[] = []
  for (let i = 0; i < key.length; i++) {
    if (key[i] === '=' && /^[0-9A-F]{2}$/.test(key.slice(i + 1, i + 3))) {
      bytes.push(parseInt(key.slice(i + 1, i + 3), 16))
      i += 2
    } else bytes.push(key.charCodeAt(i))
  }
  return Buffer.from(bytes).toString('utf8')
}

const str = (v: unknown): string | null => typeof v === 'string' && v !== '' ? v : null
const int = (v: unknown): number | null => typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : null

/** Parses and validates a record; null (with the reason in `why`) when it is not one. */
export function parseRecord (data: string, why: string[] = []): WorkerRecord | null {
  let doc: unknown
  try {
    doc = JSON.parse(data)
  } catch {
    why.push('not JSON')
    return null
  }
  if (typeof doc !== 'object' || doc === null) { why.push('not an object'); return null }
  const d = doc as Record<string, unknown>
  const id = str(d.id)
  const url = str(d.url)
  if (id === null) why.push('no id')
  if (url === null || !/^https?:\/\//.test(url)) why.push('no http(s) url')
  const models = Array.isArray(d.models) ? d.models.filter((m): m is string => typeof m === 'string' && m !== '') : []
  if (id === null || url === null || why.length > 0) return null
  const labels: Record<string, string> = {}
  if (typeof d.labels === 'object' && d.labels !== null) {
    for (const [k, v] of Object.entries(d.labels)) if (typeof v === 'string') labels[k] = v
  }
  return {
    id,
    models,
    url: url.replace(/\/+$/, ''),
    native: str(d.native),
    block_size: int(d.block_size),
    kv_blocks: int(d.kv_blocks),
    max_batched_tokens: int(d.max_batched_tokens),
    nats_events: d.nats_events === true,
    kv_events: str(d.kv_events),
    kv_replay: str(d.kv_replay),
    labels,
    started_at: typeof d.started_at === 'number' ? d.started_at : 0,
    ttl_ms: int(d.ttl_ms)
  }
}

/** Two records route the same way (a refresh that changes nothing a gateway uses). */
export function sameRouting (a: WorkerRecord, b: WorkerRecord): boolean {
  return a.url === b.url && a.native === b.native && a.block_size === b.block_size && a.nats_events === b.nats_events &&
    a.kv_events === b.kv_events && a.kv_replay === b.kv_replay && a.started_at === b.started_at &&
    a.models.length === b.models.length && a.models.every((m, i) => m === b.models[i]) &&
    JSON.stringify(a.labels) === JSON.stringify(b.labels)
}
