import { performance } from 'node:perf_hooks'
/** Prints rows as an aligned text table (and returns it, for docs/BENCHMARKS.md). */
export function table (headers: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map(r => r.map(c => typeof c === 'number' ? fmt(c) : c))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map(r => (r[i] ?? '').length)))
  const line = (r: string[]): string => '| ' + r.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(' | ') + ' |'
  const out = [line(headers), '|' + widths.map((w, i) => (i === 0 ? ':' : '') + '-'.repeat(w + 1) + (i === 0 ? '' : ':')).join('|').replace(/^\|:/, '|:') + '|', ...cells.map(line)].join('\n')
  console.log(out)
  return out
}

export function fmt (n: number): string {
  if (!Number.isFinite(n)) return '-'
  if (Number.isInteger(n) && Math.abs(n) >= 100) return String(n)
  const a = Math.abs(n)
  return a >= 100 ? n.toFixed(0) : a >= 10 ? n.toFixed(1) : a >= 1 ? n.toFixed(2) : n.toFixed(3)
}

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Median µs per call of `fn` over `rounds` timed passes of at least `minMs` each (after one warm-up pass). */
export function timePerCall (fn: () => void, rounds: number, minMs: number): number {
  const passes: number[] = []
  for (let r = -1; r < rounds; r++) {
    let n = 0
    const t0 = performance.now()
    let t = t0
    while (t - t0 < minMs) { fn(); n++; if ((n & 15) === 0 || n < 16) t = performance.now() }
    if (r >= 0) passes.push((t - t0) * 1000 / n)
  }
  return median(passes)
}

/** One-line description of the machine, for the figures' provenance. */
export async function machine (): Promise<string> {
  const os = await import('node:os')
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu'
  return `${os.cpus().length} x ${cpu.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.type()} ${os.release()}`
}
