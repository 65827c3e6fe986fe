import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import OpenAI from 'openai'
import { request } from 'undici'
import { startGateway } from '../fixtures/gateway.js'
import { sleep, startUpstream } from '../fixtures/openai-upstream.js'

const chat = (o: Record<string, unknown> = {}): string => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], ...o })

/** A port nothing listens on (bound then released). */
async function deadPort (): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as import('node:net').AddressInfo).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}

test('a client disconnect reaches the upstream as an abort within 100 ms', async () => {
  const up = await startUpstream({ models: ['m'], tokens: 1000, tokenDelayMs: 5 })
  const gw = await startGateway(['--worker', up.url])
  try {
    const ac = new AbortController()
    const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: chat({ stream: true, max_tokens: 1000 }), signal: ac.signal })
    const it = res.body[Symbol.asyncIterator]()
    await it.next()
    const t0 = performance.now()
    ac.abort()
    await res.body.destroy()
    const deadline = Date.now() + 2000
    while (up.received[0]!.abortedAt === null && Date.now() < deadline) await sleep(2)
    const at = up.received[0]!.abortedAt
    assert.notEqual(at, null, 'the upstream request was never aborted')
    assert.ok(at! - t0 < 100, `upstream abort took ${(at! - t0).toFixed(1)} ms`)
    assert.equal(gw.ctx.registry.snapshot.workers[0]!.inflightRequests, 0)
  } finally {
    await gw.close(0)
    await up.close()
  }
})

test('a refused connection is retried on another worker and the client never sees it', async () => {
  const up = await startUpstream({ models: ['m'] })
  const dead = await deadPort()
  const gw = await startGateway(['--worker', `m=http://127.0.0.1:${dead}`, '--worker', `m=${up.url}`, '--retry-attempts', '3', '--health-interval', '1h'])
  try {
    // The dead worker's first probe failed: mark it healthy by hand, as if it died after probing.
    const deadWorker = gw.ctx.registry.snapshot.workers.find(w => w.url.endsWith(String(dead)))!
    gw.ctx.registry.update(deadWorker, 'healthy')
    for (let i = 0; i < 6; i++) {
      const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: chat({ max_tokens: 1 }) })
      assert.equal(res.statusCode, 200)
      await res.body.dump()
    }
    assert.equal(up.received.length, 6)
    assert.ok(deadWorker.totalErrors >= 2, 'round robin sent some first attempts to the dead worker')
    const metrics = await (await request(gw.url + '/metrics')).body.text()
    assert.match(metrics, /switchyard_retries_total\{model="m",reason="upstream_unavailable"\} [1-9]/)
  } finally {
    await gw.close(0)
    await up.close()
  }
})

test('a worker answering 503 before any byte is retried elsewhere; on the last attempt the worker\'s answer passes through', async () => {
  const a = await startUpstream({ models: ['m'], name: 'a' })
  const b = await startUpstream({ models: ['m'], name: 'b' })
  a.fault = 'status-503'
  const gw = await startGateway(['--worker', a.url, '--worker', b.url, '--retry-attempts', '2'])
  try {
    for (let i = 0; i < 4; i++) {
      const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: chat({ max_tokens: 1 }) })
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['x-served-by'], 'b')
      await res.body.dump()
    }
    b.fault = 'status-503'
    const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: chat({ max_tokens: 1 }) })
    const doc = await res.body.json() as any
    assert.equal(res.statusCode, 503)
    assert.match(doc.error.message, /says 503/)
  } finally {
    await gw.close(0)
    await a.close()
    await b.close()
  }
})

test('an upstream 4xx passes through as the worker sent it (no retry)', async () => {
  const up = await startUpstream({ models: ['m'] })
  const gw = await startGateway(['--worker', up.url])
  try {
    up.fault = 'status-500'
    const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: chat() })
    const doc = await res.body.json() as any
    assert.equal(res.statusCode, 500)
    assert.match(doc.error.message, /says 500/)
    assert.equal(up.received.length, 1)
  } finally {
    await gw.close(0)
    await up.close()
  }
})

test('a worker that fails mid-stream ends the stream with an SSE error event the official client raises', async () => {
  const up = await startUpstream({ models: ['m'], tokens: 10, tokenDelayMs: 2 })
  up.fault = 'reset-mid-stream'
  const gw = await startGateway(['--worker', up.url])
  try {
    const client = new OpenAI({ baseURL: gw.url + '/v1', apiKey: 'x', maxRetries: 0 })
    const stream = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true })
    let got = 0
    await assert.rejects(async () => { for await (const _ of stream) got++ }, (err: any) => {
      assert.match(String(err.message), /failed mid-answer/)
      return true
    })
    assert.ok(got >= 1, 'some chunks arrived before the failure')
  } finally {
    await gw.close(0)
    await up.close()
  }
})

test('first-byte timeout answers 504 upstream_timeout; idle timeout ends a stream with an SSE error', async () => {
  const up = await startUpstream({ models: ['m'], tokens: 10, tokenDelayMs: 2 })
  const gw = await startGateway(['--worker', up.url, '--first-byte-timeout', '150ms', '--idle-timeout', '150ms'])
  try {
    up.fault = 'hang-before-headers'
    const t0 = performance.now()
    const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: chat() })
    const doc = await res.body.json() as any
    assert.equal(res.statusCode, 504)
    assert.equal(doc.error.code, 'upstream_timeout')
    assert.ok(performance.now() - t0 < 2000)
    up.fault = 'hang-mid-stream'
    const s = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: chat({ stream: true }) })
    const text = await s.body.text()
    assert.equal(s.statusCode, 200)
    assert.match(text, /data: \{"error":\{"message":"the worker failed mid-answer: worker [^"]* exceeded the idle deadline","type":"server_error","param":null,"code":"upstream_stream_error"\}\}\n\n$/)
  } finally {
    await gw.close(0)
    await up.close()
  }
})

test('no healthy worker answers 503 with Retry-After', async () => {
  const up = await startUpstream({ models: ['m'] })
  const gw = await startGateway(['--worker', up.url, '--health-failure-threshold', '1'])
  try {
    up.healthy = false
    const deadline = Date.now() + 3000
    while (gw.ctx.registry.snapshot.workers[0]!.state === 'healthy' && Date.now() < deadline) await sleep(10)
    const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: chat() })
    const doc = await res.body.json() as any
    assert.equal(res.statusCode, 503)
    assert.equal(doc.error.code, 'no_healthy_worker')
    assert.equal(res.headers['retry-after'], '1')
  } finally {
    await gw.close(0)
    await up.close()
  }
})
