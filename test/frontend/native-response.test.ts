import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import type { ChatCompletionChunk } from 'openai/resources/chat/completions'
import { createMockEngine, startMockNativeServer, startMockServer } from '../../src/mocker/index.js'
import { NativeUpstream } from '../../src/transport/native/index.js'
import type { NativeRequest, NativeStreamError } from '../../src/transport/native/index.js'
import { OpenAIBodyWriter, OpenAISseWriter } from '../../src/frontend/native-response.js'
import type { OpenAIKind } from '../../src/frontend/native-response.js'

const engine = createMockEngine({ speedupRatio: 0, heartbeatMs: 0, blockSize: 16 })
const httpP = startMockServer(engine, { port: 0 })
const nativeP = startMockNativeServer(engine, { port: 0 })
let upstream: NativeUpstream | null = null
after(async () => {
  await upstream?.close()
  await (await httpP).close(0)
  await (await nativeP).close(0)
  await engine.close()
})

async function up (): Promise<NativeUpstream> {
  upstream ??= new NativeUpstream((await nativeP).url)
  return upstream
}

/** What a gateway would send for an OpenAI body, through the native transport and these writers. */
async function viaNative (kind: OpenAIKind, body: any, onChunk?: (s: string) => void): Promise<string> {
  const req: NativeRequest = {
    model: body.model,
    endpoint: kind === 'chat' ? 'chat' : 'completions',
    sampling: { maxTokens: body.max_tokens, ignoreEos: body.ignore_eos === true },
    ...(kind === 'chat' ? { messages: body.messages } : { prompt: body.prompt })
  }
  const id = kind === 'chat' ? 'chatcmpl-native' : 'cmpl-native'
  const created = 1700000000
  const u = await up()
  return await new Promise<string>((resolve, reject) => {
    if (body.stream === true) {
      const sse = new OpenAISseWriter(kind, id, created, body.model, body.stream_options?.include_usage === true)
      let out = sse.head()
      u.open(req, {
        onItem (item) { const s = sse.item(item); out += s; onChunk?.(s) },
        onEnd () { resolve(out + sse.done()) },
        onError (err: NativeStreamError) { reject(err) }
      })
    } else {
      const w = new OpenAIBodyWriter(kind, id, created, body.model)
      u.open(req, { onItem (item) { w.item(item) }, onEnd () { resolve(w.json()) }, onError: reject })
    }
  })
}

async function viaHttp (kind: OpenAIKind, body: any): Promise<string> {
  const server = await httpP
  const res = await fetch(`${server.url}/v1/${kind === 'chat' ? 'chat/completions' : 'completions'}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
  })
  assert.equal(res.status, 200)
  return await res.text()
}

const normalize = (s: string): string => s.replace(/"id":"[^"]*"/g, '"id":"X"').replace(/"created":\d+/g, '"created":0')

const CASES: Array<[string, OpenAIKind, any]> = [
  ['chat, streamed with usage', 'chat', { model: 'mock-llm', messages: [{ role: 'user', content: 'Say "hi" \\ twice' }], max_tokens: 12, ignore_eos: true, stream: true, stream_options: { include_usage: true } }],
  ['chat, streamed', 'chat', { model: 'mock-llm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 5, ignore_eos: true, stream: true }],
  ['chat, not streamed', 'chat', { model: 'mock-llm', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 9, ignore_eos: true }],
  ['completion, streamed with usage', 'completion', { model: 'mock-llm', prompt: 'Once upon a time', max_tokens: 8, ignore_eos: true, stream: true, stream_options: { include_usage: true } }],
  ['completion, not streamed', 'completion', { model: 'mock-llm', prompt: 'Once upon a time', max_tokens: 8, ignore_eos: true }]
]

for (const [name, kind, body] of CASES) {
  test(`native-response matches the mock engine's HTTP output byte for byte (${name}), ids and timestamps aside`, { timeout: 10_000 }, async () => {
    engine.resetPrefixCache()
    const http = await viaHttp(kind, body)
    engine.resetPrefixCache()
    const native = await viaNative(kind, body)
    assert.equal(normalize(native), normalize(http))
  })
}

test('cached prompt tokens are reported in usage.prompt_tokens_details', { timeout: 10_000 }, async () => {
  const body = { model: 'mock-llm', prompt: 'a shared prefix that is long enough to fill several blocks of sixteen tokens each, yes. '.repeat(6), max_tokens: 3, ignore_eos: true }
  await viaNative('completion', body)
  const second = JSON.parse(await viaNative('completion', body))
  assert.ok(second.usage.prompt_tokens_details.cached_tokens >= 16, JSON.stringify(second.usage))
})

test('the official openai client parses what the writers produce (streamed and not)', { timeout: 15_000 }, async () => {
  // A minimal gateway: OpenAI body in, native transport to the worker, native-response out.
  const gw = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString())
      const kind: OpenAIKind = req.url!.includes('chat') ? 'chat' : 'completion'
      if (body.stream === true) res.writeHead(200, { 'content-type': 'text/event-stream' })
      viaNative(kind, body, (s) => { if (s.length > 0) res.write(s) }).then((all) => {
        if (body.stream === true) res.end('data: [DONE]\n\n')
        else {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(all)
        }
      }, (err: NativeStreamError) => { res.writeHead(err.status); res.end(JSON.stringify(err.toJSON())) })
    })
  })
  await new Promise<void>((resolve) => gw.listen(0, '127.0.0.1', resolve))
  try {
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${(gw.address() as AddressInfo).port}/v1`, apiKey: 'x', maxRetries: 0, timeout: 10_000 })
    const direct = new OpenAI({ baseURL: `${(await httpP).url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 10_000 })
    const params = { model: 'mock-llm', messages: [{ role: 'user' as const, content: 'Write a haiku' }], max_tokens: 10, ignore_eos: true } as any
    const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } }) as unknown as AsyncIterable<ChatCompletionChunk>
    let text = ''
    let finish: string | null = null
    let usage: ChatCompletionChunk['usage'] = null
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk')
      const c = chunk.choices[0]
      if (c !== undefined) {
        text += c.delta.content ?? ''
        if (c.finish_reason !== null) finish = c.finish_reason
      }
      if (chunk.usage !== undefined && chunk.usage !== null) usage = chunk.usage
    }
    engine.resetPrefixCache()
    const want = await direct.chat.completions.create({ ...params, stream: false })
    assert.equal(text, want.choices[0]!.message.content)
    assert.equal(finish, 'length')
    assert.equal(usage?.completion_tokens, 10)
    assert.equal(typeof usage?.prompt_tokens_details?.cached_tokens, 'number')
    const whole = await client.completions.create({ model: 'mock-llm', prompt: 'Hello', max_tokens: 4, ignore_eos: true } as any)
    assert.equal(whole.object, 'text_completion')
    assert.equal(whole.choices[0]!.finish_reason, 'length')
    assert.equal(whole.usage?.completion_tokens, 4)
  } finally {
    await new Promise<void>((resolve) => gw.close(() => resolve()))
  }
})

test('an error after the stream began is one SSE data event with the OpenAI error object', () => {
  const sse = new OpenAISseWriter('chat', 'c', 1, 'm', false)
  const ev = sse.error({ toJSON: () => ({ error: { message: 'boom', type: 'server_error', param: null, code: 'upstream_stream_error' } }) } as any)
  assert.equal(ev, 'data: {"error":{"message":"boom","type":"server_error","param":null,"code":"upstream_stream_error"}}\n\n')
})
