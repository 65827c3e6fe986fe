import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { parseRequest, type Endpoint } from '../../src/frontend/validate.js'
import { SwitchyardError } from '../../src/shared/errors.js'

/**
 * The reference: the checks as written over JSON.parse's document, before the gateway read
 * bodies by offset. parseRequest must agree with it on every body.
 */
class Bad extends Error { constructor (readonly param: string | null) { super(param ?? 'body') } }
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
function positiveInt (body: Record<string, unknown>, key: string): number | null {
  const v = body[key]
  if (v === undefined || v === null) return null
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Bad(key)
  return v
}
function contentChars (content: unknown, where: string): number {
  if (typeof content === 'string') return content.length
  if (content === null || content === undefined) return 0
  if (Array.isArray(content)) {
    let n = 0
    for (const part of content) {
      if (!isObject(part) || typeof part.type !== 'string') throw new Bad(where)
      if (typeof part.text === 'string') n += part.text.length
    }
    return n
  }
  throw new Bad(where)
}
function promptChars (prompt: unknown): number {
  if (typeof prompt === 'string') return prompt.length
  if (Array.isArray(prompt) && prompt.length > 0) {
    let n = 0
    for (const p of prompt) {
      if (typeof p === 'string') n += p.length
      else if (typeof p === 'number' && Number.isInteger(p) && p >= 0) n += 4
      else if (Array.isArray(p) && p.every(t => typeof t === 'number' && Number.isInteger(t) && t >= 0)) n += 4 * p.length
      else throw new Bad('prompt')
    }
    return n
  }
  throw new Bad('prompt')
}
function reference (endpoint: Endpoint, text: string): unknown {
  let doc: unknown
  try { doc = JSON.parse(text) } catch { return { code: 'invalid_json' } }
  try {
    if (!isObject(doc)) throw new Bad(null)
    const { model, stream, stream_options: so } = doc
    if (model !== undefined && model !== null && (typeof model !== 'string' || model === '')) throw new Bad('model')
    if (stream !== undefined && stream !== null && typeof stream !== 'boolean') throw new Bad('stream')
    if (so !== undefined && so !== null) {
      if (!isObject(so)) throw new Bad('stream_options')
      if (stream !== true) throw new Bad('stream_options')
      if (so.include_usage !== undefined && typeof so.include_usage !== 'boolean') throw new Bad('stream_options.include_usage')
    }
    const maxTokens = positiveInt(doc, 'max_tokens') ?? positiveInt(doc, 'max_completion_tokens')
    let chars = 0
    if (endpoint === 'chat') {
      const messages = doc.messages
      if (!Array.isArray(messages) || messages.length === 0) throw new Bad('messages')
      messages.forEach((m: unknown, i) => {
        if (!isObject(m)) throw new Bad(`messages[${i}]`)
        if (typeof m.role !== 'string' || m.role === '') throw new Bad(`messages[${i}].role`)
        chars += contentChars(m.content, `messages[${i}].content`)
      })
    } else chars = promptChars(doc.prompt)
    const p = doc.priority
    return { model: typeof model === 'string' ? model : null, stream: stream === true, includeUsage: isObject(so) && so.include_usage === true, maxTokens, promptChars: chars, priority: p === undefined || p === null || typeof p === 'number' ? p : 'other', body: doc }
  } catch (err) {
    if (err instanceof Bad) return { code: 'invalid_value', param: err.param }
    throw err
  }
}

function scanned (endpoint: Endpoint, text: string): unknown {
  try {
    const p = parseRequest(endpoint, Buffer.from(text, 'utf8'))
    const pr = p.priority
    return { model: p.model, stream: p.stream, includeUsage: p.includeUsage, maxTokens: p.maxTokens, promptChars: p.promptChars, priority: pr === undefined || pr === null || typeof pr === 'number' ? pr : 'other', body: p.body }
  } catch (err) {
    if (!(err instanceof SwitchyardError)) throw err
    assert.equal(err.status, 400)
    return err.apiCode === 'invalid_json' ? { code: 'invalid_json' } : { code: err.apiCode, param: err.param }
  }
}

const msg = (content: unknown, extra: Record<string, unknown> = {}): string => JSON.stringify({ model: 'm', messages: [{ role: 'user', content }], ...extra })
const CHAT = [
  msg('Hello, how are you?', { max_tokens: 16, stream: false }),
  msg('x', { stream: true, stream_options: { include_usage: true } }),
  msg('x', { stream: true, stream_options: { include_usage: null } }),
  msg('x', { stream: true, stream_options: {} }),
  msg('x', { stream: false, stream_options: { include_usage: true } }),
  msg('x', { stream_options: null, stream: null }),
  msg('x', { stream_options: [] , stream: true }),
  msg('é😀\n"', { max_tokens: 1e2 }), msg('x', { max_tokens: 16.0 }), msg('x', { max_tokens: 0 }), msg('x', { max_tokens: -3 }), msg('x', { max_tokens: '5' }),
  '{"model":"m","messages":[{"role":"u","content":"x"}],"max_tokens":1e400}', msg('x', { max_tokens: null, max_completion_tokens: 7 }), msg('x', { max_tokens: 5, max_completion_tokens: 'bad' }), msg('x', { max_completion_tokens: 2.5 }),
  msg(null), msg(5), msg(true), msg({}), msg([]), msg([{ type: 'text', text: 'abc' }, { type: 'image_url', image_url: { url: 'x' } }]), msg([{ text: 'abc' }]), msg(['a']), msg([{ type: 7 }]),
  msg('x', { priority: -5 }), msg('x', { priority: 2.5 }), msg('x', { priority: '1' }), msg('x', { priority: null }), msg('x', { priority: [1] }),
  JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }), JSON.stringify({ model: null, messages: [{ role: 'user', content: 'x' }] }),
  JSON.stringify({ model: '', messages: [{ role: 'user', content: 'x' }] }), JSON.stringify({ model: 7, messages: [] }), JSON.stringify({ model: 'm', messages: [] }),
  JSON.stringify({ model: 'm', messages: {} }), JSON.stringify({ model: 'm', messages: [1] }), JSON.stringify({ model: 'm', messages: [{ content: 'x' }] }),
  JSON.stringify({ model: 'm', messages: [{ role: '', content: 'x' }] }), JSON.stringify({ model: 'm', messages: [{ role: 5, content: 'x' }] }),
  JSON.stringify({ model: 'm', messages: [{ role: 'a', content: 'x' }, { role: 'b', content: 3 }] }),
  '{"model":"m","messages":[{"role":"user","content":5,"content":"ok"}]}', '{"model":"m","model":7,"messages":[{"role":"u","content":"x"}]}',
  '{"mod\\u0065l":"m\\u00e9","messages":[{"r\\u006fle":"\\u0075","content":"\\ud83d\\ude00"}]}', '{"model":"m","messages":[{"role":"\\n","content":""}]}',
  '[1,2]', '"text"', '7', 'null', '{"model": "m", ', '', '  {"model":"m","messages":[{"role":"u","content":"x"}]}  ', '{"model":"m","messages":[{"role":"u","content":"x"}]} x'
]
const COMPLETIONS = [
  '{"model":"m","prompt":"once upon"}', '{"model":"m","prompt":["a","bé"]}', '{"model":"m","prompt":[1,2,3]}', '{"model":"m","prompt":[[1,2],[3]]}',
  '{"model":"m","prompt":[[1,-2]]}', '{"model":"m","prompt":[[]]}', '{"model":"m","prompt":[]}', '{"model":"m","prompt":[1.5]}', '{"model":"m","prompt":{"a":1}}',
  '{"model":"m"}', '{"model":"m","prompt":null}', '{"model":"m","prompt":["a",[1,"x"]]}', '{"model":"m","prompt":"x","max_tokens":3,"stream":true,"stream_options":{"include_usage":false}}'
]

test('parseRequest reads the same fields and refuses the same bodies (with the same param) as the checks over JSON.parse', () => {
  for (const text of CHAT) assert.deepEqual(scanned('chat', text), reference('chat', text), `chat body ${text}`)
  for (const text of COMPLETIONS) assert.deepEqual(scanned('completions', text), reference('completions', text), `completions body ${text}`)
})

test('bodies past the scan\'s size limit (parsed with JSON.parse) give the same fields and refusals', () => {
  // A long unknown field in front: the body passes 2 KiB, the fields stay what they were.
  const pad = (text: string): string => text.startsWith('{') && text.length > 1 ? `{"pad":"${'p'.repeat(3000)}",${text.slice(1)}` : text
  for (const text of CHAT.map(pad)) assert.deepEqual(scanned('chat', text), reference('chat', text), `chat body ${text.slice(3000)}`)
  for (const text of COMPLETIONS.map(pad)) assert.deepEqual(scanned('completions', text), reference('completions', text), `completions body ${text.slice(3000)}`)
  const long = pad(JSON.stringify({ model: 'm', messages: [{ role: 'u', content: 'x' }] }))
  assert.ok(Buffer.byteLength(long) > 2048)
})

test('the parsed body is built once, on demand, and can be changed (a request without a model gets one)', () => {
  const p = parseRequest('chat', Buffer.from('{"messages":[{"role":"u","content":"x"}],"temperature":0.5}'))
  assert.equal(p.model, null)
  assert.equal(p.body, p.body)
  p.body.model = 'm'
  assert.equal(JSON.stringify(p.body), '{"messages":[{"role":"u","content":"x"}],"temperature":0.5,"model":"m"}')
})

test('a refused body names the field and says what is wrong', () => {
  assert.throws(() => parseRequest('chat', Buffer.from(msg('x', { max_tokens: 'five' }))), (err: unknown) => err instanceof SwitchyardError && err.message === "'max_tokens' must be a positive integer (got \"five\")")
  assert.throws(() => parseRequest('chat', Buffer.from('{"model": "m1", ')), (err: unknown) => err instanceof SwitchyardError && /^the request body is not valid JSON: unexpected end of input, expected a property name at byte 16$/.test(err.message))
})
