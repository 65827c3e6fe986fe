import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import { startGateway } from '../fixtures/gateway.js'
import { startUpstream, type Upstream } from '../fixtures/openai-upstream.js'
import type { Gateway } from '../../src/frontend/gateway.js'

let a: Upstream, b: Upstream, gw: Gateway, client: OpenAI

before(async () => {
  a = await startUpstream({ name: 'a', models: ['test-model'], tokenDelayMs: 1 })
  b = await startUpstream({ name: 'b', models: ['test-model'], tokenDelayMs: 1 })
  gw = await startGateway(['--worker', a.url, '--worker', b.url])
  client = new OpenAI({ baseURL: gw.url + '/v1', apiKey: 'unused', maxRetries: 0 })
})

after(async () => {
  await gw.close()
  await a.close()
  await b.close()
})

test('the official client gets a chat completion through the gateway', async () => {
  const r = await client.chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 })
  assert.equal(r.choices[0]!.message.content, 't0 t1 t2 ')
  assert.equal(r.usage?.completion_tokens, 3)
})

test('the official client streams a chat completion with usage through the gateway', async () => {
  const stream = await client.chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true, stream_options: { include_usage: true } })
  let text = ''
  let usage = null
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? ''
    if (chunk.usage) usage = chunk.usage
  }
  assert.equal(text, 't0 t1 t2 t3 ')
  assert.equal(usage?.completion_tokens, 4)
})

test('the official client gets completions, streaming and not', async () => {
  const r = await client.completions.create({ model: 'test-model', prompt: 'say', max_tokens: 2 })
  assert.equal(r.choices[0]!.text, 't0 t1 ')
  const s = await client.completions.create({ model: 'test-model', prompt: 'say', max_tokens: 2, stream: true })
  let text = ''
  for await (const c of s) text += c.choices[0]?.text ?? ''
  assert.equal(text, 't0 t1 ')
})

test('models lists the union of the workers models', async () => {
  const list = await client.models.list()
  assert.deepEqual(list.data.map(m => m.id), ['test-model'])
})

test('a request without model is served by the only model, and the worker sees the model', async () => {
  const before = a.received.length + b.received.length
  const res = await fetch(gw.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 1 }) })
  assert.equal(res.status, 200)
  await res.json()
  const all = [...a.received, ...b.received]
  assert.equal(all.length, before + 1)
  const last = a.received.length > 0 && a.received.at(-1)!.body.messages[0].content === 'x' && a.received.at(-1)!.body.model ? a.received.at(-1)! : b.received.at(-1)!
  assert.equal(last.body.model, 'test-model')
})

test('unknown body fields and end-to-end headers pass through untouched; x-request-id is kept and returned', async () => {
  const body = { model: 'test-model', prompt: 'p', max_tokens: 1, my_vendor_field: { nested: [1, 2] }, guided_json: { type: 'object' } }
  const res = await fetch(gw.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json', 'x-custom-thing': 'yes', 'x-request-id': 'rid-123' }, body: JSON.stringify(body) })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('x-request-id'), 'rid-123')
  assert.ok(res.headers.get('x-served-by'), 'worker response headers pass through')
  await res.json()
  const rec = [...a.received, ...b.received].find(r => r.headers['x-request-id'] === 'rid-123')!
  assert.deepEqual(rec.body, body)
  assert.equal(rec.headers['x-custom-thing'], 'yes')
})

test('a request without x-request-id gets a generated one, sent upstream and returned', async () => {
  const res = await fetch(gw.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'test-model', prompt: 'p', max_tokens: 1 }) })
  await res.json()
  const rid = res.headers.get('x-request-id')
  assert.match(rid ?? '', /^[0-9a-f-]{36}$/)
  assert.ok([...a.received, ...b.received].some(r => r.headers['x-request-id'] === rid))
})

test('metrics expose requests, latency histograms and per-worker in-flight', async () => {
  const text = await (await fetch(gw.url + '/metrics')).text()
  assert.match(text, /switchyard_requests_total\{model="test-model",endpoint="chat",status="200"\} \d+/)
  assert.match(text, /switchyard_time_to_first_token_seconds_bucket/)
  assert.match(text, /switchyard_inter_token_latency_seconds_count\{model="test-model"\} [1-9]/)
  assert.match(text, /switchyard_inter_token_latency_seconds_bucket\{le="0.001",model="test-model"\} \d+/)
  assert.match(text, /# TYPE switchyard_inter_token_latency_seconds histogram/)
  assert.match(text, /switchyard_request_duration_seconds_bucket/)
  assert.match(text, /switchyard_worker_in_flight_requests\{worker="127\.0\.0\.1:\d+"\} 0/)
})
