import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { parseRequest, parseRequestDocument, type Endpoint, type ParsedRequest } from '../../src/frontend/validate.js'
import { SwitchyardError } from '../../src/shared/errors.js'

/**
 * What a reading of `text` gives: the fields, or the refusal's code and param. The scan
 * (parseRequest on bodies up to 2 KiB) is checked against parseRequestDocument, the checks over
 * JSON.parse's document that the gateway ran on every body before it scanned them.
 */
function read (parse: (e: Endpoint, raw: Buffer) => ParsedRequest, endpoint: Endpoint, text: string): unknown {
  try {
    const p = parse(endpoint, Buffer.from(text, 'utf8'))
    const pr = p.priority
    return { model: p.model, stream: p.stream, includeUsage: p.includeUsage, maxTokens: p.maxTokens, promptChars: p.promptChars, priority: pr === undefined || pr === null || typeof pr === 'number' ? pr : 'other', body: p.body }
  } catch (err) {
    if (!(err instanceof SwitchyardError)) throw err
    assert.equal(err.status, 400)
    return err.apiCode === 'invalid_json' ? { code: 'invalid_json' } : { code: err.apiCode, param: err.param }
  }
}
const scanned = (endpoint: Endpoint, text: string): unknown => read(parseRequest, endpoint, text)
const reference = (endpoint: Endpoint, text: string): unknown => read(parseRequestDocument, endpoint, text)

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

test('bodies past 2 KiB are read through JSON.parse, small ones by the scan, with the same fields and refusals', () => {
  // A long unknown field in front: the body passes 2 KiB, the fields stay what they were.
  const pad = (text: string): string => `{"pad":"${'p'.repeat(3000)}",${text.slice(1)}`
  const fields = (r: unknown): unknown => { const { body: _, ...rest } = r as Record<string, unknown>; return rest }
  assert.equal(parseRequest('chat', Buffer.from(pad(msg('x')))).scanned, false)
  for (const text of CHAT.filter(t => t.startsWith('{"'))) {
    assert.deepEqual(fields(scanned('chat', pad(text))), fields(scanned('chat', text)), `chat body ${text}`)
  }
  assert.equal(parseRequest('chat', Buffer.from(msg('x'))).scanned, true)
  const p = parseRequest('chat', Buffer.from(msg('é😀\n"', { max_tokens: 1e2 })))
  assert.deepEqual([p.promptChars, p.maxTokens, p.model], [5, 100, 'm'], 'characters counted as String#length counts them')
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
