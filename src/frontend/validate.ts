import { Buffer } from 'node:buffer'
import { invalidBody, SwitchyardError } from '../shared/errors.js'
import { checkCountedString, checkJson, checkKey, checkValue, counted, expectedAfter, keyEnd, wordsDone, wordsFor, firstItem, JsonSyntaxError, kindAt, memberValue, nameIs, nextItem, Word, numberValue, skipWs, stringEnd, stringLength, stringValue, trailing, valueEnd } from './json-scan.js'

const QUOTE = 0x22
const BACKSLASH = 0x5c
const LBRACE = 0x7b
const LBRACKET = 0x5b
const RBRACE = 0x7d
const RBRACKET = 0x5d
const COMMA = 0x2c
/** First bytes of null and true. */
const NULL = 0x6e
const TRUE = 0x74

export type Endpoint = 'chat' | 'completions'

/**
 * What the gateway needs to know of an OpenAI request, read from the body's bytes by offset
 * (json-scan.ts); the body itself is forwarded untouched. `body`, the parsed document, is built
 * only when something asks for it: policies that read the prompt, the native transport, a
 * request without a model.
 */
export class ParsedRequest {
  readonly endpoint: Endpoint
  /** The body as the client sent it (valid JSON). */
  readonly raw: Buffer
  /** null when the client named no model. */
  readonly model: string | null
  readonly stream: boolean
  /** stream_options.include_usage */
  readonly includeUsage: boolean
  readonly maxTokens: number | null
  /** UTF-16 code units of prompt text, for the load estimate. */
  readonly promptChars: number
  /** `priority` when it is a number or null; other kinds as their JSON text (priorityClass refuses them); undefined when absent. */
  readonly priority: unknown
  private doc: Record<string, unknown> | null = null
  /** Read by the byte scan (else the body was parsed whole: past SCAN_MAX). */
  readonly scanned: boolean

  constructor (endpoint: Endpoint, raw: Buffer, model: string | null, stream: boolean, includeUsage: boolean, maxTokens: number | null, promptChars: number, priority: unknown, doc: Record<string, unknown> | null = null) {
    this.doc = doc
    this.scanned = doc === null
    this.endpoint = endpoint
    this.raw = raw
    this.model = model
    this.stream = stream
    this.includeUsage = includeUsage
    this.maxTokens = maxTokens
    this.promptChars = promptChars
    this.priority = priority
  }

  get body (): Record<string, unknown> {
    this.doc ??= JSON.parse(this.raw.toString('utf8')) as Record<string, unknown>
    return this.doc
  }
}

function invalidJson (message: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_INVALID_JSON', `the request body is not valid JSON: ${message}`, { status: 400, type: 'invalid_request_error', apiCode: 'invalid_json' })
}

/** JSON.parse for bodies the gateway does build (the workers API): 400 invalid_json when it fails. */
export function parseJsonBody (raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'))
  } catch (err) {
    throw invalidJson((err as Error).message)
  }
}

// The refusals, one wording for both readings (the scan and parseRequestDocument).
const notAnObject = (): SwitchyardError => invalidBody('the request body must be a JSON object')
const badModel = (): SwitchyardError => invalidBody("'model' must be a non-empty string", 'model')
const badStream = (): SwitchyardError => invalidBody("'stream' must be a boolean", 'stream')
const badStreamOptions = (): SwitchyardError => invalidBody("'stream_options' must be an object", 'stream_options')
const streamOptionsWithoutStream = (): SwitchyardError => invalidBody("'stream_options' is only allowed when 'stream' is true", 'stream_options')
const badIncludeUsage = (): SwitchyardError => invalidBody("'stream_options.include_usage' must be a boolean", 'stream_options.include_usage')
const badPositiveInt = (key: string, got: string): SwitchyardError => invalidBody(`'${key}' must be a positive integer (got ${got})`, key)
const badMessages = (): SwitchyardError => invalidBody("'messages' must be a non-empty array of {role, content}", 'messages')
const badMessage = (k: number): SwitchyardError => invalidBody(`'messages[${k}]' must be an object with 'role' and 'content'`, `messages[${k}]`)
const badRole = (k: number): SwitchyardError => invalidBody(`'messages[${k}].role' must be a non-empty string`, `messages[${k}].role`)
const badContent = (where: string): SwitchyardError => invalidBody(`'${where}' must be a string, an array of content parts, or null`, where)
const badPart = (where: string, k: number): SwitchyardError => invalidBody(`'${where}[${k}]' must be a content part object with a 'type'`, where)
const badPrompt = (): SwitchyardError => invalidBody("'prompt' must be a string, an array of strings, an array of token ids, or an array of token-id arrays", 'prompt')
const noPrompt = (): SwitchyardError => invalidBody("'prompt' is required: a string, an array of strings, an array of token ids, or an array of token-id arrays", 'prompt')

/** A value's JSON text for an error message, cut short. */
function shown (b: Buffer, v: number): string {
  const end = valueEnd(b, v)
  return end - v > 64 ? b.toString('utf8', v, v + 61) + '...' : b.toString('utf8', v, end)
}

/** The value at `v` (-1: absent) as a positive integer, null when absent or null. */
function positiveInt (b: Buffer, v: number, key: string): number | null {
  if (v < 0 || b[v] === NULL) return null
  const n = kindAt(b, v) === 'number' ? numberValue(b, v) : NaN
  if (!Number.isInteger(n) || n < 1) throw badPositiveInt(key, shown(b, v))
  return n
}

/** Characters of a message's `content` at `v` (-1: absent) that is not a string; `v` is valid JSON. */
function contentChars (b: Buffer, v: number, where: string): number {
  if (v < 0) return 0
  switch (kindAt(b, v)) {
    case 'string': return stringLength(b, v)
    case 'null': return 0
    case 'array': {
      let n = 0
      let k = 0
      for (let p = firstItem(b, v); p !== -1; p = nextItem(b, valueEnd(b, p)), k++) {
        let type = -1
        let text = -1
        if (b[p] === LBRACE) {
          for (let m = firstItem(b, p); m !== -1;) {
            const mv = memberValue(b, m)
            if (nameIs(b, m, TYPE)) type = mv
            else if (nameIs(b, m, TEXT)) text = mv
            m = nextItem(b, valueEnd(b, mv))
          }
        }
        if (b[p] !== LBRACE || type < 0 || b[type] !== QUOTE) throw badPart(where, k)
        if (text >= 0 && b[text] === QUOTE) n += stringLength(b, text)
      }
      return n
    }
    default: throw badContent(where)
  }
}

function isTokenId (b: Buffer, v: number): boolean {
  if (kindAt(b, v) !== 'number') return false
  const n = numberValue(b, v)
  return Number.isInteger(n) && n >= 0
}

/** Characters of a `prompt` at `v` (-1: absent) that is not a string; `v` is valid JSON. */
function promptChars (b: Buffer, v: number): number {
  if (v >= 0 && b[v] === LBRACKET && firstItem(b, v) !== -1) {
    let n = 0
    for (let p = firstItem(b, v); p !== -1; p = nextItem(b, valueEnd(b, p))) {
      if (b[p] === QUOTE) { n += stringLength(b, p); continue }
      if (isTokenId(b, p)) { n += 4; continue }
      if (b[p] === LBRACKET) {
        let ids = 0
        let q = firstItem(b, p)
        for (; q !== -1 && isTokenId(b, q); q = nextItem(b, valueEnd(b, q))) ids++
        if (q === -1) { n += 4 * ids; continue }
      }
      throw badPrompt()
    }
    return n
  }
  throw noPrompt()
}

const F_MODEL = 0
const F_STREAM = 1
const F_STREAM_OPTIONS = 2
const F_MAX_TOKENS = 3
const F_MAX_COMPLETION_TOKENS = 4
const F_MESSAGES = 5
const F_PROMPT = 6
const F_PRIORITY = 7
const FIELDS = ['model', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'messages', 'prompt', 'priority'].map(name => new Word(name))
const TYPE = new Word('type')
const TEXT = new Word('text')
const CONTENT = new Word('content')
const ROLE = new Word('role')
const INCLUDE_USAGE = new Word('include_usage')

// What one scan found; parseRequest runs to completion before the next, so one set serves all.
/** Where each field's value starts (-1: absent); the last occurrence wins, as in JSON.parse. */
const at = new Int32Array(FIELDS.length)
/** Characters of the last `messages` array's contents, or the first problem found in it. */
let messagesChars = 0
let messagesError: SwitchyardError | null = null
/** Characters of the last `prompt` when it was a string. */
let promptLength = 0

/** Whether the name at `m` (its quote) is spelled `name` byte for byte. */
function spelled (b: Buffer, m: number, name: Word): boolean {
  const codes = name.codes
  for (let k = 0; k < codes.length; k++) if (b[m + 1 + k] !== codes[k]) return false
  return true
}

/** Which field the member name at `m`, ending before `end` (after its quote), names; -1 for none. */
function fieldOf (b: Buffer, m: number, end: number): number {
  // By length first: one or two byte compares settle most names.
  switch (end - m - 2) {
    case 5: if (spelled(b, m, FIELDS[F_MODEL]!)) return F_MODEL; break
    case 6: if (spelled(b, m, FIELDS[F_STREAM]!)) return F_STREAM; if (spelled(b, m, FIELDS[F_PROMPT]!)) return F_PROMPT; break
    case 8: if (spelled(b, m, FIELDS[F_MESSAGES]!)) return F_MESSAGES; if (spelled(b, m, FIELDS[F_PRIORITY]!)) return F_PRIORITY; break
    case 10: if (spelled(b, m, FIELDS[F_MAX_TOKENS]!)) return F_MAX_TOKENS; break
    case 14: if (spelled(b, m, FIELDS[F_STREAM_OPTIONS]!)) return F_STREAM_OPTIONS; break
    case 21: if (spelled(b, m, FIELDS[F_MAX_COMPLETION_TOKENS]!)) return F_MAX_COMPLETION_TOKENS; break
  }
  // A name with escapes may still decode to one of them.
  for (let k = m + 1; k < end; k++) {
    if (b[k] !== BACKSLASH) continue
    for (let f = 0; f < FIELDS.length; f++) if (nameIs(b, m, FIELDS[f]!)) return f
    break
  }
  return -1
}

/**
 * Validates the `messages` array at `i` and reads it on the way (roles present, content
 * characters counted) into messagesChars / messagesError; returns the index after it.
 */
function scanMessages (b: Buffer, i: number): number {
  messagesChars = 0
  messagesError = null
  i = skipWs(b, i + 1)
  if (b[i] === RBRACKET) return i + 1
  for (let k = 0; ; k++) {
    if (b[i] === LBRACE) {
      let role = -1
      let content = -1
      let contentLength = 0
      let j = skipWs(b, i + 1)
      if (b[j] !== RBRACE) {
        for (;;) {
          const name = j
          const v = checkKey(b, j)
          let e: number
          if (nameIs(b, name, CONTENT)) {
            content = v
            if (b[v] === QUOTE) { e = checkCountedString(b, v); contentLength = counted } else e = checkValue(b, v)
          } else {
            if (nameIs(b, name, ROLE)) role = v
            e = checkValue(b, v)
          }
          j = skipWs(b, e)
          if (b[j] === COMMA) { j = skipWs(b, j + 1); continue }
          if (b[j] !== RBRACE) throw expectedAfter(b, j, true)
          break
        }
      }
      i = j + 1
      if (messagesError === null) {
        // A string with any byte between its quotes decodes to a non-empty one.
        if (role < 0 || b[role] !== QUOTE || b[role + 1] === QUOTE) messagesError = badRole(k)
        else if (content >= 0 && b[content] === QUOTE) messagesChars += contentLength
        else {
          try { messagesChars += contentChars(b, content, `messages[${k}].content`) } catch (err) { messagesError = err as SwitchyardError }
        }
      }
    } else {
      i = checkValue(b, i)
      messagesError ??= badMessage(k)
    }
    i = skipWs(b, i)
    if (b[i] === COMMA) { i = skipWs(b, i + 1); continue }
    if (b[i] !== RBRACKET) throw expectedAfter(b, i, false)
    return i + 1
  }
}

/**
 * One pass over the body: validates all of it as JSON and, for a top-level object, notes where
 * the fields the gateway reads start (and reads `messages` and a string `prompt` on the way).
 * Returns false for valid JSON that is not an object.
 */
function scanBody (b: Buffer, endpoint: Endpoint): boolean {
  for (let f = 0; f < at.length; f++) at[f] = -1
  let i = skipWs(b, 0)
  if (b[i] !== LBRACE) {
    checkJson(b)
    return false
  }
  i = skipWs(b, i + 1)
  if (b[i] !== RBRACE) {
    for (;;) {
      const name = i
      const v = checkKey(b, i)
      const f = fieldOf(b, name, keyEnd)
      let e: number
      if (f === F_MESSAGES && endpoint === 'chat' && b[v] === LBRACKET) e = scanMessages(b, v)
      else if (f === F_PROMPT && b[v] === QUOTE) { e = checkCountedString(b, v); promptLength = counted } else e = checkValue(b, v)
      if (f >= 0) at[f] = v
      i = skipWs(b, e)
      if (b[i] === COMMA) { i = skipWs(b, i + 1); continue }
      if (b[i] !== RBRACE) throw expectedAfter(b, i, true)
      break
    }
  }
  i = skipWs(b, i + 1)
  if (i !== b.length) throw trailing(b, i)
  return true
}

// The model names clients send repeat: the last one's bytes and string, to skip a decode.
let lastModelBytes: Buffer | null = null
let lastModel = ''

function modelName (b: Buffer, v: number): string {
  const end = stringEnd(b, v) - 1
  const last = lastModelBytes
  if (last !== null && last.length === end - v - 1) {
    let k = 0
    while (k < last.length && last[k] === b[v + 1 + k]) k++
    if (k === last.length) return lastModel
  }
  const name = stringValue(b, v)
  if (end - v <= 256) {
    lastModelBytes = Buffer.from(b.subarray(v + 1, end))
    lastModel = name
  }
  return name
}

/**
 * Bodies longer than this are parsed with JSON.parse and checked as a document (parseRequestDocument).
 * The scan is cheaper where bodies are small (no garbage, no object building), but its string
 * loop runs more instructions per byte than V8's native parser: with an 8 KiB user message (proxy
 * bench, json8k) scanning cost 2.1x the user-space instructions per request of JSON.parse, and
 * this limit brought them to 0.44-0.53x of the scan-everything build.
 */
const SCAN_MAX = 2048

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function docPositiveInt (body: Record<string, unknown>, key: string): number | null {
  const v = body[key]
  if (v === undefined || v === null) return null
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw badPositiveInt(key, JSON.stringify(v))
  return v
}

function docContentChars (content: unknown, where: string): number {
  if (typeof content === 'string') return content.length
  if (content === null || content === undefined) return 0
  if (Array.isArray(content)) {
    let n = 0
    for (let i = 0; i < content.length; i++) {
      const part = content[i] as unknown
      if (!isObject(part) || typeof part.type !== 'string') throw badPart(where, i)
      if (typeof part.text === 'string') n += part.text.length
    }
    return n
  }
  throw badContent(where)
}

function docPromptChars (prompt: unknown): number {
  if (typeof prompt === 'string') return prompt.length
  if (Array.isArray(prompt) && prompt.length > 0) {
    let n = 0
    for (const p of prompt as unknown[]) {
      if (typeof p === 'string') n += p.length
      else if (typeof p === 'number' && Number.isInteger(p) && p >= 0) n += 4
      else if (Array.isArray(p) && p.every(t => typeof t === 'number' && Number.isInteger(t) && t >= 0)) n += 4 * p.length
      else throw badPrompt()
    }
    return n
  }
  throw noPrompt()
}

/**
 * parseRequest by JSON.parse and checks over the document: what it does past SCAN_MAX, and the
 * reference its scan is tested against. The same fields, refusals and order.
 */
export function parseRequestDocument (endpoint: Endpoint, raw: Buffer): ParsedRequest {
  const doc = parseJsonBody(raw)
  if (!isObject(doc)) throw notAnObject()
  const model = doc.model
  if (model !== undefined && model !== null && (typeof model !== 'string' || model === '')) throw badModel()
  const stream = doc.stream
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') throw badStream()
  const so = doc.stream_options
  if (so !== undefined && so !== null) {
    if (!isObject(so)) throw badStreamOptions()
    if (stream !== true) throw streamOptionsWithoutStream()
    if (so.include_usage !== undefined && typeof so.include_usage !== 'boolean') throw badIncludeUsage()
  }
  const maxTokens = docPositiveInt(doc, 'max_tokens') ?? docPositiveInt(doc, 'max_completion_tokens')
  let chars = 0
  if (endpoint === 'chat') {
    const messages = doc.messages
    if (!Array.isArray(messages) || messages.length === 0) throw badMessages()
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as unknown
      if (!isObject(m)) throw badMessage(i)
      if (typeof m.role !== 'string' || m.role === '') throw badRole(i)
      chars += docContentChars(m.content, `messages[${i}].content`)
    }
  } else {
    chars = docPromptChars(doc.prompt)
  }
  const p = doc.priority
  const priority = p === undefined || p === null || typeof p === 'number' ? p : JSON.stringify(p)
  return new ParsedRequest(endpoint, raw, typeof model === 'string' ? model : null, stream === true, isObject(so) && so.include_usage === true, maxTokens, chars, priority, doc)
}

/**
 * Checks the fields the gateway relies on and nothing else: unknown fields pass through to the
 * worker, which validates its own. Throws a 400 SwitchyardError naming the field (invalid_json
 * when the body is not JSON at all).
 */
export function parseRequest (endpoint: Endpoint, raw: Buffer): ParsedRequest {
  if (raw.length > SCAN_MAX) return parseRequestDocument(endpoint, raw)
  const b = raw
  let isObject: boolean
  wordsFor(b)
  try {
    isObject = scanBody(b, endpoint)
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw invalidJson(err.message)
    throw err
  } finally {
    wordsDone()
  }
  if (!isObject) throw notAnObject()
  const mv = at[F_MODEL]!
  let model: string | null = null
  if (mv >= 0 && b[mv] !== NULL) {
    if (b[mv] !== QUOTE || b[mv + 1] === QUOTE) throw badModel()
    model = modelName(b, mv)
  }
  const sv = at[F_STREAM]!
  if (sv >= 0 && b[sv] !== NULL && kindAt(b, sv) !== 'boolean') throw badStream()
  const stream = sv >= 0 && b[sv] === TRUE
  const so = at[F_STREAM_OPTIONS]!
  let includeUsage = false
  if (so >= 0 && b[so] !== NULL) {
    if (b[so] !== LBRACE) throw badStreamOptions()
    if (!stream) throw streamOptionsWithoutStream()
    let iu = -1
    for (let m = firstItem(b, so); m !== -1;) {
      const v = memberValue(b, m)
      if (nameIs(b, m, INCLUDE_USAGE)) iu = v
      m = nextItem(b, valueEnd(b, v))
    }
    if (iu >= 0 && kindAt(b, iu) !== 'boolean') throw badIncludeUsage()
    includeUsage = iu >= 0 && b[iu] === TRUE
  }
  const maxTokens = positiveInt(b, at[F_MAX_TOKENS]!, 'max_tokens') ?? positiveInt(b, at[F_MAX_COMPLETION_TOKENS]!, 'max_completion_tokens')
  let chars: number
  if (endpoint === 'chat') {
    const v = at[F_MESSAGES]!
    if (v < 0 || b[v] !== LBRACKET || firstItem(b, v) === -1) throw badMessages()
    if (messagesError !== null) throw messagesError
    chars = messagesChars
  } else {
    const v = at[F_PROMPT]!
    chars = v >= 0 && b[v] === QUOTE ? promptLength : promptChars(b, v)
  }
  const pv = at[F_PRIORITY]!
  const priority = pv < 0 ? undefined : b[pv] === NULL ? null : kindAt(b, pv) === 'number' ? numberValue(b, pv) : shown(b, pv)
  return new ParsedRequest(endpoint, raw, model, stream, includeUsage, maxTokens, chars, priority)
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
