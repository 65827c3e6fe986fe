/**
 * Sends one benchmark request through an undici dispatcher with a raw dispatch handler (no
 * Readable stream, no fetch Response per request: that is most of what keeps the generator cheap)
 * and measures it with the monotonic clock. Streams are parsed incrementally (sse.ts); each event
 * is JSON-parsed once. The record is handed to `done` exactly once, whatever happens.
 */
import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import type { Tokenizer } from '../tokenize/index.js'
import type { RequestError, RequestRecord } from './records.js'
import { SseParser } from './sse.js'
import type { Samples } from './stats.js'

/** Error bodies are read up to this size; the rest is dropped. */
const MAX_ERROR_BODY = 64 * 1024

/** What every request of a run shares. */
export interface ClientContext {
  dispatcher: Dispatcher
  stream: boolean
  chat: boolean
  timeoutMs: number
  tokenizer: Tokenizer
  /** Every inter-token gap of the run, for the ITL distribution. */
  itls: Samples
  /** Handlers in flight, so a stop can cancel them. */
  active: Set<RequestHandler>
}

export class CancelledError extends Error {
  readonly code = 'SWY_BENCH_CANCELLED'
  constructor (why: string) {
    super(why)
    this.name = 'CancelledError'
  }
}

interface Usage {
  prompt_tokens?: unknown
  completion_tokens?: unknown
  prompt_tokens_details?: { cached_tokens?: unknown } | null
}

interface ErrorShape {
  message?: unknown
  type?: unknown
  code?: unknown
}

function num (v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null
}

function str (v: unknown): string | null {
  return typeof v === 'string' ? v : (typeof v === 'number' ? String(v) : null)
}

function errorFrom (kind: RequestError['kind'], status: number | null, e: ErrorShape | null | undefined, fallback: string): RequestError {
  const message = str(e?.message) ?? fallback
  return { kind, status, type: str(e?.type), code: str(e?.code), message: message.length > 500 ? message.slice(0, 500) + '…' : message }
}

export class RequestHandler implements Dispatcher.DispatchHandler {
  readonly rec: RequestRecord
  private readonly ctx: ClientContext
  private readonly done: (rec: RequestRecord) => void
  private controller: Dispatcher.DispatchController | null = null
  private parser: SseParser | null = null
  private body: Buffer[] | null = null
  private bodyBytes = 0
  private sentAt = 0
  private now = 0
  private lastContentAt = -1
  private itlSum = 0
  private itlCount = 0
  private itlMax = 0
  private sawDone = false
  private usageOutput: number | null = null
  private textParts: string[] | null
  private streamError: RequestError | null = null
  private finished = false
  private readonly onEvent: (data: string) => void

  constructor (ctx: ClientContext, rec: RequestRecord, wantsText: boolean, done: (rec: RequestRecord) => void) {
    this.ctx = ctx
    this.rec = rec
    this.textParts = wantsText ? [] : null
    this.done = done
    this.onEvent = (data) => { this.event(data) }
  }

  /** The answer text (only collected when the job wants it: multi-turn resends it). */
  get text (): string {
    return this.textParts === null ? '' : this.textParts.join('')
  }

  /** Sends; `sentAt` is the performance.now() the record's times are measured from. */
  send (opts: Dispatcher.DispatchOptions, sentAt: number): void {
    this.sentAt = sentAt
    this.ctx.active.add(this)
    this.ctx.dispatcher.dispatch(opts, this)
  }

  cancel (why: string): void {
    if (this.finished) return
    if (this.controller !== null) this.controller.abort(new CancelledError(why))
    else this.fail({ kind: 'cancelled', status: null, type: null, code: null, message: why }, performance.now())
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.controller = controller
    // Cancelled while it waited in the pool's queue: it must not go out after all.
    if (this.finished) controller.abort(new CancelledError('cancelled before it was sent'))
  }

  onResponseStart (_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.rec.status = statusCode
    const type = headers['content-type']
    const isSse = typeof type === 'string' && type.includes('text/event-stream')
    if (statusCode < 300 && this.ctx.stream && isSse) this.parser = new SseParser(this.onEvent)
    else this.body = []
  }

  onResponseData (_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.now = performance.now()
    if (this.parser !== null) {
      this.parser.push(chunk)
    } else if (this.body !== null) {
      if (this.rec.status !== null && this.rec.status >= 300 && this.bodyBytes >= MAX_ERROR_BODY) return
      this.body.push(chunk)
      this.bodyBytes += chunk.length
    }
  }

  onResponseEnd (): void {
    const now = performance.now()
    this.now = now
    const status = this.rec.status ?? 0
    if (status >= 300) {
      let parsed: { error?: ErrorShape } | null = null
      const text = this.body === null ? '' : Buffer.concat(this.body).toString('utf8')
      // A non-JSON error body (a proxy's HTML page) is kept as the message below.
      try { parsed = JSON.parse(text) as { error?: ErrorShape } } catch { parsed = null }
      const e = parsed !== null && typeof parsed === 'object' ? (parsed.error ?? null) : null
      this.fail(errorFrom('http', status, e, text === '' ? `HTTP ${status}` : text), now)
      return
    }
    if (this.parser !== null) {
      this.parser.end()
      if (this.streamError !== null) this.fail(this.streamError, now)
      else if (!this.sawDone) this.fail({ kind: 'incomplete', status, type: null, code: null, message: 'the stream ended without data: [DONE]' }, now)
      else this.succeed(now)
      return
    }
    this.whole(now)
  }

  onResponseError (_c: Dispatcher.DispatchController, err: Error): void {
    const now = performance.now()
    if (this.streamError !== null) {
      this.fail(this.streamError, now)
      return
    }
    const code = (err as { code?: unknown }).code
    const kind = err instanceof CancelledError
      ? 'cancelled'
      : (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : 'network')
    const type = kind === 'cancelled' ? null : (typeof code === 'string' ? code : err.name)
    this.fail({ kind, status: this.rec.status, type, code: null, message: err.message }, now)
  }

  /** A non-streamed answer (or a server that ignored stream: true). */
  private whole (now: number): void {
    let parsed: Record<string, unknown>
    try {
      parsed = JSON.parse(Buffer.concat(this.body ?? []).toString('utf8')) as Record<string, unknown>
    } catch {
      this.fail({ kind: 'incomplete', status: this.rec.status, type: null, code: null, message: 'the response body is not JSON' }, now)
      return
    }
    if (parsed.error !== undefined && parsed.error !== null) {
      this.fail(errorFrom('http', this.rec.status, parsed.error as ErrorShape, 'error in a 2xx answer'), now)
      return
    }
    const choice = (parsed.choices as Array<Record<string, unknown>> | undefined)?.[0]
    const content = this.ctx.chat ? str((choice?.message as Record<string, unknown> | undefined)?.content) : str(choice?.text)
    this.rec.finishReason = str(choice?.finish_reason)
    if (this.textParts !== null && content !== null) this.textParts.push(content)
    this.usage(parsed.usage as Usage | undefined)
    if (this.usageOutput === null && content !== null) {
      this.rec.outputTokens = this.ctx.tokenizer.encode(content).length
      this.rec.outputTokensFrom = 'text'
    }
    this.succeed(now)
  }

  private event (data: string): void {
    if (data === '[DONE]') {
      this.sawDone = true
      return
    }
    let ev: Record<string, unknown>
    try {
      ev = JSON.parse(data) as Record<string, unknown>
    } catch {
      this.streamError ??= { kind: 'incomplete', status: this.rec.status, type: null, code: null, message: 'an SSE event is not JSON' }
      return
    }
    if (ev.error !== undefined && ev.error !== null) {
      this.streamError ??= errorFrom('stream', this.rec.status, ev.error as ErrorShape, 'error event in the stream')
      return
    }
    const choices = ev.choices as Array<Record<string, unknown>> | undefined
    const choice = choices?.[0]
    if (choice !== undefined) {
      let content: unknown
      if (this.ctx.chat) {
        const delta = choice.delta as Record<string, unknown> | undefined
        content = delta?.content
        // Reasoning models stream their thoughts first; those are output tokens too.
        if (typeof content !== 'string' || content === '') content = delta?.reasoning_content ?? delta?.reasoning
      } else {
        content = choice.text
      }
      if (typeof content === 'string' && content !== '') this.content(content)
      const fr = choice.finish_reason
      if (typeof fr === 'string') this.rec.finishReason = fr
    }
    if (ev.usage !== undefined && ev.usage !== null) this.usage(ev.usage as Usage)
  }

  private content (text: string): void {
    const now = this.now
    const rec = this.rec
    if (this.lastContentAt < 0) {
      rec.ttftMs = now - this.sentAt
    } else {
      const gap = now - this.lastContentAt
      this.ctx.itls.push(gap)
      this.itlSum += gap
      this.itlCount++
      if (gap > this.itlMax) this.itlMax = gap
    }
    this.lastContentAt = now
    rec.contentChunks++
    if (this.textParts !== null) this.textParts.push(text)
  }

  private usage (u: Usage | undefined): void {
    if (u === undefined || u === null) return
    const p = num(u.prompt_tokens)
    if (p !== null) this.rec.promptTokens = p
    const c = num(u.completion_tokens)
    if (c !== null) this.usageOutput = c
    const cached = num(u.prompt_tokens_details?.cached_tokens)
    if (cached !== null) this.rec.cachedTokens = cached
  }

  private succeed (now: number): void {
    const rec = this.rec
    if (this.usageOutput !== null) {
      rec.outputTokens = this.usageOutput
      rec.outputTokensFrom = 'usage'
    } else if (rec.outputTokensFrom === 'chunks') {
      rec.outputTokens = rec.contentChunks
    }
    rec.ok = true
    this.finish(now)
  }

  private fail (error: RequestError, now: number): void {
    this.rec.ok = false
    this.rec.error = error
    if (this.usageOutput !== null) {
      this.rec.outputTokens = this.usageOutput
      this.rec.outputTokensFrom = 'usage'
    } else {
      this.rec.outputTokens = this.rec.contentChunks
    }
    this.finish(now)
  }

  private finish (now: number): void {
    if (this.finished) return
    this.finished = true
    this.ctx.active.delete(this)
    const rec = this.rec
    rec.e2eMs = now - this.sentAt
    if (this.itlCount > 0) {
      rec.itlMeanMs = this.itlSum / this.itlCount
      rec.itlMaxMs = this.itlMax
    }
    if (rec.ok && rec.ttftMs !== null && rec.outputTokens > 1) rec.tpotMs = (rec.e2eMs - rec.ttftMs) / (rec.outputTokens - 1)
    this.parser = null
    this.body = null
    this.done(rec)
  }
}
