/**
 * The HTML report: one self-contained file (inline CSS and SVG, no script, no network) with the
 * summary, latency CDFs, throughput and in-flight over time, per-priority and per-worker
 * breakdowns, errors and the generator's own health.
 */
import type { PriorityName } from '../options.js'
import type { LoadResult } from '../results.js'
import type { Stats } from '../stats.js'
import type { RunSummary } from '../summary.js'
import { describeRun } from '../table.js'
import { barChart, cdfPoints, esc, lineChart, PALETTE, type Series } from './svg.js'

const PRIORITY_COLORS: Record<PriorityName, string> = { high: '#d62728', medium: '#ff7f0e', low: '#1f77b4' }

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 10px;text-align:right;border-bottom:1px solid #eee}
th:first-child,td:first-child{text-align:left}th{background:#f6f6f6;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.chart{background:#fff;border:1px solid #e5e5e5;border-radius:4px}
.chart .title{font-size:13px;font-weight:600;fill:#222}.chart .tick{font-size:11px;fill:#555}
.chart .label{font-size:12px;fill:#333}.chart .legend{font-size:11px;fill:#333}.chart .empty{font-size:13px;fill:#999}
.kpi{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}.kpi div{border:1px solid #e5e5e5;border-radius:4px;padding:8px 12px;min-width:150px}
.kpi b{display:block;font-size:20px}.kpi span{color:#666;font-size:12px}
.warn{background:#fff4e5;border:1px solid #f0b35a;padding:8px 12px;border-radius:4px;margin:8px 0}
pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:12px}
`

function f (v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits)
}

function statsRow (label: string, s: Stats | null): string {
  const c = s === null ? ['-', '-', '-', '-', '-', '-', '-'] : [f(s.mean), f(s.p50), f(s.p90), f(s.p95), f(s.p99), f(s.max), String(s.count)]
  return `<tr><td>${esc(label)}</td>${c.map((x) => `<td>${x}</td>`).join('')}</tr>`
}

function latencyTable (s: RunSummary): string {
  return '<table><tr><th></th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th><th>n</th></tr>' +
    statsRow('TTFT (ms)', s.latency.ttftMs) +
    statsRow('ITL, every gap (ms)', s.latency.itlMs) +
    statsRow('ITL, per-request mean (ms)', s.latency.itlPerRequestMs) +
    statsRow('TPOT (ms)', s.latency.tpotMs) +
    statsRow('End-to-end (ms)', s.latency.e2eMs) +
    statsRow('Input tokens (client)', s.tokens.input) +
    statsRow('Prompt tokens (usage)', s.tokens.prompt) +
    statsRow('Output tokens', s.tokens.output) +
    '</table>'
}

function kpis (s: RunSummary): string {
  const items: Array<[string, string]> = [
    [f(s.requestThroughput, 2), 'requests/s'],
    [f(s.outputTokenThroughput, 0), 'output tokens/s'],
    [f(s.inputTokenThroughput, 0), 'input tokens/s'],
    [`${s.requests.ok} / ${s.requests.total}`, 'ok / sent'],
    [f(s.latency.ttftMs?.p50), 'TTFT p50 (ms)'],
    [f(s.latency.e2eMs?.p50), 'E2E p50 (ms)']
  ]
  if (s.goodput !== null) items.push([f(s.goodput.perSecond, 2), `goodput req/s (${f(s.goodput.ratio * 100)}% within SLO)`])
  if (s.tokens.cachedRatio !== null) items.push([f(s.tokens.cachedRatio * 100) + '%', 'cached prompt tokens'])
  return '<div class="kpi">' + items.map(([v, l]) => `<div><b>${esc(v)}</b><span>${esc(l)}</span></div>`).join('') + '</div>'
}

function countTable (title: string, m: Record<string, number>): string {
  const rows = Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v}</td></tr>`).join('')
  return `<table><tr><th>${esc(title)}</th><th>requests</th></tr>${rows}</table>`
}

function cdfCharts (r: LoadResult): string {
  const one = (title: string, q: number[], name: string): string =>
    lineChart({ title, xLabel: 'milliseconds', yLabel: 'fraction of requests', yMax: 1, series: [{ name, color: PALETTE[0]!, points: cdfPoints(q) }] })
  return '<div class="grid">' +
    one('TTFT CDF', r.cdf.ttftMs, 'TTFT') +
    lineChart({ title: 'Inter-token latency CDF', xLabel: 'milliseconds', yLabel: 'fraction of gaps', yMax: 1, series: [{ name: 'ITL', color: PALETTE[2]!, points: cdfPoints(r.cdf.itlMs) }] }) +
    one('End-to-end latency CDF', r.cdf.e2eMs, 'E2E') +
    '</div>'
}

function timelineCharts (r: LoadResult): string {
  const tl = r.timeline
  const perS = 1000 / tl.binMs
  const xs = tl.t.map((t) => (t + tl.binMs / 2) / 1000)
  const pts = (ys: number[], scale = 1): Array<[number, number]> => xs.map((x, i) => [x, (ys[i] ?? 0) * scale])
  const tput: Series[] = [{ name: 'output tokens/s', color: PALETTE[0]!, points: pts(tl.outputTokens, perS) }]
  const reqs: Series[] = [
    { name: 'started/s', color: PALETTE[3]!, points: pts(tl.started, perS) },
    { name: 'completed/s', color: PALETTE[2]!, points: pts(tl.completed, perS) }
  ]
  if (tl.failed.some((v) => v > 0)) reqs.push({ name: 'failed/s', color: PALETTE[1]!, points: pts(tl.failed, perS) })
  return '<div class="grid">' +
    lineChart({ title: 'Output token throughput over time', xLabel: 'seconds since start', yLabel: 'tokens/s', series: tput }) +
    lineChart({ title: 'Requests over time', xLabel: 'seconds since start', yLabel: 'requests/s', series: reqs }) +
    lineChart({ title: 'Requests in flight', xLabel: 'seconds since start', yLabel: 'in flight (bin mean)', series: [{ name: 'in flight', color: PALETTE[4]!, points: pts(tl.inflight) }] }) +
    '</div>' + `<p class="sub">Bins of ${tl.binMs} ms.</p>`
}

function prioritySection (r: LoadResult): string {
  if (r.perPriority === null) return ''
  const rows = Object.entries(r.perPriority).map(([name, s]) =>
    `<tr><td>${esc(name)} (priority ${String(r.priorityValues?.[name as PriorityName] ?? '')})</td><td>${s.requests.total}</td><td>${s.requests.ok}</td>` +
    `<td>${f(s.latency.ttftMs?.p50)}</td><td>${f(s.latency.ttftMs?.p99)}</td><td>${f(s.latency.e2eMs?.p50)}</td><td>${f(s.latency.e2eMs?.p99)}</td>` +
    `<td>${f(s.requestThroughput, 2)}</td><td>${f(s.outputTokenThroughput, 0)}</td><td>${s.goodput === null ? '-' : f(s.goodput.ratio * 100) + '%'}</td></tr>`).join('')
  const series = (pick: 'ttftMs' | 'e2eMs'): Series[] => Object.entries(r.cdf.byPriority ?? {}).map(([name, c]) =>
    ({ name, color: PRIORITY_COLORS[name as PriorityName], points: cdfPoints(c[pick]) }))
  return '<h2>Per priority</h2>' +
    '<table><tr><th>class</th><th>sent</th><th>ok</th><th>TTFT p50</th><th>TTFT p99</th><th>E2E p50</th><th>E2E p99</th><th>req/s</th><th>tok/s</th><th>goodput</th></tr>' + rows + '</table>' +
    '<div class="grid">' +
    lineChart({ title: 'TTFT CDF by priority', xLabel: 'milliseconds', yLabel: 'fraction of requests', yMax: 1, series: series('ttftMs') }) +
    lineChart({ title: 'End-to-end CDF by priority', xLabel: 'milliseconds', yLabel: 'fraction of requests', yMax: 1, series: series('e2eMs') }) +
    '</div>'
}

function workerSection (r: LoadResult): string {
  if (r.workers === null) return ''
  const bars = Object.entries(r.workers.delta).sort((a, b) => a[0].localeCompare(b[0])).map(([label, value], i) => ({ label, value, color: PALETTE[i % PALETTE.length]! }))
  return '<h2>Requests per worker</h2><p class="sub">Deltas of switchyard_worker_requests_total over the measured run (attempts, retries included).</p>' +
    barChart('Requests per worker', bars, 'req') + countTable('worker', r.workers.delta)
}

function errorSection (s: RunSummary): string {
  if (s.requests.failed === 0) return '<h2>Errors</h2><p>None.</p>'
  return '<h2>Errors</h2><div class="grid">' + countTable('status', s.errors.byStatus) + countTable('kind', s.errors.byKind) + countTable('type', s.errors.byType) + '</div>' +
    (s.errors.examples.length > 0 ? '<pre>' + s.errors.examples.map(esc).join('\n') + '</pre>' : '')
}

function generatorSection (r: LoadResult): string {
  const g = r.generator
  const perReq = r.summary.requests.total > 0 ? (g.cpuMs.user + g.cpuMs.system) / r.summary.requests.total : 0
  return '<h2>Generator</h2><table><tr><th></th><th>value</th></tr>' +
    `<tr><td>dispatch lag p50 / p99 / max (ms)</td><td>${g.dispatchLagMs === null ? 'closed loop' : `${f(g.dispatchLagMs.p50, 2)} / ${f(g.dispatchLagMs.p99, 2)} / ${f(g.dispatchLagMs.max, 2)}`}</td></tr>` +
    `<tr><td>event-loop delay p50 / p99 / max (ms)</td><td>${f(g.eventLoopDelayMs.p50)} / ${f(g.eventLoopDelayMs.p99)} / ${f(g.eventLoopDelayMs.max)}</td></tr>` +
    `<tr><td>CPU per request (ms)</td><td>${f(perReq, 3)}</td></tr>` +
    `<tr><td>behind schedule</td><td>${g.behindSchedule ? 'yes' : 'no'}</td></tr></table>`
}

export function renderReport (r: LoadResult): string {
  const s = r.summary
  const warnings = r.generator.warnings.map((w) => `<div class="warn">${esc(w)}</div>`).join('')
  const options = JSON.stringify(r.options, null, 2)
  return '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>switchyard bench — ${esc(r.workload.kind)} — ${esc(r.startedAt)}</title><style>${CSS}</style></head><body>` +
    '<h1>switchyard bench</h1>' +
    `<p class="sub">${esc(describeRun(r))}<br>started ${esc(r.startedAt)}; ${s.requests.total} requests in ${f(s.durationS, 2)} s` +
    (r.warmupRequests > 0 ? `, after ${r.warmupRequests} warm-up requests` : '') +
    `; prompt lengths ${r.workload.exactPromptLengths ? 'exact' : 'approximate'}</p>` +
    warnings + kpis(s) +
    '<h2>Latency</h2>' + latencyTable(s) + cdfCharts(r) +
    '<h2>Over time</h2>' + timelineCharts(r) +
    prioritySection(r) + workerSection(r) + errorSection(s) + generatorSection(r) +
    `<h2>Options</h2><details><summary>resolved options</summary><pre>${esc(options)}</pre></details>` +
    '</body></html>'
}
