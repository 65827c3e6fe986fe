/**
 * From per-request records to the figures we report: latency distributions, throughput, goodput
 * under SLOs, cached-token ratio, errors, per-priority breakdowns and a binned timeline.
 */
import type { PriorityName } from './options.js'
import { PRIORITY_NAMES } from './options.js'
import type { RequestRecord } from './records.js'
import { cdfOf, sortedOf, statsOf, type Samples, type Stats } from './stats.js'

export interface Slo {
  ttftMs: number | null
  tpotMs: number | null
  e2eMs: number | null
}

export interface RunSummary {
  requests: { total: number, ok: number, failed: number }
  /** From the first send to the last answer. */
  durationS: number
  requestThroughput: number
  outputTokenThroughput: number
  inputTokenThroughput: number
  /** Requests that succeeded within every SLO given; null when no SLO was given. */
  goodput: { slo: Slo, requests: number, perSecond: number, ratio: number } | null
  latency: {
    ttftMs: Stats | null
    /** Every gap between content chunks of every request. */
    itlMs: Stats | null
    /** Each request's mean gap. */
    itlPerRequestMs: Stats | null
    tpotMs: Stats | null
    e2eMs: Stats | null
  }
  tokens: {
    input: Stats | null
    prompt: Stats | null
    output: Stats | null
    /** Sum of cached_tokens / sum of prompt_tokens over the answers that reported cached_tokens. */
    cachedRatio: number | null
  }
  errors: {
    byStatus: Record<string, number>
    byKind: Record<string, number>
    byType: Record<string, number>
    /** The first few distinct messages. */
    examples: string[]
  }
}

export interface Timeline {
  binMs: number
  /** Start of each bin, ms from the run's start. */
  t: number[]
  started: number[]
  completed: number[]
  failed: number[]
  /** Output tokens, spread evenly over each request's streaming time. */
  outputTokens: number[]
  /** Mean requests in flight over the bin. */
  inflight: number[]
}

const EXAMPLE_ERRORS = 5

function statsFor (records: readonly RequestRecord[], pick: (r: RequestRecord) => number | null): Stats | null {
  const vals: number[] = []
  for (const r of records) {
    const v = pick(r)
    if (v !== null) vals.push(v)
  }
  return statsOf(sortedOf(vals))
}

function meetsSlo (r: RequestRecord, slo: Slo): boolean {
  if (!r.ok) return false
  if (slo.ttftMs !== null && (r.ttftMs === null || r.ttftMs > slo.ttftMs)) return false
  // A one-token answer has no TPOT: nothing to violate.
  if (slo.tpotMs !== null && r.tpotMs !== null && r.tpotMs > slo.tpotMs) return false
  if (slo.e2eMs !== null && r.e2eMs > slo.e2eMs) return false
  return true
}

export function runDurationMs (records: readonly RequestRecord[]): number {
  let first = Infinity
  let last = -Infinity
  for (const r of records) {
    if (r.startMs < first) first = r.startMs
    if (r.startMs + r.e2eMs > last) last = r.startMs + r.e2eMs
  }
  return records.length === 0 ? 0 : last - first
}

/** `itls` is the run's every inter-token gap; for a subset (a priority class) pass null to use per-request means only. */
export function summarize (records: readonly RequestRecord[], durationMs: number, slo: Slo, itls: Samples | null): RunSummary {
  const ok = records.filter((r) => r.ok)
  const durationS = durationMs / 1000
  let outTokens = 0
  let inTokens = 0
  let cached = 0
  let cachedPrompt = 0
  for (const r of ok) {
    outTokens += r.outputTokens
    inTokens += r.promptTokens ?? r.inputTokens
    if (r.cachedTokens !== null && r.promptTokens !== null) {
      cached += r.cachedTokens
      cachedPrompt += r.promptTokens
    }
  }
  const hasSlo = slo.ttftMs !== null || slo.tpotMs !== null || slo.e2eMs !== null
  const good = hasSlo ? ok.filter((r) => meetsSlo(r, slo)).length : 0
  const byStatus: Record<string, number> = {}
  const byKind: Record<string, number> = {}
  const byType: Record<string, number> = {}
  const examples: string[] = []
  for (const r of records) {
    if (r.error === null) continue
    const status = r.error.status === null ? 'none' : String(r.error.status)
    byStatus[status] = (byStatus[status] ?? 0) + 1
    byKind[r.error.kind] = (byKind[r.error.kind] ?? 0) + 1
    const type = r.error.type ?? r.error.kind
    byType[type] = (byType[type] ?? 0) + 1
    const line = `${r.error.kind}${r.error.status === null ? '' : ' ' + r.error.status}: ${r.error.message}`
    if (examples.length < EXAMPLE_ERRORS && !examples.includes(line)) examples.push(line)
  }
  const perSecond = (n: number): number => durationS > 0 ? n / durationS : 0
  return {
    requests: { total: records.length, ok: ok.length, failed: records.length - ok.length },
    durationS,
    requestThroughput: perSecond(ok.length),
    outputTokenThroughput: perSecond(outTokens),
    inputTokenThroughput: perSecond(inTokens),
    goodput: hasSlo ? { slo, requests: good, perSecond: perSecond(good), ratio: records.length === 0 ? 0 : good / records.length } : null,
    latency: {
      ttftMs: statsFor(ok, (r) => r.ttftMs),
      itlMs: itls === null ? null : statsOf(itls.sorted()),
      itlPerRequestMs: statsFor(ok, (r) => r.itlMeanMs),
      tpotMs: statsFor(ok, (r) => r.tpotMs),
      e2eMs: statsFor(ok, (r) => r.e2eMs)
    },
    tokens: {
      input: statsFor(records, (r) => r.inputTokens),
      prompt: statsFor(ok, (r) => r.promptTokens),
      output: statsFor(ok, (r) => r.outputTokens),
      cachedRatio: cachedPrompt > 0 ? cached / cachedPrompt : null
    },
    errors: { byStatus, byKind, byType, examples }
  }
}

export function summarizeByPriority (records: readonly RequestRecord[], durationMs: number, slo: Slo): Partial<Record<PriorityName, RunSummary>> | null {
  if (!records.some((r) => r.priority !== null)) return null
  const out: Partial<Record<PriorityName, RunSummary>> = {}
  for (const p of PRIORITY_NAMES) {
    const subset = records.filter((r) => r.priority === p)
    if (subset.length > 0) out[p] = summarize(subset, durationMs, slo, null)
  }
  return out
}

export interface Cdfs {
  ttftMs: number[]
  itlMs: number[]
  e2eMs: number[]
  byPriority: Partial<Record<PriorityName, { ttftMs: number[], e2eMs: number[] }>> | null
}

export function cdfs (records: readonly RequestRecord[], itls: Samples): Cdfs {
  const ok = records.filter((r) => r.ok)
  const of = (rs: readonly RequestRecord[], pick: (r: RequestRecord) => number | null): number[] => {
    const vals: number[] = []
    for (const r of rs) {
      const v = pick(r)
      if (v !== null) vals.push(v)
    }
    return cdfOf(sortedOf(vals))
  }
  let byPriority: Cdfs['byPriority'] = null
  if (records.some((r) => r.priority !== null)) {
    byPriority = {}
    for (const p of PRIORITY_NAMES) {
      const subset = ok.filter((r) => r.priority === p)
      if (subset.length > 0) byPriority[p] = { ttftMs: of(subset, (r) => r.ttftMs), e2eMs: of(subset, (r) => r.e2eMs) }
    }
  }
  return { ttftMs: of(ok, (r) => r.ttftMs), itlMs: cdfOf(itls.sorted()), e2eMs: of(ok, (r) => r.e2eMs), byPriority }
}

const NICE_BINS_MS = [10, 20, 50, 100, 250, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000]
const TARGET_BINS = 120

export function timeline (records: readonly RequestRecord[]): Timeline {
  let end = 0
  for (const r of records) end = Math.max(end, r.startMs + r.e2eMs)
  const binMs = NICE_BINS_MS.find((b) => end / b <= TARGET_BINS) ?? NICE_BINS_MS[NICE_BINS_MS.length - 1]!
  const n = Math.max(1, Math.ceil(end / binMs))
  const z = (): number[] => new Array<number>(n).fill(0)
  const tl: Timeline = { binMs, t: Array.from({ length: n }, (_, i) => i * binMs), started: z(), completed: z(), failed: z(), outputTokens: z(), inflight: z() }
  const bin = (ms: number): number => Math.min(n - 1, Math.max(0, Math.floor(ms / binMs)))
  for (const r of records) {
    const stop = r.startMs + r.e2eMs
    tl.started[bin(r.startMs)]!++
    if (r.ok) tl.completed[bin(stop)]!++
    else tl.failed[bin(stop)]!++
    spread(tl.inflight, binMs, r.startMs, stop, (stop - r.startMs) / binMs)
    const from = r.ttftMs === null ? stop : r.startMs + r.ttftMs
    if (r.outputTokens > 0) spread(tl.outputTokens, binMs, from, stop, r.outputTokens)
  }
  for (let i = 0; i < n; i++) tl.inflight[i] = Math.round(tl.inflight[i]! * 100) / 100
  for (let i = 0; i < n; i++) tl.outputTokens[i] = Math.round(tl.outputTokens[i]!)
  return tl
}

/** Adds `amount` over [from, to) to the bins in proportion to their overlap (all in the last bin if to ≤ from). */
function spread (bins: number[], binMs: number, from: number, to: number, amount: number): void {
  const n = bins.length
  if (to <= from) {
    const i = Math.min(n - 1, Math.max(0, Math.floor(to / binMs)))
    bins[i]! += amount
    return
  }
  const per = amount / (to - from)
  let i = Math.max(0, Math.floor(from / binMs))
  for (; i < n; i++) {
    const s = Math.max(from, i * binMs)
    const e = Math.min(to, (i + 1) * binMs)
    if (e <= s) break
    bins[i]! += per * (e - s)
  }
}
