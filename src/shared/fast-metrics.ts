/**
 * Prometheus counters, gauges and histograms for the request path.
 *
 * prom-client hashes the label object on every labelled call, even through a child from
 * `labels()` (the child calls back into the parent with its labels). The proxy benchmark's
 * profile put prom-client at ~6% of the gateway's CPU per JSON request, and bench/mocker's at ~7%
 * once the inter-token histogram was observed per token. Here a child is a plain object resolved
 * once per label set; `inc`/`observe` touch only numbers, and the text form is built at scrape
 * time. They register with a prom-client Registry like any metric (`name`, `get()`), so
 * /metrics still comes from prom-client. Metrics updated off the request path stay prom-client's.
 */

type Labels = Record<string, string | number>
interface Value { value: number, labels: Labels, metricName?: string }
interface MetricJson { name: string, help: string, type: 'counter' | 'gauge' | 'histogram', aggregator: 'sum', values: Value[] }

/** One registered metric with children per label set (values joined by \x1f as the key). */
abstract class FastMetric<C> {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  protected readonly children = new Map<string, { labels: Labels, child: C }>()

  constructor (opts: { name: string, help: string, labelNames: readonly string[] }) {
    this.name = opts.name
    this.help = opts.help
    this.labelNames = opts.labelNames
  }

  protected abstract make (): C

  /** The child for these label values (in `labelNames` order); resolve once and keep it. */
  labels (...values: string[]): C {
    const key = values.length === 1 ? values[0]! : values.join('\x1f')
    let c = this.children.get(key)
    if (c === undefined) {
      const labels: Labels = {}
      for (let i = 0; i < this.labelNames.length; i++) labels[this.labelNames[i]!] = values[i] ?? ''
      c = { labels, child: this.make() }
      this.children.set(key, c)
    }
    return c.child
  }

  abstract get (): Promise<MetricJson>
}

export class FastCounterChild {
  value = 0
  inc (n = 1): void { this.value += n }
}

export class FastCounter extends FastMetric<FastCounterChild> {
  protected make (): FastCounterChild { return new FastCounterChild() }

  async get (): Promise<MetricJson> {
    const values: Value[] = []
    for (const { labels, child } of this.children.values()) values.push({ value: child.value, labels })
    return { name: this.name, help: this.help, type: 'counter', aggregator: 'sum', values }
  }
}

export class FastGaugeChild {
  value = 0
  inc (n = 1): void { this.value += n }
  dec (n = 1): void { this.value -= n }
  set (v: number): void { this.value = v }
}

export class FastGauge extends FastMetric<FastGaugeChild> {
  protected make (): FastGaugeChild { return new FastGaugeChild() }

  async get (): Promise<MetricJson> {
    const values: Value[] = []
    for (const { labels, child } of this.children.values()) values.push({ value: child.value, labels })
    return { name: this.name, help: this.help, type: 'gauge', aggregator: 'sum', values }
  }
}

export class FastHistogramChild {
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor (private readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length)
  }

  observe (v: number): void {
    const b = this.bounds
    let i = 0
    while (i < b.length && v > b[i]!) i++
    if (i < b.length) this.counts[i]!++
    this.sum += v
    this.count++
  }
}

export class FastHistogram extends FastMetric<FastHistogramChild> {
  private readonly bounds: Float64Array

  constructor (opts: { name: string, help: string, labelNames: readonly string[], buckets: readonly number[] }) {
    super(opts)
    this.bounds = Float64Array.from(opts.buckets)
  }

  protected make (): FastHistogramChild { return new FastHistogramChild(this.bounds) }

  /** prom-client's shape: cumulative `_bucket` lines, then `_sum` and `_count`. */
  async get (): Promise<MetricJson> {
    const values: Value[] = []
    for (const { labels, child: c } of this.children.values()) {
      let acc = 0
      for (let i = 0; i < this.bounds.length; i++) {
        acc += c.counts[i]!
        values.push({ value: acc, labels: { le: this.bounds[i]!, ...labels }, metricName: `${this.name}_bucket` })
      }
      values.push({ value: c.count, labels: { le: '+Inf', ...labels }, metricName: `${this.name}_bucket` })
      values.push({ value: c.sum, labels, metricName: `${this.name}_sum` })
      values.push({ value: c.count, labels, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values }
  }
}

/** Registers fast metrics with a prom-client Registry (its `registerMetric` wants its own Metric type). */
export function registerFast (registry: { registerMetric (m: never): void }, ...metrics: Array<FastMetric<unknown>>): void {
  for (const m of metrics) registry.registerMetric(m as never)
}
