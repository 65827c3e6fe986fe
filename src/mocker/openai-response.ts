/**
 * Writes one engine request's output as an OpenAI response: SSE chunks or a single JSON body.
 *
 * Streaming cost per token: the chunk is a prefix built once per request + the JSON-escaped text +
 * a constant suffix; chunks produced in the same pass (a token and the finish) are coalesced into
 * one socket write by a microtask flush.
 */
import { Buffer } from 'node:buffer'
import type { ServerResponse } from 'node:http'
import { MockerClosedError } from './errors.js'
import type { EngineRequest, FinishReason, RequestSink } from './request.js'
import type { ApiKind } from './openai-request.js'

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive'
}
const DONE = 'data: [DONE]\n\n'
const CHAT_TOKEN_SUFFIX = '},"logprobs":null,"finish_reason":null}]}\n\n'
const TEXT_TOKEN_SUFFIX = ',"logprobs":null,"finish_reason":null}]}\n\n'

export class HttpGeneration implements RequestSink {
  readonly res: ServerResponse
  readonly kind: ApiKind
  readonly stream: boolean
  readonly includeUsage: boolean
  readonly id: string
  readonly created: number
  readonly model: string
  /** Everything of a chunk up to the delta/text value, built once. */
  private readonly prefix: string
  private pending: string
  private flushQueued: boolean
  private readonly parts: string[]
  private started: boolean
  /** The engine request, once submitted. */
  engineRequest: EngineRequest | null
  done: boolean
  /** Set when the connection closed before the answer was complete. */
  clientGone: boolean
  private readonly boundFlush: () => void

  constructor (res: ServerResponse, kind: ApiKind, stream: boolean, includeUsage: boolean, id: string, created: number, model: string) {
    this.res = res
    this.kind = kind
    this.stream = stream
    this.includeUsage = includeUsage
    this.id = id
    this.created = created
    this.model = model
    const head = `data: {"id":${JSON.stringify(id)},"object":"${kind === 'chat' ? 'chat.completion.chunk' : 'text_completion'}","created":${created},"model":${JSON.stringify(model)},"choices":[{"index":0,`
    this.prefix = kind === 'chat' ? head + '"delta":{' : head + '"text":'
    this.pending = ''
    this.flushQueued = false
    this.parts = []
    this.started = false
    this.engineRequest = null
    this.done = false
    this.clientGone = false
    this.boundFlush = () => this.flush()
  }

  onToken (_req: EngineRequest, _tokenId: number, text: string): void {
    if (!this.stream) {
      if (text.length > 0) this.parts.push(text)
      return
    }
    if (!this.started) this.start()
    // Held-back text (possible stop string) produces no chunk.
    if (text.length === 0) return
    if (this.kind === 'chat') this.write(this.prefix + '"content":' + JSON.stringify(text) + CHAT_TOKEN_SUFFIX)
    else this.write(this.prefix + JSON.stringify(text) + TEXT_TOKEN_SUFFIX)
  }

  onFinish (req: EngineRequest, reason: FinishReason, text: string): void {
    if (this.done) return
    this.done = true
    if (reason === 'abort') {
      if (this.clientGone || this.res.destroyed) return
      // The engine is closing: say so rather than truncating silently (DESIGN 4.1).
      const error = JSON.stringify(new MockerClosedError().toJSON())
      if (this.started) {
        this.write(`data: ${error}\n\n`)
      } else {
        this.res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(error) })
        this.res.end(error)
      }
      return
    }
    if (this.stream) {
      if (!this.started) this.start()
      const tail = this.kind === 'chat'
        ? this.prefix + (text.length > 0 ? '"content":' + JSON.stringify(text) : '') + `},"logprobs":null,"finish_reason":"${reason}"}]}\n\n`
        : this.prefix + JSON.stringify(text) + `,"logprobs":null,"finish_reason":"${reason}"}]}\n\n`
      let out = tail
      if (this.includeUsage) {
        out += `data: {"id":${JSON.stringify(this.id)},"object":"${this.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion'}","created":${this.created},"model":${JSON.stringify(this.model)},"choices":[],"usage":${usageJson(req)}}\n\n`
      }
      this.write(out + DONE)
      return
    }
    if (text.length > 0) this.parts.push(text)
    const content = JSON.stringify(this.parts.join(''))
    const choice = this.kind === 'chat'
      ? `{"index":0,"message":{"role":"assistant","content":${content}},"logprobs":null,"finish_reason":"${reason}"}`
      : `{"index":0,"text":${content},"logprobs":null,"finish_reason":"${reason}"}`
    const body = `{"id":${JSON.stringify(this.id)},"object":"${this.kind === 'chat' ? 'chat.completion' : 'text_completion'}","created":${this.created},"model":${JSON.stringify(this.model)},"choices":[${choice}],"usage":${usageJson(req)}}`
    this.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    this.res.end(body)
  }

  private start (): void {
    this.started = true
    this.res.writeHead(200, SSE_HEADERS)
    // vLLM opens a chat stream with the assistant role.
    if (this.kind === 'chat') this.write(this.prefix + '"role":"assistant","content":""' + CHAT_TOKEN_SUFFIX)
  }

  private write (chunk: string): void {
    this.pending += chunk
    if (!this.flushQueued) {
      this.flushQueued = true
      queueMicrotask(this.boundFlush)
    }
  }

  private flush (): void {
    this.flushQueued = false
    const out = this.pending
    this.pending = ''
    if (this.res.writableEnded || this.res.destroyed) return
    if (this.done) this.res.end(out)
    else this.res.write(out)
  }
}

function usageJson (req: EngineRequest): string {
  const p = req.numPromptTokens
  const c = req.numOutputTokens
  const cached = req.numCachedTokens < 0 ? 0 : req.numCachedTokens
  return `{"prompt_tokens":${p},"completion_tokens":${c},"total_tokens":${p + c},"prompt_tokens_details":{"cached_tokens":${cached}}}`
}
