/**
 * The per-request access line. Through pino's API (`log.info(obj, 'request')`) it cost 13-16 µs of
 * CPU per request (serializing a fresh object key by key), about 15% of a proxied JSON request in
 * the `proxy` benchmark. The line's shape is fixed, so it is built with one template string and
 * written to the logger's own destination: the same bytes pino would write (level, time, the
 * logger's bindings, the fields, msg), at a fraction of the cost.
 *
 * Only for the gateway's own logger (plain pino options): a logger handed in by a caller may have
 * formatters, mixins or another message key, so it keeps the pino call.
 */
import { symbols, type Logger } from 'pino'

export interface AccessRecord {
  rid: string
  model: string
  worker: string | null
  status: number
  ms: number
  ttftMs: number | null
  attempts: number
}

export interface AccessLog {
  (r: AccessRecord): void
  /** Writes the lines held back now. */
  flush: () => void
  /** flush() and stop the timer (gateway shutdown). */
  close: () => void
}

/** Held-back access lines go to the logger's stream at this many chars, or after FLUSH_MS. */
const FLUSH_CHARS = 8192
const FLUSH_MS = 50

const round1 = (x: number): number => Math.round(x * 10) / 10

/** Writes access lines for `log`; `ownLogger`: built by the gateway with default formatting. */
export function accessLogFor (log: Logger, ownLogger: boolean): AccessLog {
  const slow = Object.assign((r: AccessRecord): void => {
    log.info({ rid: r.rid, model: r.model, worker: r.worker, status: r.status, ms: round1(r.ms), ttft_ms: r.ttftMs === null ? null : round1(r.ttftMs), attempts: r.attempts }, 'request')
  }, { flush: () => {}, close: () => {} })
  const internals = log as unknown as Record<symbol, unknown>
  const stream = internals[symbols.streamSym] as { write (s: string): unknown } | undefined
  const chindings = internals[symbols.chindingsSym]
  if (!ownLogger || stream === undefined || typeof chindings !== 'string') return slow
  // Lines are held back and handed to the stream 8 KiB at a time: pino's buffered destination
  // (sonic-boom 4) measures the UTF-8 length of its whole pending buffer on every write, which
  // flattens and scans up to 16 KiB per line, so one write per line cost more than the rest of
  // the line (about 15-60k user instructions per request in the proxy benchmark). A line can
  // reach the log up to FLUSH_MS after log lines written later through pino itself.
  let pending = ''
  let timer: NodeJS.Timeout | null = null
  const flush = (): void => {
    if (timer !== null) { clearTimeout(timer); timer = null }
    if (pending.length === 0) return
    const out = pending
    pending = ''
    stream.write(out)
  }
  return Object.assign((r: AccessRecord): void => {
    if (!log.isLevelEnabled('info')) return
    pending += `{"level":30,"time":${Date.now()}${chindings},"rid":${JSON.stringify(r.rid)},"model":${JSON.stringify(r.model)},"worker":${r.worker === null ? 'null' : JSON.stringify(r.worker)},"status":${r.status},"ms":${round1(r.ms)},"ttft_ms":${r.ttftMs === null ? 'null' : round1(r.ttftMs)},"attempts":${r.attempts},"msg":"request"}\n`
    if (pending.length >= FLUSH_CHARS) flush()
    else if (timer === null) {
      timer = setTimeout(flush, FLUSH_MS)
      timer.unref()
    }
  }, { flush, close: flush })
}
