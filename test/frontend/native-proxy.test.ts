import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { request } from 'undici'
import { startMockFleet, type MockFleet } from '../../src/mocker/index.js'
import type { Gateway } from '../../src/frontend/gateway.js'
import { startGateway } from '../fixtures/gateway.js'
import { sleep } from '../fixtures/openai-upstream.js'

/** A YAML-free way to give native_url: a config file with the fleet's workers. */
async function gatewayFor (fleet: MockFleet, extra: string[] = [], nativeFor: (i: number) => string | null = (i) => fleet.workers[i]!.nativeUrl): Promise<Gateway> {
  const { writeFileSync, mkdtempSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'swy-native-'))
  const file = join(dir, 'switchyard.yaml')
  const lines = ['workers:']
  fleet.workers.forEach((w, i) => {
    const n = nativeFor(i)
    lines.push(`  - { id: w${i}, url: "${w.url}", model: mock-llm${n === null ? '' : `, native_url: "${n}"`} }`)
  })
  writeFileSync(file, lines.join('\n') + '\n')
  return await startGateway(['--config', file, ...extra])
}

test('over the native transport the gateway answers what the HTTP path answers (openai client, stream and not)', async () => {
  const fleet = await startMockFleet({ numWorkers: 1, port: 0, nativePort: 0, speedupRatio: 0, model: 'mock-llm' })
  const native = await gatewayFor(fleet)
  const http = await gatewayFor(fleet, [], () => null)
  try {
    const ask = async (gw: Gateway): Promise<{ text: string, streamed: string, usage: unknown }> => {
      const client = new OpenAI({ baseURL: gw.url + '/v1', apiKey: 'none', maxRetries: 0 })
      const messages = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Tell me about "quotes" and \\ slashes\n' }]
      const r = await client.chat.completions.create({ model: 'mock-llm', messages, max_tokens: 12, seed: 3 })
      const s = await client.chat.completions.create({ model: 'mock-llm', messages, max_tokens: 12, seed: 3, stream: true, stream_options: { include_usage: true } })
      let streamed = ''
      let usage: unknown = null
      for await (const c of s) {
        streamed += c.choices[0]?.delta?.content ?? ''
        if (c.usage) usage = { prompt: c.usage.prompt_tokens, completion: c.usage.completion_tokens }
      }
      return { text: r.choices[0]!.message.content ?? '', streamed, usage }
    }
    const a = await ask(native)
    const b = await ask(http)
    assert.equal(a.text.length > 0, true)
    assert.deepEqual(a, b)
    const list = await (await request(native.url + '/workers')).body.json() as { data: Array<{ native_url: string }> }
    assert.equal(list.data[0]!.native_url, fleet.workers[0]!.nativeUrl)
  } finally {
    await native.close()
    await http.close()
    await fleet.close()
  }
})

test('a native worker that cannot be reached is retried on another before the first item', async () => {
  const fleet = await startMockFleet({ numWorkers: 2, port: 0, nativePort: 0, speedupRatio: 0, model: 'mock-llm' })
  // Worker 0 points at a port where nothing listens.
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const dead = `swy://127.0.0.1:${(s.address() as AddressInfo).port}`
  await new Promise<void>(resolve => s.close(() => resolve()))
  const gw = await gatewayFor(fleet, ['--retry-backoff', '1ms'], (i) => i === 0 ? dead : fleet.workers[i]!.nativeUrl)
  try {
    for (let i = 0; i < 4; i++) {
      const res = await request(gw.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mock-llm', prompt: 'hi', max_tokens: 2 }) })
      assert.equal(res.statusCode, 200, await res.body.text())
    }
    // Once tombstoned, the dead worker is skipped by routing: no request even tries it.
    const metrics = await (await request(gw.url + '/metrics')).body.text()
    assert.doesNotMatch(metrics, /switchyard_native_tombstone_hits_total\{worker="w0"\} [1-9]/)
    assert.ok(gw.ctx.registry.snapshot.byId.get('w0')!.unavailableUntil > Date.now(), 'w0 is marked unavailable')
  } finally {
    await gw.close()
    await fleet.close()
  }
})

test('a native worker dying mid-stream ends the stream with an SSE error event, nothing hangs, and its load is released', async () => {
  const fleet = await startMockFleet({ numWorkers: 1, port: 0, nativePort: 0, speedupRatio: 1, model: 'mock-llm' })
  const gw = await gatewayFor(fleet, ['--idle-timeout', '2s'])
  try {
    const res = await request(gw.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mock-llm', prompt: 'hi', max_tokens: 400, ignore_eos: true, stream: true }) })
    assert.equal(res.statusCode, 200)
    let text = ''
    let killed = false
    const t0 = performance.now()
    for await (const chunk of res.body) {
      text += String(chunk)
      if (!killed && text.includes('"text"')) { killed = true; fleet.workers[0]!.native!.destroy() }
    }
    assert.ok(performance.now() - t0 < 5000, 'the stream ended promptly')
    assert.match(text, /data: \{"error":\{"message":"[^"]*","type":"server_error","param":null,"code":"upstream_stream_error"\}\}/)
    assert.equal(gw.ctx.registry.snapshot.workers[0]!.inflightRequests, 0)
    const metrics = await (await request(gw.url + '/metrics')).body.text()
    assert.match(metrics, /switchyard_native_stream_failures_total\{worker="w0",reason="connection_lost"\} 1/)
    assert.match(metrics, /switchyard_native_open_streams\{worker="w0"\} 0/)
  } finally {
    await gw.close()
    await fleet.close()
  }
})

test('a client that disconnects cancels the native stream and the engine frees the request', async () => {
  const fleet = await startMockFleet({ numWorkers: 1, port: 0, nativePort: 0, speedupRatio: 1, model: 'mock-llm' })
  const gw = await gatewayFor(fleet)
  try {
    const ac = new AbortController()
    const res = await request(gw.url + '/v1/completions', { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mock-llm', prompt: 'hi', max_tokens: 2000, ignore_eos: true, stream: true }) })
    for await (const chunk of res.body) { if (String(chunk).includes('"text"')) break }
    ac.abort()
    const engine = fleet.workers[0]!.engine
    const deadline = Date.now() + 2000
    while (engine.scheduler.running.length > 0 && Date.now() < deadline) await sleep(10)
    assert.equal(engine.scheduler.running.length, 0, 'the engine stopped generating')
  } finally {
    await gw.close()
    await fleet.close()
  }
})

test('a native-only worker (MODEL=swy://host:port) is probed by TCP and served; without a model it is refused at start', async () => {
  const fleet = await startMockFleet({ numWorkers: 1, port: 0, nativePort: 0, speedupRatio: 0, model: 'mock-llm' })
  const gw = await startGateway(['--worker', `mock-llm=${fleet.workers[0]!.nativeUrl!}`])
  try {
    const w = gw.ctx.registry.snapshot.workers[0]!
    assert.equal(w.state, 'healthy')
    assert.equal(w.nativeUrl, fleet.workers[0]!.nativeUrl)
    const res = await request(gw.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mock-llm', prompt: 'hi', max_tokens: 3 }) })
    assert.equal(res.statusCode, 200)
    assert.equal(((await res.body.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens, 3)
    await assert.rejects(startGateway(['--worker', fleet.workers[0]!.nativeUrl!]), /a swy:\/\/ worker has no HTTP to discover its models from/)
  } finally {
    await gw.close()
    await fleet.close()
  }
})

test('transport: native finds the worker\'s native address in GET /v1/models; transport: http stays on HTTP; a worker without one stays pending', async () => {
  const fleet = await startMockFleet({ numWorkers: 1, port: 0, nativePort: 0, speedupRatio: 0, model: 'mock-llm' })
  const plain = await startMockFleet({ numWorkers: 1, port: 0, speedupRatio: 0, model: 'mock-llm' })
  const other = await startMockFleet({ numWorkers: 1, port: 0, nativePort: 0, speedupRatio: 0, model: 'mock-llm' })
  const { writeFileSync, mkdtempSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const file = join(mkdtempSync(join(tmpdir(), 'swy-transport-')), 'switchyard.yaml')
  writeFileSync(file, [
    'workers:',
    `  - { id: native, url: "${fleet.workers[0]!.url}", transport: native }`,
    `  - { id: http, url: "${other.workers[0]!.url}", transport: http }`,
    `  - { id: none, url: "${plain.workers[0]!.url}", transport: native }`
  ].join('\n') + '\n')
  const gw = await startGateway(['--config', file, '--policy', 'round_robin'])
  try {
    const byId = (id: string) => gw.ctx.registry.get(id)!
    assert.equal(byId('native').nativeUrl, fleet.workers[0]!.nativeUrl, 'discovered from the model card')
    assert.equal(byId('http').nativeUrl, null)
    assert.notEqual(byId('none').state, 'healthy', 'a native worker without a native address is not routable')
    assert.match(byId('none').lastError ?? '', /advertises no native_url/)
    const before = fleet.workers[0]!.native!.stats().streamsAccepted
    for (let i = 0; i < 4; i++) {
      const res = await request(gw.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mock-llm', prompt: 'hi', max_tokens: 2 }) })
      assert.equal(res.statusCode, 200, await res.body.text())
    }
    assert.equal(fleet.workers[0]!.native!.stats().streamsAccepted - before, 2, 'half the requests (the native entry\'s) went over the native transport')
    assert.equal(other.workers[0]!.native!.stats().streamsAccepted, 0, 'transport: http ignores the advertised native address')
    const bad = join(mkdtempSync(join(tmpdir(), 'swy-transport-')), 'bad.yaml')
    writeFileSync(bad, `workers:\n  - { url: "http://127.0.0.1:9", transport: carrier-pigeon }\n  - { url: "http://127.0.0.1:9", native_url: "swy://127.0.0.1:9", transport: http }\n`)
    await assert.rejects(startGateway(['--config', bad]), (e: Error) => /transport must be 'http' or 'native'/.test(e.message) && /contradicts the swy:\/\/ address/.test(e.message))
  } finally {
    await gw.close()
    await fleet.close()
    await plain.close()
    await other.close()
  }
})

test('a streaming client that stops reading is cut past --max-client-backlog and the engine frees its sequence', async () => {
  const fleet = await startMockFleet({ numWorkers: 1, port: 0, nativePort: 0, speedupRatio: 0, model: 'mock-llm' })
  const gw = await gatewayFor(fleet, ['--max-client-backlog', '16kb'])
  const { connect } = await import('node:net')
  try {
    const body = JSON.stringify({ model: 'mock-llm', prompt: 'hi', max_tokens: 1_000_000, ignore_eos: true, stream: true })
    const port = new URL(gw.url).port
    const sock = connect(Number(port), '127.0.0.1')
    const closed = new Promise<void>(resolve => sock.once('close', () => resolve()))
    sock.on('error', () => {})
    sock.write(`POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    sock.pause() // never read: the kernel buffers fill, then the gateway's
    const engine = fleet.workers[0]!.engine
    const deadline = Date.now() + 20_000
    while (engine.scheduler.running.length === 0 && Date.now() < deadline) await sleep(5)
    while (engine.scheduler.running.length > 0 && Date.now() < deadline) await sleep(20)
    assert.equal(engine.scheduler.running.length, 0, 'the engine stopped generating for the stalled client')
    sock.resume()
    await closed
    const w = gw.ctx.registry.snapshot.workers[0]!
    assert.equal(w.inflightRequests, 0, 'the request released its load')
    const metrics = await (await request(gw.url + '/metrics')).body.text()
    assert.match(metrics, /switchyard_slow_clients_cut_total\{model="mock-llm"\} 1/)
  } finally {
    await gw.close()
    await fleet.close()
  }
})

test('--request-timeout bounds a request over both transports: 504 before the first byte, an SSE error event after, and the engine stops', async () => {
  const fleet = await startMockFleet({ numWorkers: 1, port: 0, nativePort: 0, speedupRatio: 1, model: 'mock-llm' })
  const native = await gatewayFor(fleet, ['--request-timeout', '400ms'])
  const http = await gatewayFor(fleet, ['--request-timeout', '400ms'], () => null)
  try {
    for (const gw of [native, http]) {
      const which = gw === native ? 'native' : 'http'
      const t0 = performance.now()
      const res = await request(gw.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mock-llm', prompt: 'hi', max_tokens: 5000, ignore_eos: true, stream: true }) })
      assert.equal(res.statusCode, 200)
      const text = await res.body.text()
      const took = performance.now() - t0
      assert.ok(took >= 350 && took < 3000, `${which}: the stream ended after ${took.toFixed(0)} ms (budget 400 ms)`)
      assert.match(text, /"error":\{"message":"[^"]*(budget|deadline)/, `${which}: the stream ends with an SSE error event naming the budget`)
      const r2 = await request(gw.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mock-llm', prompt: 'hi', max_tokens: 5000, ignore_eos: true }) })
      assert.equal(r2.statusCode, 504, `${which}: a non-streaming request past its budget is a 504`)
      assert.equal(((await r2.body.json()) as { error: { type: string } }).error.type, 'timeout_error')
    }
    const engine = fleet.workers[0]!.engine
    const deadline = Date.now() + 3000
    while (engine.scheduler.running.length > 0 && Date.now() < deadline) await sleep(20)
    assert.equal(engine.scheduler.running.length, 0, 'the engine stopped generating for the expired requests')
  } finally {
    await native.close()
    await http.close()
    await fleet.close()
  }
})
