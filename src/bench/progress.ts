/**
 * Progress on stderr while a run is going: one line rewritten in place on a terminal, a plain
 * line every few seconds otherwise (CI logs, pipes). Warnings go out as their own lines.
 */

export interface ProgressState {
  label: string
  /** Requests finished (ok or failed). */
  done: number
  failed: number
  /** Target request count, or null when the run is bounded by time only. */
  total: number | null
  inflight: number
  outputTokens: number
  elapsedMs: number
  /** Seconds the run may take (duration runs), for the bar when total is unknown. */
  durationS: number | null
}

const TTY_INTERVAL_MS = 200
const LOG_INTERVAL_MS = 5000
const BAR_WIDTH = 24

export interface ProgressStream {
  isTTY?: boolean
  columns?: number
  write (s: string): unknown
}

export class Progress {
  private readonly out: ProgressStream
  private readonly tty: boolean
  private readonly read: () => ProgressState
  private timer: NodeJS.Timeout | null = null
  private drawn = false

  constructor (read: () => ProgressState, out: ProgressStream = process.stderr) {
    this.read = read
    this.out = out
    this.tty = out.isTTY === true
  }

  start (): void {
    if (this.timer !== null) return
    this.timer = setInterval(() => { this.draw() }, this.tty ? TTY_INTERVAL_MS : LOG_INTERVAL_MS)
    this.timer.unref()
  }

  /** A warning between progress lines, never glued onto the bar. */
  warn (message: string): void {
    this.clear()
    this.out.write(`warning: ${message}\n`)
  }

  /** Draws the final state and stops; idempotent. */
  close (): void {
    if (this.timer === null) return
    clearInterval(this.timer)
    this.timer = null
    this.draw()
    if (this.tty && this.drawn) this.out.write('\n')
    this.drawn = false
  }

  private clear (): void {
    if (this.tty && this.drawn) this.out.write('\r\x1b[2K')
  }

  private draw (): void {
    const line = formatProgress(this.read(), this.tty ? BAR_WIDTH : 0)
    if (this.tty) {
      const width = Math.max(20, (this.out.columns ?? 120) - 1)
      this.out.write('\r\x1b[2K' + line.slice(0, width))
      this.drawn = true
    } else {
      this.out.write(line + '\n')
    }
  }
}

function clock (ms: number): string {
  const s = Math.floor(ms / 1000)
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`
}

export function formatProgress (s: ProgressState, barWidth: number): string {
  let frac: number | null = null
  if (s.total !== null && Number.isFinite(s.total) && s.total > 0) frac = s.done / s.total
  else if (s.durationS !== null) frac = s.elapsedMs / (s.durationS * 1000)
  let bar = ''
  if (barWidth > 0 && frac !== null) {
    const full = Math.max(0, Math.min(barWidth, Math.round(frac * barWidth)))
    bar = '[' + '#'.repeat(full) + '-'.repeat(barWidth - full) + '] '
  }
  const secs = s.elapsedMs / 1000
  const count = s.total !== null && Number.isFinite(s.total) ? `${s.done}/${s.total}` : String(s.done)
  const rate = secs > 0 ? (s.done / secs).toFixed(1) : '0.0'
  const tps = secs > 0 ? Math.round(s.outputTokens / secs) : 0
  return `${s.label} ${bar}${count} req  in-flight ${s.inflight}  failed ${s.failed}  ${rate} req/s  ${tps} tok/s  ${clock(s.elapsedMs)}`
}
