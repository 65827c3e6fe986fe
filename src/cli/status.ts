/**
 * `switchyard status --nats URL`: the fleet registered in the discovery bucket, as a table
 * (worker, models, url, record age), optionally with each worker's last load report from the
 * event plane (`--load`). Reads only: it never creates the bucket.
 */
import { parseArgs } from 'node:util'
import { Kvm, type KvEntry } from '@nats-io/kv'
import type { NatsConnection } from '@nats-io/transport-node'
import { DEFAULT_BUCKET, parseRecord, type WorkerRecord } from '../discovery/index.js'
import { checkNamespace, connectNats, LoadBoard, type LoadEntry } from '../events/index.js'
import { NATS_AUTH_FLAGS, natsAuthFlagsFrom, natsAuthFromFlags, natsAuthUsage, redactNatsUrl, type NatsAuthOptions } from '../events/nats.js'

export const STATUS_USAGE = `Usage: switchyard status --nats URL [flags]

Prints the workers registered in the NATS discovery bucket (docs/distributed.md).

  --nats URL            NATS server URL(s), comma-separated (or SWITCHYARD_NATS)
  --nats-namespace NS   event plane namespace, for --load (default "default")
${natsAuthUsage(22)}
  --bucket NAME         discovery bucket (default ${DEFAULT_BUCKET})
  --load                also wait briefly for each worker's load report (running, waiting, KV usage)
  --json                one JSON document instead of the table
  -h, --help            this text
`

export interface StatusIo {
  out?: (line: string) => void
  err?: (line: string) => void
  env?: Record<string, string | undefined>
}

export interface StatusRow {
  record: WorkerRecord
  /** Ms since the record was last written. */
  ageMs: number
  revision: number
  /** Older than its TTL (the record's `ttl_ms`, else the bucket's max age): gateways dropped it. */
  stale: boolean
  load: LoadEntry['report'] | null
}

/** Exit code 0 (fleet printed, possibly empty), 1 (NATS unreachable), 2 (bad flags). */
export async function runStatus (argv: string[], io: StatusIo = {}): Promise<number> {
  const out = io.out ?? ((l: string) => console.log(l))
  const err = io.err ?? ((l: string) => console.error(l))
  const env = io.env ?? process.env
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args: argv,
      options: { nats: { type: 'string' }, ...NATS_AUTH_FLAGS, 'nats-namespace': { type: 'string' }, bucket: { type: 'string' }, load: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false
    }).values
  } catch (e) {
    err(`switchyard status: ${(e as Error).message}\n\n${STATUS_USAGE}`)
    return 2
  }
  if (values.help === true) { out(STATUS_USAGE); return 0 }
  const url = typeof values.nats === 'string' && values.nats !== '' ? values.nats : env.SWITCHYARD_NATS
  if (url === undefined || url === '') { err(`switchyard status: --nats URL is required\n\n${STATUS_USAGE}`); return 2 }
  let ns: string
  try {
    ns = checkNamespace(typeof values['nats-namespace'] === 'string' ? values['nats-namespace'] : (env.SWITCHYARD_NATS_NAMESPACE ?? 'default'))
  } catch (e) {
    err(`switchyard status: ${(e as Error).message}`)
    return 2
  }
  let auth: NatsAuthOptions
  try {
    auth = natsAuthFromFlags(natsAuthFlagsFrom(values, env))
  } catch (e) {
    err(`switchyard status: ${(e as Error).message}`)
    return 2
  }
  const bucket = typeof values.bucket === 'string' ? values.bucket : DEFAULT_BUCKET
  let nats
  try {
    nats = await connectNats({ servers: url, name: 'switchyard-status', timeoutMs: 3_000, ...auth })
  } catch (e) {
    err(`switchyard status: cannot reach NATS at ${redactNatsUrl(url)}: ${natsErrorText(e, auth)}`)
    return 1
  }
  try {
    const board = values.load === true ? new LoadBoard(nats.nc, { namespace: ns }) : null
    const rows = await readFleet(nats.nc, bucket)
    if (rows === null) {
      if (values.json === true) out(JSON.stringify({ bucket, workers: [] }))
      else out(`no fleet: bucket ${bucket} does not exist (no worker or gateway has used this NATS yet)`)
      board?.close()
      return 0
    }
    if (board !== null) {
      // Load is published on change and on every pass (idle engines heartbeat once a second).
      const deadline = Date.now() + 1_500
      while (Date.now() < deadline && rows.some(r => board.get(r.record.id) === undefined)) await new Promise(resolve => setTimeout(resolve, 50))
      for (const r of rows) r.load = board.get(r.record.id)?.report ?? null
      board.close()
    }
    if (values.json === true) {
      out(JSON.stringify({ bucket, workers: rows.map(r => ({ ...r.record, age_ms: r.ageMs, stale: r.stale, revision: r.revision, load: r.load })) }))
    } else {
      for (const line of formatFleet(rows, values.load === true)) out(line)
    }
    return 0
  } finally {
    await nats.close()
  }
}

/** A connection failure's message, with the likely fix when it looks like a TLS problem. */
export function natsErrorText (e: unknown, auth: NatsAuthOptions = {}): string {
  const parts: string[] = []
  for (let x: unknown = e; x instanceof Error && parts.length < 3; x = x.cause) parts.push(x.message)
  const text = [...new Set(parts)].join(': ')
  if (/certificate|self.signed|unable to verify|UNABLE_TO_GET_ISSUER/i.test(text)) return `${text} (TLS: give the server's CA with --nats-tls-ca FILE)`
  // A server that requires a client certificate drops the handshake; the client only sees a timeout.
  if (/timeout/i.test(text) && auth.tls !== undefined && auth.tls !== null && auth.tls.certFile === undefined) {
    return `${text} (if the server verifies client certificates (mTLS), give --nats-tls-cert and --nats-tls-key)`
  }
  return text
}

/** The bucket's records, sorted by id; null when the bucket does not exist. */
export async function readFleet (nc: NatsConnection, bucket: string): Promise<StatusRow[] | null> {
  let kv
  let bucketTtl: number
  try {
    kv = await new Kvm(nc).open(bucket)
    bucketTtl = (await kv.status()).ttl
  } catch {
    return null
  }
  const keys: string[] = []
  for await (const k of await kv.keys()) keys.push(k)
  const entries = await Promise.all(keys.map(async k => await kv.get(k)))
  const now = Date.now()
  const rows: StatusRow[] = []
  for (const e of entries as Array<KvEntry | null>) {
    if (e === null || e.operation !== 'PUT') continue
    const rec = parseRecord(e.string())
    if (rec === null) continue
    const ageMs = Math.max(0, now - e.created.getTime())
    const ttl = Math.min(rec.ttl_ms ?? Infinity, bucketTtl > 0 ? bucketTtl : Infinity)
    rows.push({ record: rec, ageMs, revision: e.revision, stale: ageMs > ttl, load: null })
  }
  rows.sort((a, b) => a.record.id < b.record.id ? -1 : a.record.id > b.record.id ? 1 : 0)
  return rows
}

/** The table: one header line, one line per worker, a total line. */
export function formatFleet (rows: readonly StatusRow[], withLoad = false): string[] {
  const head = ['WORKER', 'MODELS', 'URL', 'AGE']
  if (withLoad) head.push('RUNNING', 'WAITING', 'KV')
  const table = [head]
  for (const r of rows) {
    const line = [r.record.id, r.record.models.join(',') || '-', r.record.url, `${(r.ageMs / 1000).toFixed(1)}s${r.stale ? ' stale' : ''}`]
    if (withLoad) {
      const l = r.load
      line.push(l === null ? '-' : String(l.running), l === null ? '-' : String(l.waiting), l === null ? '-' : `${(l.kv_usage * 100).toFixed(1)}%`)
    }
    table.push(line)
  }
  const widths = head.map((_h, i) => Math.max(...table.map(row => row[i]!.length)))
  const lines = table.map(row => row.map((c, i) => i === row.length - 1 ? c : c.padEnd(widths[i]!)).join('  '))
  lines.push(`${rows.length} worker${rows.length === 1 ? '' : 's'}`)
  return lines
}
