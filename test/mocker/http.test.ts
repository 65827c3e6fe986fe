import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request as httpRequest } from 'node:http'
import OpenAI from 'openai'
import { createMockEngine, startMockServer } from '../../src/mocker/index.js'
import type { MockEngine, MockServer } from '../../src/mocker/index.js'

const engine = createMockEngine({ speedupRatio: 50, blockSize: 16, numGpuBlocks: 4096, heartbeatMs: 0 })
const serverP = startMockServer(engine, { port: 0 })
after(async () => {
  await (await serverP).close()
  await engine.close()
})

async function client (): Promise<OpenAI> {
  const server = await serverP
  return new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 10000 })
}

async function post (path: string, body: string | object, method = 'POST'): Promise<{ status: number, json: any, headers: Headers }> {
  const server = await serverP
  const res = await fetch(server.url + path, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(method === 'GET' ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) })
  })
  const text = await res.text()
  return { status: res.status, json: text.length > 0 && res.headers.get('content-type')?.includes('json') === true ? JSON.parse(text) : text, headers: res.headers }
}

const longText = (seed: string): string => Array.from({ length: 300 }, (_, i) => `${seed}${i % 17} word${i % 5}`).join(' ')

test('official openai client: chat completion, not streamed', async () => {
  const c = await client()
  const r = await c.chat.completions.create({ model: 'mock-llm', messages: [{ role: 'user', content: 'Say hi' }], max_tokens: 7, ignore_eos: true } as any)
  assert.match(r.id, /^chatcmpl-/)
  assert.equal(r.object, 'chat.completion')
  assert.equal(r.model, 'mock-llm')
  assert.equal(typeof r.created, 'number')
  assert.equal(r.choices[0]!.finish_reason, 'length')
  assert.equal(r.choices[0]!.message.role, 'assistant')
  assert.ok((r.choices[0]!.message.content ?? '').length > 0)
  assert.equal(r.usage!.completion_tokens, 7)
  assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + 7)
  assert.equal(r.usage!.prompt_tokens_details!.cached_tokens, 0)
})

test('official openai client: streamed chat with usage reports cached tokens on a repeated prompt', async () => {
  const c = await client()
  const messages = [{ role: 'system' as const, content: longText('sys') }, { role: 'user' as const, content: 'Tell me more.' }]
  const run = async (): Promise<{ text: string, usage: OpenAI.CompletionUsage | null, finish: string | null, roles: number }> => {
    const stream = await c.chat.completions.create({ model: 'mock-llm', messages, max_completion_tokens: 12, stream: true, stream_options: { include_usage: true }, ignore_eos: true } as any) as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>
    let text = ''
    let usage: OpenAI.CompletionUsage | null = null
    let finish: string | null = null
    let roles = 0
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk')
      if (chunk.usage) usage = chunk.usage
      const choice = chunk.choices[0]
      if (choice === undefined) continue
      if (choice.delta.role === 'assistant') roles++
      text += choice.delta.content ?? ''
      if (choice.finish_reason !== null) finish = choice.finish_reason
    }
    return { text, usage, finish, roles }
  }
  const first = await run()
  const second = await run()
  assert.equal(first.finish, 'length')
  assert.equal(first.roles, 1)
  assert.equal(first.usage!.completion_tokens, 12)
  assert.equal(first.usage!.prompt_tokens_details!.cached_tokens, 0)
  const prompt = first.usage!.prompt_tokens
  assert.equal(second.usage!.prompt_tokens_details!.cached_tokens, Math.floor((prompt - 1) / 16) * 16)
  assert.equal(second.text, first.text, 'same prompt, same seed, same answer')
})

test('official openai client: completions, streamed and not', async () => {
  const c = await client()
  const r = await c.completions.create({ model: 'mock-llm', prompt: 'Once upon a time', max_tokens: 5, ignore_eos: true } as any)
  assert.equal(r.object, 'text_completion')
  assert.equal(r.choices[0]!.finish_reason, 'length')
  assert.equal(r.usage!.completion_tokens, 5)
  const stream = await c.completions.create({ model: 'mock-llm', prompt: [1, 2, 3, 4, 5], max_tokens: 4, stream: true, stream_options: { include_usage: true }, ignore_eos: true } as any) as unknown as AsyncIterable<OpenAI.Completion>
  let text = ''
  let usage: OpenAI.CompletionUsage | undefined
  let finish: string | null = null
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage
    for (const ch of chunk.choices) {
      text += ch.text
      if (ch.finish_reason !== null) finish = ch.finish_reason
    }
  }
  assert.ok(text.length > 0)
  assert.equal(finish, 'length')
  assert.equal(usage!.prompt_tokens, 5, 'token-id prompts are used as given')
  assert.equal(usage!.completion_tokens, 4)
})

test('official openai client: models list and a stop string', async () => {
  const c = await client()
  const models = await c.models.list()
  assert.deepEqual(models.data.map((m) => m.id), ['mock-llm'])
  const base = await c.completions.create({ model: 'mock-llm', prompt: 'stop test', max_tokens: 20, ignore_eos: true } as any)
  const text = base.choices[0]!.text
  const stop = text.split(' ').slice(3, 5).join(' ')
  const r = await c.completions.create({ model: 'mock-llm', prompt: 'stop test', max_tokens: 20, stop: [stop], ignore_eos: true } as any)
  assert.equal(r.choices[0]!.finish_reason, 'stop')
  assert.equal(r.choices[0]!.text, text.slice(0, text.indexOf(stop)))
})

async function waitUntil (cond: () => boolean, ms: number): Promise<number> {
  const t0 = performance.now()
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`)
    await new Promise((resolve) => setImmediate(resolve))
  }
  return performance.now() - t0
}

test('a client that aborts a stream cancels the request and frees its blocks within one pass', async () => {
  // A slow engine of its own, so the request is surely mid-stream when the client leaves.
  const slow: MockEngine = createMockEngine({ speedupRatio: 1, blockSize: 16, heartbeatMs: 0 })
  const server: MockServer = await startMockServer(slow, { port: 0 })
  try {
    const c = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 })
    const ac = new AbortController()
    // Observe the server's side of the disconnect: our 'close' listener runs first, the engine's
    // right after it; a microtask later the blocks must already be free.
    let freedWhenServerSawClose: boolean | null = null
    server.server.on('request', (_req, res) => {
      res.on('close', () => queueMicrotask(() => { freedWhenServerSawClose = slow.blocks.activeBlocks === 0 }))
    })
    const stream = await c.chat.completions.create(
      { model: 'mock-llm', messages: [{ role: 'user', content: longText('abort') }], max_tokens: 5000, stream: true, ignore_eos: true } as any,
      { signal: ac.signal }) as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>
    let chunks = 0
    let passesSinceAbort = -1
    let passesWhenFreed = -1
    slow.onPass(() => {
      if (passesSinceAbort < 0) return
      passesSinceAbort++
      if (passesWhenFreed < 0 && slow.blocks.activeBlocks === 0) passesWhenFreed = passesSinceAbort
    })
    try {
      for await (const _ of stream) {
        if (++chunks === 3) {
          assert.equal(slow.scheduler.running.length, 1)
          assert.ok(slow.blocks.activeBlocks > 0)
          passesSinceAbort = 0
          ac.abort()
        }
      }
    } catch (err) {
      // The client may end the iteration quietly or with an abort error.
      assert.ok(err instanceof Error && /abort/i.test(err.name + err.message), String(err))
    }
    assert.ok(chunks >= 3 && chunks < 10, `stream ended after ${chunks} chunks`)
    // Measured in engine passes, not wall time (the test machine may be busy). From the client's
    // abort, the pass in flight may finish and one more may start before the socket's close
    // reaches the server; from the server seeing it, the blocks are free at once.
    await waitUntil(() => slow.blocks.activeBlocks === 0 && freedWhenServerSawClose !== null, 2000)
    assert.equal(freedWhenServerSawClose, true)
    assert.ok(passesWhenFreed <= 2, `blocks freed after ${passesWhenFreed} passes`)
    assert.equal(slow.scheduler.running.length, 0)
    assert.equal(slow.scheduler.totals.cancelled, 1)
  } finally {
    await server.close()
    await slow.close()
  }
})

test('a client that drops a non-streamed request cancels it too', async () => {
  const slow = createMockEngine({ speedupRatio: 1, heartbeatMs: 0 })
  const server = await startMockServer(slow, { port: 0 })
  try {
    const ac = new AbortController()
    const pending = fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'x', max_tokens: 5000, ignore_eos: true }),
      signal: ac.signal
    })
    await waitUntil(() => slow.scheduler.running.length === 1, 2000)
    ac.abort()
    await assert.rejects(pending)
    await waitUntil(() => slow.scheduler.running.length === 0 && slow.blocks.activeBlocks === 0, 500)
  } finally {
    await server.close()
    await slow.close()
  }
})

test('bad bodies get 400 with the OpenAI error shape', async () => {
  const cases: Array<[string, object | string, string | null]> = [
    ['/v1/chat/completions', '{not json', null],
    ['/v1/chat/completions', [1, 2], null],
    ['/v1/chat/completions', { model: 'mock-llm' }, 'messages'],
    ['/v1/chat/completions', { messages: [{ content: 'no role' }] }, 'messages'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, 'max_tokens'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 'ten' }, 'max_tokens'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], stream: 'yes' }, 'stream'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], stop: [1] }, 'stop'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], n: 2 }, 'n'],
    ['/v1/completions', { prompt: 5 }, 'prompt'],
    ['/v1/completions', { prompt: ['a', 'b'] }, 'prompt'],
    ['/v1/completions', { prompt: [1, -2] }, 'prompt'],
    ['/v1/completions', { prompt: 'x', max_tokens: 10_000_000_000 }, 'max_tokens']
  ]
  for (const [path, body, param] of cases) {
    const r = await post(path, body)
    assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.status}`)
    assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type'])
    assert.equal(r.json.error.type, 'invalid_request_error')
    assert.equal(r.json.error.param, param, JSON.stringify(body))
    assert.ok(r.json.error.message.length > 0)
  }
  const c = await client()
  await assert.rejects(c.chat.completions.create({ model: 'mock-llm', messages: [] }), OpenAI.BadRequestError)
})

test('unknown model, route and method get 404/404/405', async () => {
  const model = await post('/v1/chat/completions', { model: 'other', messages: [{ role: 'user', content: 'x' }] })
  assert.equal(model.status, 404)
  assert.equal(model.json.error.code, 'model_not_found')
  assert.equal((await post('/v1/nothing', {})).status, 404)
  const wrong = await post('/v1/completions', '', 'GET')
  assert.equal(wrong.status, 405)
  assert.equal(wrong.headers.get('allow'), 'POST')
})

test('a prompt beyond the KV cache is refused with 400', async () => {
  const small = createMockEngine({ blockSize: 16, numGpuBlocks: 4, heartbeatMs: 0 })
  const server = await startMockServer(small, { port: 0 })
  try {
    const res = await fetch(`${server.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: Array.from({ length: 100 }, () => 7) }) })
    assert.equal(res.status, 400)
    assert.match(((await res.json()) as any).error.message, /maximum context length is 64/)
  } finally {
    await server.close()
    await small.close()
  }
})

test('health, metrics with vLLM names, and keep-alive connections', async () => {
  const server = await serverP
  const health = await fetch(`${server.url}/health`)
  assert.equal(health.status, 200)
  const text = await (await fetch(`${server.url}/metrics`)).text()
  for (const name of [
    'vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc', 'vllm:prefix_cache_queries_total',
    'vllm:prefix_cache_hits_total', 'vllm:num_preemptions_total', 'vllm:time_to_first_token_seconds_bucket',
    'vllm:inter_token_latency_seconds_bucket', 'vllm:e2e_request_latency_seconds_bucket'
  ]) {
    assert.match(text, new RegExp(`^${name}\\{[^}]*model_name="mock-llm"`, 'm'), name)
  }
  const hits = Number(/^vllm:prefix_cache_hits_total\{model_name="mock-llm"\} (\d+)/m.exec(text)?.[1])
  assert.ok(hits > 0, 'the repeated prompt above hit the cache')

  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const reused: boolean[] = []
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${server.url}/v1/completions`, { method: 'POST', agent }, (res) => {
        res.resume()
        res.on('end', () => resolve())
      })
      req.on('error', reject)
      reused.push(req.reusedSocket)
      req.end(JSON.stringify({ prompt: 'hi', max_tokens: 2 }))
    })
  }
  agent.destroy()
  assert.deepEqual(reused, [false, true, true])
})

test('an engine closing mid-stream ends the stream with an error event, not a silent cut', async () => {
  const own = createMockEngine({ speedupRatio: 1, heartbeatMs: 0 })
  const server = await startMockServer(own, { port: 0 })
  try {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 5000, stream: true, ignore_eos: true })
    })
    const reader = res.body!.getReader()
    let text = ''
    const decoder = new TextDecoder()
    while (!text.includes('"content":" ')) text += decoder.decode((await reader.read()).value)
    await own.close()
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      text += decoder.decode(value)
    }
    assert.match(text, /data: \{"error":\{"message":"the mock engine is closed","type":"service_unavailable_error","param":null,"code":"engine_closed"\}\}\n\n$/)
  } finally {
    await server.close()
    await own.close()
  }
})
