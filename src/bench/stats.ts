/** Distributions: a growable sample buffer, percentiles and the summary statistics we report. */

export interface Stats {
  count: number
  mean: number
  stddev: number
  min: number
  p50: number
  p90: number
  p95: number
  p99: number
  max: number
}

/** Numbers appended one at a time without boxing (inter-token gaps run into the millions). */
export class Samples {
  private buf: Float64Array
  private n = 0

  constructor (capacity = 1024) {
    this.buf = new Float64Array(capacity)
  }

  push (v: number): void {
    if (this.n === this.buf.length) {
      const bigger = new Float64Array(this.buf.length * 2)
      bigger.set(this.buf)
      this.buf = bigger
    }
    this.buf[this.n++] = v
  }

  get length (): number {
    return this.n
  }

  /** A sorted copy of the values. */
  sorted (): Float64Array {
    return this.buf.slice(0, this.n).sort()
  }
}

/** Linear interpolation between closest ranks (numpy's default), on sorted values. */
export function quantile (sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length
  if (n === 0) return NaN
  const pos = (n - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.min(n - 1, lo + 1)
  const a = sorted[lo]!
  return a + (sorted[hi]! - a) * (pos - lo)
}

export function sortedOf (values: Iterable<number>): Float64Array {
  return Float64Array.from(values).sort()
}

/** Stats of sorted values; null when there are none. */
export function statsOf (sorted: Float64Array): Stats | null {
  const n = sorted.length
  if (n === 0) return null
  let sum = 0
  for (let i = 0; i < n; i++) sum += sorted[i]!
  const mean = sum / n
  let sq = 0
  for (let i = 0; i < n; i++) sq += (sorted[i]! - mean) ** 2
  return {
    count: n,
    mean,
    stddev: Math.sqrt(sq / n),
    min: sorted[0]!,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p95: quantile(sorted, 0.95),
    p99: quantile(sorted, 0.99),
    max: sorted[n - 1]!
  }
}

/** `points` + 1 evenly spaced quantiles (q = 0, 1/points, ... 1): a CDF small enough for a report. */
export function cdfOf (sorted: Float64Array, points = 200): number[] {
  if (sorted.length === 0) return []
  const out: number[] = []
  for (let i = 0; i <= points; i++) out.push(round3(quantile(sorted, i / points)))
  return out
}

export function round3 (v: number): number {
  return Math.round(v * 1000) / 1000
}
