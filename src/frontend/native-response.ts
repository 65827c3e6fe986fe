/**
 * OpenAI response bytes straight from native response items (src/transport/native): SSE chunks
 * (`chat.completion.chunk` / `text_completion`) or the non-streaming JSON body.
 *
 * Why not build objects and JSON.stringify them: over HTTP the proxy forwards the worker's bytes;
 * over the native transport the text arrives as a plain string, so the chunk is the per-request
 * prefix (id, object, created, model: serialized once) + the escaped delta + a constant suffix.
 * Each delta is escaped exactly once and nothing is parsed. The shapes match the mock engine's own
 * HTTP writer (src/mocker/openai-response.ts) byte for byte except id and created, and vLLM's.
 */
import { Buffer } from 'node:buffer'
import type { SwitchyardError } from '../shared/errors.js'
import type { NativeUsage, ResponseItem } from '../transport/native/index.js'

export type OpenAIKind = 'chat' | 'completion'

const DONE = 'data: [DONE]\n\n'
const CHAT_DELTA_SUFFIX = '},"logprobs":null,"finish_reason":null}]}\n\n'
const TEXT_DELTA_SUFFIX = ',"logprobs":null,"finish_reason":null}]}\n\n'
const CHAT_DELTA_SUFFIX_BYTES = Buffer.from('"' + CHAT_DELTA_SUFFIX)
const TEXT_DELTA_SUFFIX_BYTES = Buffer.from('"' + TEXT_DELTA_SUFFIX)

/**
 * Formats one streamed answer. Call head() once, item() per item, done() after the stream's end;
 * write what they return (empty strings included: cheaper than checking).
 *
 * @example
 * const sse = new OpenAISseWriter('chat', 'chatcmpl-1', Math.floor(Date.now() / 1000), 'mock-llm', includeUsage)
 * res.write(sse.head())
 * upstream.open(req, { onItem: (it) => res.write(sse.item(it)), onEnd: () => res.end(sse.done()), onError: (e) => res.end(sse.error(e)) })
 */
export class OpenAISseWriter {
  readonly kind: OpenAIKind
  readonly includeUsage: boolean
  /** `data: {...,"choices":[{"index":0,"delta":{` (chat) or `..."text":` (completion), built once. */
  private readonly prefix: string
  /** `data: {"id":...,"model":...,` for the usage chunk. */
  private readonly head0: string
  /** A delta chunk's bytes around the JSON string's content (quotes included), for ChunkWriter.writeJsonString. */
  readonly deltaPrefix: Buffer
  readonly deltaSuffix: Buffer

  constructor (kind: OpenAIKind, id: string, created: number, model: string, includeUsage: boolean) {
    this.kind = kind
    this.includeUsage = includeUsage
    this.head0 = `data: {"id":${JSON.stringify(id)},"object":"${kind === 'chat' ? 'chat.completion.chunk' : 'text_completion'}","created":${created},"model":${JSON.stringify(model)},`
    this.prefix = this.head0 + (kind === 'chat' ? '"choices":[{"index":0,"delta":{' : '"choices":[{"index":0,"text":')
    this.deltaPrefix = Buffer.from(this.prefix + (kind === 'chat' ? '"content":"' : '"'))
    this.deltaSuffix = kind === 'chat' ? CHAT_DELTA_SUFFIX_BYTES : TEXT_DELTA_SUFFIX_BYTES
  }

  /** The opening chunk: vLLM starts a chat stream with the assistant role; completions have none. */
  head (): string {
    return this.kind === 'chat' ? this.prefix + '"role":"assistant","content":""' + CHAT_DELTA_SUFFIX : ''
  }

  /** The chunk(s) for one item: a delta, and on the last item the finish chunk and (if asked) usage. */
  item (item: ResponseItem): string {
    const text = item.text
    const finish = item.finishReason
    if (finish === null) {
      if (text === null || text.length === 0) return ''
      return this.kind === 'chat'
        ? this.prefix + '"content":' + JSON.stringify(text) + CHAT_DELTA_SUFFIX
        : this.prefix + JSON.stringify(text) + TEXT_DELTA_SUFFIX
    }
    const hasText = text !== null && text.length > 0
    let out = this.kind === 'chat'
      ? this.prefix + (hasText ? '"content":' + JSON.stringify(text) : '') + `},"logprobs":null,"finish_reason":${JSON.stringify(finish)}}]}\n\n`
      : this.prefix + JSON.stringify(hasText ? text : '') + `,"logprobs":null,"finish_reason":${JSON.stringify(finish)}}]}\n\n`
    if (this.includeUsage && item.usage !== null) out += this.head0 + '"choices":[],"usage":' + usageJson(item.usage) + '}\n\n'
    return out
  }

  /** The terminator, after the stream's end. */
  done (): string {
    return DONE
  }

  /** A failure after the stream began: one data event with the error object (DESIGN 4.1), then close. */
  error (err: SwitchyardError): string {
    return `data: ${JSON.stringify(err.toJSON())}\n\n`
  }
}

/**
 * Collects a non-streamed answer and renders the `chat.completion` / `text_completion` body.
 *
 * @example
 * const body = new OpenAIBodyWriter('completion', 'cmpl-1', created, 'mock-llm')
 * upstream.open(req, { onItem: (it) => body.item(it), onEnd: () => sendJson(res, body.json()), ... })
 */
export class OpenAIBodyWriter {
  readonly kind: OpenAIKind
  private readonly id: string
  private readonly created: number
  private readonly model: string
  private readonly parts: string[]
  private finishReason: string | null
  private usage: NativeUsage | null

  constructor (kind: OpenAIKind, id: string, created: number, model: string) {
    this.kind = kind
    this.id = id
    this.created = created
    this.model = model
    this.parts = []
    this.finishReason = null
    this.usage = null
  }

  item (item: ResponseItem): void {
    if (item.text !== null && item.text.length > 0) this.parts.push(item.text)
    if (item.finishReason !== null) this.finishReason = item.finishReason
    if (item.usage !== null) this.usage = { promptTokens: item.usage.promptTokens, completionTokens: item.usage.completionTokens, cachedTokens: item.usage.cachedTokens }
  }

  /** The JSON body (call after the stream's end). */
  json (): string {
    const content = JSON.stringify(this.parts.join(''))
    const finish = this.finishReason === null ? 'null' : JSON.stringify(this.finishReason)
    const choice = this.kind === 'chat'
      ? `{"index":0,"message":{"role":"assistant","content":${content}},"logprobs":null,"finish_reason":${finish}}`
      : `{"index":0,"text":${content},"logprobs":null,"finish_reason":${finish}}`
    const usage = this.usage === null ? '' : `,"usage":${usageJson(this.usage)}`
    return `{"id":${JSON.stringify(this.id)},"object":"${this.kind === 'chat' ? 'chat.completion' : 'text_completion'}","created":${this.created},"model":${JSON.stringify(this.model)},"choices":[${choice}]${usage}}`
  }
}

function usageJson (u: NativeUsage): string {
  const p = u.promptTokens
  const c = u.completionTokens
  return `{"prompt_tokens":${p},"completion_tokens":${c},"total_tokens":${p + c},"prompt_tokens_details":{"cached_tokens":${u.cachedTokens}}}`
}
