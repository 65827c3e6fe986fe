import { Buffer } from 'node:buffer'
import { invalidBody, SwitchyardError } from '../shared/errors.js'

export type Endpoint = 'chat' | 'completions'

/** What the gateway needs to know of an OpenAI request; the body itself is forwarded untouched. */
export interface ParsedRequest {
  endpoint: Endpoint
  body: Record<string, unknown>
  /** null when the client named no model. */
  model: string | null
  stream: boolean
  maxTokens: number | null
  /** Characters of prompt text, for the load estimate. */
  promptChars: number
}

export function parseJsonBody (raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'))
  } catch (err) {
    throw new SwitchyardError('SWY_ERR_INVALID_JSON', `the request body is not valid JSON: ${(err as Error).message}`, { status: 400, type: 'invalid_request_error', apiCode: 'invalid_json' })
  }
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function positiveInt (body: Record<string, unknown>, key: string): number | null {
  const v = body[key]
  if (v === undefined || v === null) return null
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw invalidBody(`'${key}' must be a positive integer (got ${JSON.stringify(v)})`, key)
  return v
}

function contentChars (content: unknown, where: string): number {
  if (typeof content === 'string') return content.length
  if (content === null || content === undefined) return 0
  if (Array.isArray(content)) {
    let n = 0
    for (let i = 0; i < content.length; i++) {
      const part = content[i]
      if (!isObject(part) || typeof part.type !== 'string') throw invalidBody(`'${where}[${i}]' must be a content part object with a 'type'`, where)
      if (typeof part.text === 'string') n += part.text.length
    }
    return n
  }
  throw invalidBody(`'${where}' must be a string, an array of content parts, or null`, where)
}

function promptChars (prompt: unknown): number {
  if (typeof prompt === 'string') return prompt.length
  if (Array.isArray(prompt) && prompt.length > 0) {
    let n = 0
    for (const p of prompt) {
      if (typeof p === 'string') n += p.length
      else if (typeof p === 'number' && Number.isInteger(p) && p >= 0) n += 4
      else if (Array.isArray(p) && p.every(t => typeof t === 'number' && Number.isInteger(t) && t >= 0)) n += 4 * p.length
      else throw invalidBody("'prompt' must be a string, an array of strings, an array of token ids, or an array of token-id arrays", 'prompt')
    }
    return n
  }
  throw invalidBody("'prompt' is required: a string, an array of strings, an array of token ids, or an array of token-id arrays", 'prompt')
}

/**
 * Checks the fields the gateway relies on and nothing else: unknown fields pass through to the
 * worker, which validates its own. Throws a 400 SwitchyardError naming the field.
 */
export function validateRequest (endpoint: Endpoint, doc: unknown): ParsedRequest {
  if (!isObject(doc)) throw invalidBody('the request body must be a JSON object')
  const body = doc
  const model = body.model
  if (model !== undefined && model !== null && (typeof model !== 'string' || model === '')) throw invalidBody("'model' must be a non-empty string", 'model')
  const stream = body.stream
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') throw invalidBody("'stream' must be a boolean", 'stream')
  const so = body.stream_options
  if (so !== undefined && so !== null) {
    if (!isObject(so)) throw invalidBody("'stream_options' must be an object", 'stream_options')
    if (stream !== true) throw invalidBody("'stream_options' is only allowed when 'stream' is true", 'stream_options')
    if (so.include_usage !== undefined && typeof so.include_usage !== 'boolean') throw invalidBody("'stream_options.include_usage' must be a boolean", 'stream_options.include_usage')
  }
  const maxTokens = positiveInt(body, 'max_tokens') ?? positiveInt(body, 'max_completion_tokens')
  let chars = 0
  if (endpoint === 'chat') {
    const messages = body.messages
    if (!Array.isArray(messages) || messages.length === 0) throw invalidBody("'messages' must be a non-empty array of {role, content}", 'messages')
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]
      if (!isObject(m)) throw invalidBody(`'messages[${i}]' must be an object with 'role' and 'content'`, `messages[${i}]`)
      if (typeof m.role !== 'string' || m.role === '') throw invalidBody(`'messages[${i}].role' must be a non-empty string`, `messages[${i}].role`)
      chars += contentChars(m.content, `messages[${i}].content`)
    }
  } else {
    chars = promptChars(body.prompt)
  }
  return { endpoint, body, model: typeof model === 'string' ? model : null, stream: stream === true, maxTokens, promptChars: chars }
}

/**
 * The text a text-based policy (cache_aware) matches on: the prompt, or the messages as
 * `role: content` lines, so two chats sharing a system prompt and early turns share a prefix.
 */
export function promptText (p: ParsedRequest): string {
  const body = p.body
  if (p.endpoint === 'completions') {
    const prompt = body.prompt
    if (typeof prompt === 'string') return prompt
    return Array.isArray(prompt) ? prompt.map(x => typeof x === 'string' ? x : JSON.stringify(x)).join('\n') : ''
  }
  let out = ''
  for (const m of body.messages as Array<Record<string, unknown>>) {
    const c = m.content
    const text = typeof c === 'string' ? c : Array.isArray(c) ? c.map(part => typeof part?.text === 'string' ? part.text : '').join('\n') : ''
    out += `${String(m.role)}: ${text}\n`
  }
  return out
}
