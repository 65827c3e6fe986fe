/**
 * Reading request traces: Mooncake JSONL (`timestamp` ms, `input_length`, `output_length`,
 * `hash_ids` of 512-token prefix-chained blocks) and Azure LLM inference CSV
 * (`TIMESTAMP,ContextTokens,GeneratedTokens`, absolute times, no prefix information).
 * See /work/shared/traces/README.md for both formats.
 */
import { readFile } from 'node:fs/promises'
import { TraceError } from './errors.js'
import type { TraceFormat } from './options.js'

export interface TraceRecord {
  /** Arrival, ms from the first record of the file. */
  timestampMs: number
  inputLength: number
  outputLength: number
  /** Prefix-chained block ids (Mooncake); null when the format has none (Azure). */
  hashIds: number[] | null
}

export async function readTrace (path: string, format: TraceFormat): Promise<TraceRecord[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new TraceError(`cannot read trace ${path}: ${(err as Error).message}`, { cause: err })
  }
  const kind = format === 'auto' ? detectFormat(path, text) : format
  const records = kind === 'mooncake' ? parseMooncake(text, path) : parseAzure(text, path)
  if (records.length === 0) throw new TraceError(`trace ${path} holds no records`)
  // Replay relies on arrival order; both public traces are sorted, but a hand-made one may not be.
  for (let i = 1; i < records.length; i++) {
    if (records[i]!.timestampMs < records[i - 1]!.timestampMs) {
      records.sort((a, b) => a.timestampMs - b.timestampMs)
      break
    }
  }
  // An unsorted Azure file measured times from its first row, not its earliest.
  const origin = Math.min(0, records[0]!.timestampMs)
  if (origin < 0) for (const r of records) r.timestampMs -= origin
  return records
}

function detectFormat (path: string, text: string): 'mooncake' | 'azure' {
  if (/\.jsonl?$/i.test(path)) return 'mooncake'
  if (/\.csv$/i.test(path)) return 'azure'
  return text.trimStart().startsWith('{') ? 'mooncake' : 'azure'
}

function count (v: unknown, what: string, where: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new TraceError(`${where}: ${what} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`)
  return v
}

export function parseMooncake (text: string, name = 'trace'): TraceRecord[] {
  const out: TraceRecord[] = []
  let lineNo = 0
  for (const line of text.split('\n')) {
    lineNo++
    if (line.trim() === '') continue
    const where = `${name}:${lineNo}`
    let r: Record<string, unknown>
    try {
      r = JSON.parse(line) as Record<string, unknown>
    } catch (err) {
      throw new TraceError(`${where}: not JSON (${(err as Error).message})`, { cause: err })
    }
    if (r === null || typeof r !== 'object') throw new TraceError(`${where}: expected an object`)
    const ts = r.timestamp
    if (typeof ts !== 'number' || !Number.isFinite(ts) || ts < 0) throw new TraceError(`${where}: timestamp must be a number of ms ≥ 0, got ${JSON.stringify(ts)}`)
    const hashIds = r.hash_ids
    if (hashIds !== undefined && (!Array.isArray(hashIds) || !hashIds.every((h) => typeof h === 'number' && Number.isInteger(h) && h >= 0))) {
      throw new TraceError(`${where}: hash_ids must be an array of non-negative integers`)
    }
    out.push({
      timestampMs: ts,
      inputLength: count(r.input_length, 'input_length', where, 1),
      // max_tokens must be ≥ 1; a 0-token answer still has to be asked for as 1.
      outputLength: Math.max(1, count(r.output_length, 'output_length', where, 0)),
      hashIds: hashIds === undefined ? null : hashIds as number[]
    })
  }
  return out
}

// `2023-11-16 18:17:03.9799600`: no time zone is stated; UTC is as good as any for differences.
const AZURE_TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/

export function parseAzure (text: string, name = 'trace'): TraceRecord[] {
  const lines = text.split('\n')
  const header = (lines[0] ?? '').trim().split(',').map((h) => h.trim().toLowerCase())
  const iTime = header.indexOf('timestamp')
  const iIn = header.indexOf('contexttokens')
  const iOut = header.indexOf('generatedtokens')
  if (iTime < 0 || iIn < 0 || iOut < 0) throw new TraceError(`${name}:1: expected the header TIMESTAMP,ContextTokens,GeneratedTokens, got ${JSON.stringify(lines[0] ?? '')}`)
  const out: TraceRecord[] = []
  let first: number | null = null
  for (let n = 1; n < lines.length; n++) {
    const line = lines[n]!.trim()
    if (line === '') continue
    const where = `${name}:${n + 1}`
    const cols = line.split(',')
    const m = AZURE_TIME.exec((cols[iTime] ?? '').trim())
    if (m === null) throw new TraceError(`${where}: TIMESTAMP must look like 2023-11-16 18:17:03.9799600, got ${JSON.stringify(cols[iTime])}`)
    const frac = m[7] ?? ''
    const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) + (frac === '' ? 0 : Number('0.' + frac) * 1000)
    first ??= ms
    out.push({
      timestampMs: ms - first,
      inputLength: count(Number(cols[iIn]), 'ContextTokens', where, 1),
      outputLength: Math.max(1, count(Number(cols[iOut]), 'GeneratedTokens', where, 0)),
      hashIds: null
    })
  }
  return out
}
