import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { startGateway } from '../fixtures/gateway.js'
import { startUpstream, type Upstream } from '../fixtures/openai-upstream.js'
import type { Gateway } from '../../src/frontend/gateway.js'

let up: Upstream, gw: Gateway, keyed: Gateway

before(async () => {
  up = await startUpstream({ models: ['m1'] })
  gw = await startGateway(['--worker', up.url, '--max-body-size', '2048'])
  keyed = await startGateway(['--worker', 'm1=' + up.url, '--api-key', 'sekret', '--admin-key', 'adm'])
})

after(async () => {
  await gw.close()
  await keyed.close()
  await up.close()
})

interface Case { name: string, method?: string, path?: string, body?: string, headers?: Record<string, string>, status: number, type: string, code: string, param?: string | null, gateway?: 'keyed' }

const chat = (o: unknown): string => JSON.stringify(o)
const CASES: Case[] = [
  { name: 'malformed JSON', body: '{"model": "m1", ', status: 400, type: 'invalid_request_error', code: 'invalid_json' },
  { name: 'body is an array', body: '[1,2]', status: 400, type: 'invalid_request_error', code: 'invalid_value' },
  { name: 'messages missing', body: chat({ model: 'm1' }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'messages' },
  { name: 'messages not an array', body: chat({ model: 'm1', messages: 'hi' }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'messages' },
  { name: 'message without role', body: chat({ model: 'm1', messages: [{ content: 'x' }] }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'messages[0].role' },
  { name: 'message content a number', body: chat({ model: 'm1', messages: [{ role: 'user', content: 5 }] }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'messages[0].content' },
  { name: 'max_tokens zero', body: chat({ model: 'm1', messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'max_tokens' },
  { name: 'max_tokens a string', body: chat({ model: 'm1', messages: [{ role: 'user', content: 'x' }], max_tokens: '5' }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'max_tokens' },
  { name: 'max_tokens fractional', body: chat({ model: 'm1', messages: [{ role: 'user', content: 'x' }], max_tokens: 1.5 }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'max_tokens' },
  { name: 'stream a string', body: chat({ model: 'm1', messages: [{ role: 'user', content: 'x' }], stream: 'yes' }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'stream' },
  { name: 'stream_options without stream', body: chat({ model: 'm1', messages: [{ role: 'user', content: 'x' }], stream_options: { include_usage: true } }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'stream_options' },
  { name: 'model a number', body: chat({ model: 7, messages: [{ role: 'user', content: 'x' }] }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'model' },
  { name: 'completions without prompt', path: '/v1/completions', body: chat({ model: 'm1' }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'prompt' },
  { name: 'completions prompt an object', path: '/v1/completions', body: chat({ model: 'm1', prompt: { a: 1 } }), status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'prompt' },
  { name: 'unknown model', body: chat({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }), status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model' },
  { name: 'unknown route', path: '/v1/embeddingz', body: '{}', status: 404, type: 'not_found_error', code: 'not_found' },
  { name: 'wrong method', method: 'GET', status: 405, type: 'invalid_request_error', code: 'method_not_allowed' },
  { name: 'body over the limit', body: chat({ model: 'm1', messages: [{ role: 'user', content: 'x'.repeat(4096) }] }), status: 413, type: 'invalid_request_error', code: 'request_too_large' },
  { name: 'missing API key', gateway: 'keyed', body: chat({ model: 'm1', messages: [{ role: 'user', content: 'x' }] }), status: 401, type: 'authentication_error', code: 'invalid_api_key' },
  { name: 'wrong API key', gateway: 'keyed', headers: { authorization: 'Bearer nope' }, body: chat({ model: 'm1', messages: [{ role: 'user', content: 'x' }] }), status: 401, type: 'authentication_error', code: 'invalid_api_key' },
  { name: 'workers API without admin key', gateway: 'keyed', method: 'GET', path: '/workers', headers: { authorization: 'Bearer sekret' }, status: 401, type: 'authentication_error', code: 'invalid_api_key' },
  { name: 'POST /workers with a bad URL', method: 'POST', path: '/workers', body: chat({ url: 'not a url' }), status: 400, type: 'invalid_request_error', code: 'invalid_value' },
  { name: 'DELETE of an unknown worker', method: 'DELETE', path: '/workers/nope', status: 404, type: 'not_found_error', code: 'worker_not_found' }
]

for (const c of CASES) {
  test(`bad input: ${c.name} -> ${c.status} ${c.code}`, async () => {
    const g = c.gateway === 'keyed' ? keyed : gw
    const res = await request(g.url + (c.path ?? '/v1/chat/completions'), {
      method: (c.method ?? 'POST') as 'POST',
      headers: { 'content-type': 'application/json', ...c.headers },
      body: c.body ?? null
    })
    const doc = await res.body.json() as any
    assert.equal(res.statusCode, c.status)
    assert.deepEqual(Object.keys(doc.error).sort(), ['code', 'message', 'param', 'type'])
    assert.equal(doc.error.type, c.type)
    assert.equal(doc.error.code, c.code)
    assert.equal(typeof doc.error.message, 'string')
    if (c.param !== undefined) assert.equal(doc.error.param, c.param)
  })
}

test('the unknown-model 404 lists the served models', async () => {
  const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: chat({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }) })
  const doc = await res.body.json() as any
  assert.match(doc.error.message, /served models: m1/)
})

test('405 names the allowed methods in Allow', async () => {
  const res = await request(gw.url + '/v1/chat/completions', { method: 'GET' })
  await res.body.dump()
  assert.equal(res.headers.allow, 'POST')
})

test('the right keys pass: API key on /v1, admin key on /workers', async () => {
  const ok = await request(keyed.url + '/v1/chat/completions', { method: 'POST', headers: { authorization: 'Bearer sekret' }, body: chat({ model: 'm1', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 }) })
  await ok.body.dump()
  assert.equal(ok.statusCode, 200)
  const w = await request(keyed.url + '/workers', { headers: { authorization: 'Bearer adm' } })
  assert.equal(w.statusCode, 200)
  assert.equal((await w.body.json() as any).data.length, 1)
  // The gateway's own key is not forwarded to the worker.
  assert.equal(up.received.at(-1)!.headers.authorization, undefined)
})

test('garbage that is not HTTP gets a 400 and the gateway keeps serving', async () => {
  const net = await import('node:net')
  const u = new URL(gw.url)
  const reply = await new Promise<string>((resolve) => {
    const s = net.connect(Number(u.port), u.hostname, () => s.write('NOT HTTP AT ALL\r\n\r\n'))
    let data = ''
    s.on('data', d => { data += d })
    s.on('close', () => resolve(data))
  })
  assert.match(reply, /^HTTP\/1.1 400/)
  const res = await request(gw.url + '/health')
  assert.equal(res.statusCode, 200)
  await res.body.dump()
})
