import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import type { HttpRes } from './http1/server.js'
import type { Admission } from '../admission/admission.js'
import type { Worker } from '../registry/worker.js'
import type { Policy, RouteRequest } from '../routing/policy.js'
import type { NativeRequest, NativeSampling, NativeStream, NativeStreamError, NativeStreamHandler, NativeUpstream, ResponseItem } from '../transport/native/index.js'
import type { ModelMetrics } from './metrics.js'
import { ChunkWriter, jsonChunk } from './chunk-writer.js'
import type { TickWrites } from './http1/tick-writes.js'
import { OpenAIBodyWriter, OpenAISseWriter } from './native-response.js'
import type { ParsedRequest } from './validate.js'

/** Body fields the native request carries in its own slots; everything else travels in `extra`. */
const MAPPED = new Set(['model', 'messages', 'prompt', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'min_tokens', 'temperature', 'top_p', 'seed', 'stop', 'ignore_eos', 'priority'])

const SSE_HEAD = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }

function num (v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}

/** The OpenAI body as a native request (token ids included when routing computed them). */
export function nativeRequestOf (p: ParsedRequest, model: string, tokens: Uint32Array | null, requestId: string): NativeRequest {
  const b = p.body
  const sampling: NativeSampling = {}
  if (p.maxTokens !== null) sampling.maxTokens = p.maxTokens
  const minTokens = num(b.min_tokens)
  if (minTokens !== undefined) sampling.minTokens = minTokens
  const temperature = num(b.temperature)
  if (temperature !== undefined) sampling.temperature = temperature
  const topP = num(b.top_p)
  if (topP !== undefined) sampling.topP = topP
  const seed = num(b.seed)
  if (seed !== undefined) sampling.seed = seed
  if (typeof b.stop === 'string') sampling.stop = [b.stop]
  else if (Array.isArray(b.stop)) sampling.stop = b.stop.filter((s): s is string => typeof s === 'string')
  if (b.ignore_eos === true) sampling.ignoreEos = true
  let extra: Record<string, unknown> | null = null
  for (const k in b) {
    if (MAPPED.has(k)) continue
    extra ??= {}
    extra[k] = b[k]
  }
  const req: NativeRequest = { model, endpoint: p.endpoint, sampling, requestId, extra }
  if (tokens !== null) req.tokenIds = tokens
  else if (p.endpoint === 'chat') req.messages = b.messages as NonNullable<NativeRequest['messages']>
  else req.prompt = typeof b.prompt === 'string' ? b.prompt : Array.isArray(b.prompt) && typeof b.prompt[0] === 'string' ? b.prompt[0] : null
  if (req.prompt === null && req.tokenIds === undefined && Array.isArray(b.prompt)) {
    // Token-id prompts (a list of ints, or a list of one such list).
    const first = b.prompt[0]
    const ids = typeof first === 'number' ? b.prompt : Array.isArray(first) ? first : []
    req.tokenIds = Uint32Array.from(ids as number[])
  }
  const priority = num(b.priority)
  if (priority !== undefined) req.priority = priority
  return req
}

/**
 * One attempt over the native transport: response items become OpenAI SSE chunks (or the JSON
 * body) through one serializer with prebuilt prefixes, so the text is escaped once and never
 * parsed. Like the HTTP Exchange, nothing is written to the client before the first item, so a
 * failure before it can be retried on another worker.
 */
export class NativeExchange implements NativeStreamHandler {
  // The fields a streamed token reads come first: an engine pass touches every stream once, so
  // each token's objects are cold in the cache, and those fields then share the object's first
  // cache line (fields are laid out in declaration order).
  /** Streaming on the fast server: the connection's queue for the tick (set at the first item). */
  private tick: TickWrites | null = null
  /** The delta chunk's bytes around the text (the SSE writer's, kept here for the token path). */
  private deltaPrefix: Buffer | null = null
  private deltaSuffix: Buffer | null = null
  private last = 0
  ttftMs: number | null = null
  readonly mm: ModelMetrics
  private readonly backlogLimit: number
  private readonly sse: OpenAISseWriter | null
  readonly res: HttpRes
  readonly requestId: string
  readonly started: number
  readonly policy: Policy
  readonly admission: Admission
  readonly worker: Worker
  readonly route: RouteRequest
  private readonly body: OpenAIBodyWriter | null
  private stream: NativeStream | null = null
  private settle: ((err: NativeStreamError | null) => void) | null = null
  /** Headers or data went to the client: the answer can no longer move elsewhere. */
  sentHead = false
  status = 200
  clientGone = false
  private readonly keptAlive: boolean
  private out: ChunkWriter | null = null
  /** The client fell more than the backlog limit behind: cut, and the upstream stream cancelled. */
  cutSlow = false
  /** Streaming: deltas are written from the frame's bytes (NativeStreamHandler.rawText). */
  readonly rawText: boolean

  constructor (res: HttpRes, requestId: string, started: number, parsed: ParsedRequest, model: string, mm: ModelMetrics, admission: Admission, policy: Policy, worker: Worker, route: RouteRequest, backlogLimit: number) {
    this.res = res
    this.requestId = requestId
    this.started = started
    this.mm = mm
    this.policy = policy
    this.admission = admission
    this.worker = worker
    this.route = route
    this.keptAlive = res.headersSent
    this.backlogLimit = backlogLimit
    const created = Math.floor(Date.now() / 1000)
    const kind = parsed.endpoint === 'chat' ? 'chat' : 'completion'
    const id = (kind === 'chat' ? 'chatcmpl-' : 'cmpl-') + requestId
    this.sse = parsed.stream ? new OpenAISseWriter(kind, id, created, model, parsed.includeUsage) : null
    this.rawText = parsed.stream
    this.body = parsed.stream ? null : new OpenAIBodyWriter(kind, id, created, model)
  }

  run (up: NativeUpstream, req: NativeRequest): Promise<NativeStreamError | null> {
    return new Promise(resolve => {
      this.settle = resolve
      this.stream = up.open(req, this)
    })
  }

  /** Client gone: cancel upstream (the engine frees the request's blocks). */
  abort (): void {
    this.stream?.cancel()
  }

  onItem (item: ResponseItem): void {
    const now = item.receivedAt ?? performance.now()
    const tick = this.tick
    if (tick !== null && item.finishReason === null) {
      // A streamed token: one chunk built from the frame's bytes, queued for the tick.
      this.mm.itl.observe((now - this.last) / 1000)
      this.last = now
      const start = item.rawStart!
      const end = item.rawEnd!
      if (end > start) {
        tick.send(jsonChunk(this.deltaPrefix!, item.raw!, start, end, this.deltaSuffix!, true))
        if (tick.backlogOver(this.backlogLimit)) this.cut()
      }
      return
    }
    const res = this.res
    if (this.ttftMs === null) {
      this.ttftMs = now - this.started
      this.mm.ttft.observe(this.ttftMs / 1000)
      this.admission.firstToken(this.worker, this.route, this.policy)
      if (this.sse !== null) {
        // A non-streaming answer is buffered until its end: nothing is sent, and a failure
        // before then can still answer with a proper error status.
        this.sentHead = true
        if (!this.keptAlive) res.writeHead(200, { ...SSE_HEAD, 'x-request-id': this.requestId })
        const out = new ChunkWriter(res, this.backlogLimit)
        this.out = out
        const head = this.sse.head()
        if (head.length > 0) out.write(head)
        this.tick = out.tickQueue
        this.deltaPrefix = this.sse.deltaPrefix
        this.deltaSuffix = this.sse.deltaSuffix
      }
    } else if (this.sse !== null) {
      this.mm.itl.observe((now - this.last) / 1000)
    }
    this.last = now
    const sse = this.sse
    if (sse !== null) {
      if (item.finishReason === null) {
        const start = item.rawStart!
        const end = item.rawEnd!
        if (end > start && !this.out!.writeJsonString(sse.deltaPrefix, item.raw!, start, end, sse.deltaSuffix)) this.cut()
        return
      }
      const chunk = sse.item(item)
      if (chunk.length > 0 && !this.out!.write(chunk)) this.cut()
    } else this.body!.item(item)
  }

  /** Slow consumer: drop the client and free the engine's sequence (DESIGN: no unbounded buffering). */
  private cut (): void {
    if (this.cutSlow) return
    this.cutSlow = true
    this.tick = null
    this.res.destroy()
    this.stream?.cancel()
  }

  onEnd (): void {
    const res = this.res
    if (this.sse !== null) {
      if (!this.sentHead) {
        this.sentHead = true
        if (!this.keptAlive) res.writeHead(200, { ...SSE_HEAD, 'x-request-id': this.requestId })
        res.write(this.sse.head())
      }
      res.end(this.sse.done())
    } else {
      const json = this.body!.json()
      if (this.ttftMs === null) this.ttftMs = performance.now() - this.started
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), 'x-request-id': this.requestId })
      res.end(json)
    }
    this.finish(null)
  }

  onError (err: NativeStreamError): void {
    this.status = err.status
    this.finish(err)
  }

  private finish (err: NativeStreamError | null): void {
    const settle = this.settle
    this.settle = null
    settle?.(err)
  }
}
