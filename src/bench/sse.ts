/**
 * Incremental server-sent-events parser over raw body chunks. It scans bytes for line ends, turns
 * only `data:` field values into strings and hands each complete event's data to the sink once,
 * so a stream is never concatenated into one string. Comments (`: keep-alive`) and other fields
 * (`event:`, `id:`, `retry:`) are skipped. Lines end in LF or CRLF (a pair may be split over chunks).
 */

import { Buffer } from 'node:buffer'

const LF = 10
const CR = 13
const COLON = 58
const SPACE = 32
// 'data' as bytes
const D = 100
const A = 97
const T = 116

export type SseSink = (data: string) => void

export class SseParser {
  private pending: Buffer | null = null
  private data: string | null = null
  private readonly sink: SseSink

  constructor (sink: SseSink) {
    this.sink = sink
  }

  push (chunk: Buffer): void {
    let buf = chunk
    if (this.pending !== null) {
      // Only the unfinished last line is kept between chunks: usually a few hundred bytes.
      buf = Buffer.concat([this.pending, chunk])
      this.pending = null
    }
    let start = 0
    const n = buf.length
    while (start < n) {
      const lf = buf.indexOf(LF, start)
      if (lf < 0) {
        this.pending = buf.subarray(start)
        return
      }
      const end = lf > start && buf[lf - 1] === CR ? lf - 1 : lf
      this.line(buf, start, end)
      start = lf + 1
    }
  }

  /** The body ended: an event without its closing blank line still counts. */
  end (): void {
    if (this.pending !== null && this.pending.length > 0) {
      const p = this.pending
      this.pending = null
      this.line(p, 0, p[p.length - 1] === CR ? p.length - 1 : p.length)
    }
    this.dispatch()
  }

  private line (buf: Buffer, s: number, e: number): void {
    if (s === e) {
      this.dispatch()
      return
    }
    if (e - s >= 5 && buf[s] === D && buf[s + 1] === A && buf[s + 2] === T && buf[s + 3] === A && buf[s + 4] === COLON) {
      const v = buf[s + 5] === SPACE ? s + 6 : s + 5
      const value = buf.toString('utf8', v, e)
      this.data = this.data === null ? value : this.data + '\n' + value
    } else if (e - s === 4 && buf[s] === D && buf[s + 1] === A && buf[s + 2] === T && buf[s + 3] === A) {
      // A bare `data` line is an empty data value.
      this.data = this.data === null ? '' : this.data + '\n'
    }
  }

  private dispatch (): void {
    if (this.data === null) return
    const d = this.data
    this.data = null
    this.sink(d)
  }
}
