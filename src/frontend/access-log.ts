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

// The line's pieces without the generic (and, per request, costly) conversions: JSON.stringify
// is a call into the runtime, and a double such as Date.now() or 12.3 goes through the
// shortest-round-trip printer; small integers come from V8's number-string cache.

/** A char JSON.stringify would escape (or one this writer leaves to it: anything from U+D800 up). */
// eslint-disable-next-line no-control-regex -- control chars are exactly what must be escaped
const NEEDS_ESCAPE = /[\x00-\x1f"\\\ud800-\uffff]/

/**
 * A string as JSON: quoted as is when nothing in it needs escaping (the usual id or name). One
 * regex test, not a charCodeAt loop: charCodeAt checks the string's representation at every char
 * (the loop cost ~1.9k user instructions for a request's three strings, the test ~1.3k).
 */
function jsonString (s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"'
}

/** jsonString for a field whose value mostly repeats (a model, a worker): the last answer, kept. */
function repeatingJsonString (): (s: string) => string {
  let last = ''
  let lastJson = '""'
  return (s) => {
    if (s !== last) {
      last = s
      lastJson = jsonString(s)
    }
    return lastJson
  }
}

/** round1(x) as JSON writes it (12.3, 12), from integer tenths. */
function tenths (x: number): string {
  const t = Math.round(x * 10)
  if (!(t >= 0 && t <= 0x3fffffff)) return JSON.stringify(round1(x))
  const r = t % 10
  return r === 0 ? '' + (t / 10) : '' + ((t - r) / 10) + '.' + r
}

let clockAt = -1
let clockText = ''
/** Date.now() as text, converted once per millisecond. */
function nowText (): string {
  const now = Date.now()
  if (now !== clockAt) {
    clockAt = now
    clockText = '' + now
  }
  return clockText
}

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
  const modelJson = repeatingJsonString()
  const workerJson = repeatingJsonString()
  const flush = (): void => {
    if (timer !== null) { clearTimeout(timer); timer = null }
    if (pending.length === 0) return
    const out = pending
    pending = ''
    stream.write(out)
  }
  return Object.assign((r: AccessRecord): void => {
    if (!log.isLevelEnabled('info')) return
    pending += '{"level":30,"time":' + nowText() + chindings + ',"rid":' + jsonString(r.rid) + ',"model":' + modelJson(r.model) + ',"worker":' + (r.worker === null ? 'null' : workerJson(r.worker)) +
      ',"status":' + r.status + ',"ms":' + tenths(r.ms) + ',"ttft_ms":' + (r.ttftMs === null ? 'null' : tenths(r.ttftMs)) + ',"attempts":' + r.attempts + ',"msg":"request"}\n'
    if (pending.length >= FLUSH_CHARS) flush()
    else if (timer === null) {
      timer = setTimeout(flush, FLUSH_MS)
      timer.unref()
    }
  }, { flush, close: flush })
}
