/**
 * Validation of OpenAI chat/completions bodies for the mock engine, down to what it needs: the
 * prompt (templated and tokenized) and the generation knobs vLLM accepts. Fields the engine does
 * not simulate (temperature, top_p, ...) are accepted and ignored, as a model would.
 */
import { Buffer } from 'node:buffer'
import { invalidBody, SwitchyardError } from '../shared/errors.js'
import type { ChatMessage, Tokenizer } from '../tokenize/index.js'
import type { GenerateInput } from './engine.js'

export type ApiKind = 'chat' | 'completion'

export interface ParsedRequest {
  kind: ApiKind
  input: GenerateInput
  stream: boolean
  includeUsage: boolean
}

type Body = Record<string, unknown>

export function modelNotFound (model: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_MODEL_NOT_FOUND', `The model \`${model}\` does not exist.`, {
    status: 404, type: 'not_found_error', apiCode: 'model_not_found', param: 'model'
  })
}

export function parseJsonBody (raw: Buffer): Body {
  let value: unknown
  try {
    value = JSON.parse(raw.toString('utf8'))
  } catch (err) {
    throw new SwitchyardError('SWY_ERR_INVALID_JSON', `the request body is not valid JSON: ${(err as Error).message}`, {
      status: 400, type: 'invalid_request_error', apiCode: 'invalid_json', cause: err
    })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidBody('the request body must be a JSON object')
  return value as Body
}

export function parseGenerateRequest (kind: ApiKind, body: Body, model: string, tokenizer: Tokenizer): ParsedRequest {
  if (body.model !== undefined && body.model !== null) {
    if (typeof body.model !== 'string') throw invalidBody('model must be a string', 'model')
    if (body.model !== model) throw modelNotFound(body.model)
  }
  const promptTokens = kind === 'chat' ? chatPrompt(body, tokenizer) : completionPrompt(body, tokenizer)
  const input: GenerateInput = { promptTokens }
  const maxTokens = optionalInt(body, 'max_completion_tokens', 1) ?? optionalInt(body, 'max_tokens', 1)
  if (maxTokens !== null) input.maxTokens = maxTokens
  const minTokens = optionalInt(body, 'min_tokens', 0)
  if (minTokens !== null) input.minTokens = minTokens
  const priority = optionalInt(body, 'priority', Number.MIN_SAFE_INTEGER)
  if (priority !== null) input.priority = priority
  const seed = optionalInt(body, 'seed', Number.MIN_SAFE_INTEGER)
  if (seed !== null) input.seed = seed
  const ignoreEos = optionalBool(body, 'ignore_eos')
  if (ignoreEos !== null) input.ignoreEos = ignoreEos
  const stop = body.stop
  if (stop !== undefined && stop !== null) {
    if (typeof stop === 'string') input.stop = [stop]
    else if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) input.stop = stop as string[]
    else throw invalidBody('stop must be a string or an array of strings', 'stop')
  }
  const n = optionalInt(body, 'n', 1)
  if (n !== null && n !== 1) throw invalidBody('only n = 1 is supported', 'n')
  const stream = optionalBool(body, 'stream') ?? false
  let includeUsage = false
  const so = body.stream_options
  if (so !== undefined && so !== null) {
    if (typeof so !== 'object' || Array.isArray(so)) throw invalidBody('stream_options must be an object', 'stream_options')
    includeUsage = optionalBool(so as Body, 'include_usage', 'stream_options.include_usage') ?? false
  }
  return { kind, input, stream, includeUsage }
}

function chatPrompt (body: Body, tokenizer: Tokenizer): Uint32Array {
  const messages = body.messages
  if (!Array.isArray(messages) || messages.length === 0) throw invalidBody('messages must be a non-empty array', 'messages')
  for (let i = 0; i < messages.length; i++) {
    const m: unknown = messages[i]
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw invalidBody(`messages[${i}] must be an object`, 'messages')
    const { role, content } = m as Body
    if (typeof role !== 'string') throw invalidBody(`messages[${i}].role must be a string`, 'messages')
    if (content !== undefined && content !== null && typeof content !== 'string' && !Array.isArray(content)) {
      throw invalidBody(`messages[${i}].content must be a string or an array of content parts`, 'messages')
    }
  }
  return tokenizer.encode(tokenizer.applyChatTemplate(messages as ChatMessage[]))
}

function completionPrompt (body: Body, tokenizer: Tokenizer): Uint32Array {
  let prompt = body.prompt
  // A batch of one is a single prompt; larger batches would need several choices.
  if (Array.isArray(prompt) && prompt.length === 1 && (typeof prompt[0] === 'string' || Array.isArray(prompt[0]))) prompt = prompt[0]
  if (typeof prompt === 'string') return tokenizer.encode(prompt)
  if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((t) => Number.isInteger(t) && (t as number) >= 0 && (t as number) <= 0xffffffff)) {
    return Uint32Array.from(prompt as number[])
  }
  throw invalidBody('prompt must be a string, an array of token ids, or a batch of one of those', 'prompt')
}

function optionalInt (body: Body, key: string, min: number): number | null {
  const v = body[key]
  if (v === undefined || v === null) return null
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalidBody(`${key} must be an integer${min > Number.MIN_SAFE_INTEGER ? ` of at least ${min}` : ''}`, key)
  }
  return v
}

function optionalBool (body: Body, key: string, param: string = key): boolean | null {
  const v = body[key]
  if (v === undefined || v === null) return null
  if (typeof v !== 'boolean') throw invalidBody(`${param} must be a boolean`, param)
  return v
}
