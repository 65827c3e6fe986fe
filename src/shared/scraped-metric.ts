import { Counter, Gauge, type Registry } from 'prom-client'

type Emit = (labels: Record<string, string>, value: number) => void

/**
 * A metric whose values are read from live state when /metrics is scraped (nothing on the
 * request path): `fill` is called at each scrape and emits every current label set and value.
 * Counters emit running totals the state already keeps.
 */
export function scraped (kind: 'gauge' | 'counter', opts: { name: string, help: string, labelNames: readonly string[], registers: Registry[] }, fill: (emit: Emit) => void): void {
  const base = { name: opts.name, help: opts.help, labelNames: opts.labelNames as string[], registers: opts.registers }
  if (kind === 'gauge') {
    new Gauge({ ...base, collect () { this.reset(); fill((labels, v) => { this.set(labels, v) }) } })
  } else {
    new Counter({ ...base, collect () { this.reset(); fill((labels, v) => { this.inc(labels, v) }) } })
  }
}
