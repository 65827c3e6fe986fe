/** The summary printed at the end of a run: a plain-text table, one screen. */
import type { LoadResult } from './results.js'
import type { Stats } from './stats.js'
import type { RunSummary } from './summary.js'

function f (v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-'
  return v.toFixed(digits)
}

function row (label: string, s: Stats | null): string {
  const cells = s === null ? ['-', '-', '-', '-', '-', '-'] : [f(s.mean), f(s.p50), f(s.p90), f(s.p99), f(s.max), String(s.count)]
  return label.padEnd(22) + cells.map((c) => c.padStart(10)).join('')
}

function counts (m: Record<string, number>): string {
  const e = Object.entries(m)
  return e.length === 0 ? 'none' : e.sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join(', ')
}

export function describeRun (r: LoadResult): string {
  const o = r.options
  const how = r.mode === 'closed'
    ? `closed loop c=${String(o.concurrency)}`
    : r.mode === 'poisson' ? `Poisson ${String(o.requestRate)} req/s` : `trace replay ×${String(o.traceSpeedup)}`
  return `${String(o.endpoint)}${o.stream === true ? ' stream' : ''}, ${how}, workload ${r.workload.kind}, tokenizer ${r.workload.tokenizer}`
}

function latencyRows (s: RunSummary): string[] {
  return [
    row('TTFT (ms)', s.latency.ttftMs),
    row('ITL (ms)', s.latency.itlMs),
    row('ITL per request (ms)', s.latency.itlPerRequestMs),
    row('TPOT (ms)', s.latency.tpotMs),
    row('E2E latency (ms)', s.latency.e2eMs),
    row('Prompt tokens (usage)', s.tokens.prompt),
    row('Output tokens', s.tokens.output)
  ]
}

export function formatSummary (r: LoadResult): string {
  const s = r.summary
  const lines: string[] = []
  lines.push(`switchyard bench: ${describeRun(r)}`)
  lines.push(`requests ${s.requests.total} (ok ${s.requests.ok}, failed ${s.requests.failed}) in ${f(s.durationS, 2)} s` + (r.warmupRequests > 0 ? `, after ${r.warmupRequests} warm-up` : ''))
  lines.push('')
  lines.push(''.padEnd(22) + ['mean', 'p50', 'p90', 'p99', 'max', 'n'].map((h) => h.padStart(10)).join(''))
  lines.push(...latencyRows(s))
  lines.push('')
  lines.push(`${'Request throughput'.padEnd(22)}${f(s.requestThroughput, 2)} req/s`)
  lines.push(`${'Output token tput'.padEnd(22)}${f(s.outputTokenThroughput, 1)} tok/s`)
  lines.push(`${'Input token tput'.padEnd(22)}${f(s.inputTokenThroughput, 1)} tok/s`)
  if (s.goodput !== null) {
    const slo = Object.entries(s.goodput.slo).filter(([, v]) => v !== null).map(([k, v]) => `${k.replace(/Ms$/, '')} ≤ ${String(v)} ms`).join(', ')
    lines.push(`${'Goodput'.padEnd(22)}${f(s.goodput.perSecond, 2)} req/s (${f(s.goodput.ratio * 100)}% of requests within ${slo})`)
  }
  if (s.tokens.cachedRatio !== null) lines.push(`${'Cached prompt tokens'.padEnd(22)}${f(s.tokens.cachedRatio * 100)}%`)
  lines.push(`${'Errors'.padEnd(22)}${s.requests.failed === 0 ? 'none' : `by status ${counts(s.errors.byStatus)}; by type ${counts(s.errors.byType)}`}`)
  for (const e of s.errors.examples) lines.push(`${''.padEnd(22)}${e}`)
  if (r.perPriority !== null) {
    lines.push('')
    lines.push('priority'.padEnd(10) + ['n', 'ok', 'TTFT p50', 'TTFT p99', 'E2E p50', 'E2E p99', 'req/s'].map((h) => h.padStart(10)).join(''))
    for (const [name, p] of Object.entries(r.perPriority)) {
      lines.push(`${name} (${String(r.priorityValues?.[name as 'high'] ?? '')})`.padEnd(10) + [
        String(p.requests.total), String(p.requests.ok), f(p.latency.ttftMs?.p50), f(p.latency.ttftMs?.p99), f(p.latency.e2eMs?.p50), f(p.latency.e2eMs?.p99), f(p.requestThroughput, 2)
      ].map((c) => c.padStart(10)).join(''))
    }
  }
  if (r.workers !== null) {
    lines.push('')
    lines.push(`${'Requests per worker'.padEnd(22)}${counts(r.workers.delta)}`)
  }
  const g = r.generator
  lines.push('')
  const perReq = s.requests.total > 0 ? (g.cpuMs.user + g.cpuMs.system) / s.requests.total : 0
  lines.push(`generator: dispatch lag p99 ${g.dispatchLagMs === null ? '-' : f(g.dispatchLagMs.p99, 2) + ' ms'}, event-loop delay p99 ${f(g.eventLoopDelayMs.p99, 1)} ms, CPU ${f(perReq, 3)} ms/request`)
  for (const w of g.warnings) lines.push(`WARNING: ${w}`)
  return lines.join('\n')
}
