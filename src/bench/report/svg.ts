/**
 * Small SVG charts rendered to strings (the report is one self-contained file: no script, no
 * network). Line charts for CDFs and time series, horizontal bars for counts.
 */

export interface Series {
  name: string
  color: string
  points: ReadonlyArray<readonly [number, number]>
}

export interface LineChartSpec {
  title: string
  xLabel: string
  yLabel: string
  series: readonly Series[]
  /** Fixed y range (CDFs: 0..1); default from the data, starting at 0. */
  yMax?: number
  width?: number
  height?: number
}

export interface Bar {
  label: string
  value: number
  color?: string
}

const PAD = { left: 58, right: 16, top: 46, bottom: 42 }
const AXIS = '#555'
const GRID = '#e3e3e3'
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf']

export function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks (lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) hi = lo + 1
  const raw = (hi - lo) / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag
  const out: number[] = []
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step)
  return out
}

function fmtTick (v: number): string {
  if (v === 0) return '0'
  const a = Math.abs(v)
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M'
  if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k'
  if (a >= 100) return v.toFixed(0)
  if (a >= 1) return String(Math.round(v * 100) / 100)
  return String(Math.round(v * 1000) / 1000)
}

function frame (width: number, height: number, title: string, body: string): string {
  return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">` +
    `<text x="${width / 2}" y="20" text-anchor="middle" class="title">${esc(title)}</text>${body}</svg>`
}

export function lineChart (spec: LineChartSpec): string {
  const width = spec.width ?? 380
  const height = spec.height ?? 280
  const pw = width - PAD.left - PAD.right
  const ph = height - PAD.top - PAD.bottom
  const all = spec.series.flatMap((s) => s.points)
  if (all.length === 0) {
    return frame(width, height, spec.title, `<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="empty">no data</text>`)
  }
  let xMin = Infinity
  let xMax = -Infinity
  let yMax = 0
  for (const [x, y] of all) {
    if (x < xMin) xMin = x
    if (x > xMax) xMax = x
    if (y > yMax) yMax = y
  }
  xMin = Math.min(0, xMin)
  if (spec.yMax !== undefined) yMax = spec.yMax
  const xt = niceTicks(xMin, xMax)
  const yt = niceTicks(0, yMax > 0 ? yMax : 1, 4)
  const x1 = Math.max(xMax, xt[xt.length - 1]!)
  const y1 = Math.max(yMax, yt[yt.length - 1]!)
  const sx = (x: number): number => PAD.left + (x - xMin) / (x1 - xMin || 1) * pw
  const sy = (y: number): number => PAD.top + ph - y / (y1 || 1) * ph
  let g = ''
  for (const t of yt) g += `<line x1="${PAD.left}" x2="${PAD.left + pw}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="${GRID}"/><text x="${PAD.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" class="tick">${fmtTick(t)}</text>`
  for (const t of xt) g += `<line x1="${sx(t).toFixed(1)}" x2="${sx(t).toFixed(1)}" y1="${PAD.top}" y2="${PAD.top + ph}" stroke="${GRID}"/><text x="${sx(t).toFixed(1)}" y="${PAD.top + ph + 16}" text-anchor="middle" class="tick">${fmtTick(t)}</text>`
  g += `<line x1="${PAD.left}" x2="${PAD.left + pw}" y1="${PAD.top + ph}" y2="${PAD.top + ph}" stroke="${AXIS}"/><line x1="${PAD.left}" x2="${PAD.left}" y1="${PAD.top}" y2="${PAD.top + ph}" stroke="${AXIS}"/>`
  g += `<text x="${PAD.left + pw / 2}" y="${height - 8}" text-anchor="middle" class="label">${esc(spec.xLabel)}</text>`
  g += `<text transform="translate(14 ${PAD.top + ph / 2}) rotate(-90)" text-anchor="middle" class="label">${esc(spec.yLabel)}</text>`
  let legend = ''
  spec.series.forEach((s, i) => {
    if (s.points.length === 0) return
    let d = ''
    s.points.forEach(([x, y], k) => { d += `${k === 0 ? 'M' : 'L'}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}` })
    // A single point draws nothing as a path: mark it.
    if (s.points.length === 1) g += `<circle cx="${sx(s.points[0]![0]).toFixed(1)}" cy="${sy(s.points[0]![1]).toFixed(1)}" r="3" fill="${s.color}"/>`
    g += `<path class="series" d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"/>`
    if (spec.series.length > 1) {
      // One row between the title and the plot, so the legend never hides a curve.
      const lx = PAD.left + i * 110
      legend += `<rect x="${lx}" y="31" width="14" height="3" fill="${s.color}"/><text x="${lx + 18}" y="36" class="legend">${esc(s.name)}</text>`
    }
  })
  return frame(width, height, spec.title, g + legend)
}

export function barChart (title: string, bars: readonly Bar[], unit: string, width = 560): string {
  const rowH = 22
  const left = 150
  const height = PAD.top + bars.length * rowH + 20
  if (bars.length === 0) return frame(width, 80, title, `<text x="${width / 2}" y="50" text-anchor="middle" class="empty">no data</text>`)
  const max = Math.max(...bars.map((b) => b.value), 1)
  const pw = width - left - 90
  let g = ''
  bars.forEach((b, i) => {
    const y = PAD.top + i * rowH
    const w = Math.max(1, b.value / max * pw)
    g += `<text x="${left - 8}" y="${y + 15}" text-anchor="end" class="tick">${esc(b.label)}</text>`
    g += `<rect class="bar" x="${left}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${b.color ?? PALETTE[0]!}"/>`
    g += `<text x="${(left + w + 6).toFixed(1)}" y="${y + 15}" class="tick">${esc(fmtTick(b.value))} ${esc(unit)}</text>`
  })
  return frame(width, height, title, g)
}

/** A CDF from evenly spaced quantiles (q = i / (n − 1)): points (value, q). */
export function cdfPoints (quantiles: readonly number[]): Array<[number, number]> {
  const n = quantiles.length
  if (n === 0) return []
  if (n === 1) return [[quantiles[0]!, 1]]
  return quantiles.map((v, i) => [v, i / (n - 1)])
}
