import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import OpenAI from 'openai'
import type { Gateway } from '../../src/frontend/gateway.js'
import { startGateway } from '../fixtures/gateway.js'
import { sleep, startUpstream, type Upstream } from '../fixtures/openai-upstream.js'
import { startMockFleet } from '../../src/mocker/index.js'

interface Answer { status: number, body: any, headers: Record<string, string | string[] | undefined> }

async function chat (url: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Answer> {
  const res = await request(url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra }),
    ...(signal === undefined ? {} : { signal })
  })
  const text = await res.body.text()
  let body: any = text
  try { body = JSON.parse(text) } catch { /* not JSON: keep the text */ }
  return { status: res.statusCode, body, headers: res.headers }
}

async function slowUpstream (): Promise<Upstream> {
  // 4 tokens x 75 ms: each request holds the worker's only slot for about 300 ms.
  return await startUpstream({ tokenDelayMs: 75 })
}

async function until (cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time')
    await sleep(5)
  }
}

/**
 * A gateway in front of one upstream with a window of one request, already taken by a first
 * request (it must end 200); `fn` then sees what waits. Both are closed afterwards.
 */
async function withBusyWorker (upOpts: Parameters<typeof startUpstream>[0], args: string[], fn: (gw: Gateway, up: Upstream, first: Promise<Answer>) => Promise<void>): Promise<void> {
  const up = await startUpstream(upOpts)
  const gw = await startGateway(['--worker', `test-model=${up.url}`, '--max-inflight-requests', '1', ...args])
  try {
    const first = chat(gw.url)
    await until(() => up.active === 1)
    await fn(gw, up, first)
    assert.equal((await first).status, 200)
  } finally {
    await gw.close()
    await up.close()
  }
}

test('beyond the queue cap the gateway answers 429 queue_full with Retry-After', async () => {
  await withBusyWorker({ tokenDelayMs: 75 }, ['--queue-max-requests', '1'], async (gw, up, first) => {
    const second = chat(gw.url)
    await until(() => gw.ctx.admission.size === 1)
    const third = await chat(gw.url)
    assert.equal(third.status, 429)
    assert.equal(third.body.error.code, 'queue_full')
    assert.equal(third.body.error.type, 'rate_limit_error')
    assert.match(third.body.error.message, /queue for model 'test-model' is full/)
    assert.ok(Number(third.headers['retry-after']) >= 1, 'Retry-After is a positive number of seconds')
    assert.equal((await first).status, 200)
    assert.equal((await second).status, 200, 'the queued request is served once the window frees')
    const metrics = await (await request(gw.url + '/metrics')).body.text()
    assert.match(metrics, /switchyard_queue_rejections_total\{model="test-model",reason="queue_full"\} 1/)
  })
})

test('a request that waits longer than queue_timeout answers 503 queue_timeout with Retry-After', async () => {
  await withBusyWorker({ tokenDelayMs: 150 }, ['--queue-timeout', '100ms'], async (gw, up, first) => {
    const t0 = performance.now()
    const second = await chat(gw.url)
    const waited = performance.now() - t0
    assert.equal(second.status, 503)
    assert.equal(second.body.error.code, 'queue_timeout')
    assert.ok(Number(second.headers['retry-after']) >= 1)
    assert.ok(waited >= 90 && waited < 500, `timed out after ${waited.toFixed(0)} ms (timeout 100 ms)`)
    assert.equal((await first).status, 200)
    assert.equal(up.received.length, 1, 'the timed-out request never reached the worker')
  })
})

test('a client that disconnects while queued is removed at once and never reaches a worker', async () => {
  await withBusyWorker({ tokenDelayMs: 75 }, [], async (gw, up, first) => {
    const ac = new AbortController()
    const second = chat(gw.url, {}, {}, ac.signal).catch((err: Error) => err)
    await until(() => gw.ctx.admission.size === 1)
    ac.abort()
    await until(() => gw.ctx.admission.size === 0, 200)
    assert.ok((await second) instanceof Error)
    assert.equal((await first).status, 200)
    await sleep(50)
    assert.equal(up.received.length, 1)
    assert.equal(gw.ctx.registry.snapshot.workers[0]!.inflightRequests, 0, 'no load is left behind')
  })
})

test('a worker that pushes back (429) gets the request again from the queue, up to max_requeues', async () => {
  const up = await startUpstream()
  const gw = await startGateway(['--worker', `test-model=${up.url}`, '--max-requeues', '3', '--retry-backoff', '1ms'])
  try {
    up.fault = 'status-429'
    up.faultTimes = 2
    const ok = await chat(gw.url)
    assert.equal(ok.status, 200, 'served on the third try')
    assert.equal(up.received.length, 3)
    const metrics = await (await request(gw.url + '/metrics')).body.text()
    assert.match(metrics, /switchyard_queue_requeues_total\{model="test-model"\} 2/)

    up.fault = 'status-429'
    up.faultTimes = Infinity
    const refused = await chat(gw.url)
    assert.equal(refused.status, 429, 'after max_requeues the client gets the worker\'s answer')
    assert.equal(up.received.length, 3 + 4)
  } finally {
    await gw.close()
    await up.close()
  }
})

test('a request larger than every worker\'s token window is refused at once with 400', async () => {
  const up = await startUpstream()
  const gw = await startGateway(['--worker', `test-model=${up.url}`, '--max-inflight-requests', '1', '--max-inflight-tokens', '1000'])
  try {
    const first = chat(gw.url, { max_tokens: 4 })
    const big = await chat(gw.url, { max_tokens: 5000 })
    assert.equal(big.status, 400)
    assert.equal(big.body.error.code, 'context_length_exceeded')
    assert.equal((await first).status, 200)
  } finally {
    await gw.close()
    await up.close()
  }
})

test('queued high-priority requests are dispatched before low ones (x-priority and body priority)', async () => {
  const up = await slowUpstream()
  const gw = await startGateway(['--worker', `test-model=${up.url}`, '--max-inflight-requests', '1'])
  try {
    const all: Array<Promise<Answer>> = [chat(gw.url, { user: 'filler' })]
    await until(() => up.active === 1)
    for (let i = 0; i < 3; i++) {
      all.push(chat(gw.url, { user: `low${i}` }, { 'x-priority': 'low' }))
      await until(() => gw.ctx.admission.size === 2 * i + 1)
      all.push(chat(gw.url, { user: `high${i}`, priority: -5 }))
      await until(() => gw.ctx.admission.size === 2 * i + 2)
    }
    const answers = await Promise.all(all)
    assert.deepEqual(answers.map(a => a.status), Array(7).fill(200))
    assert.deepEqual(up.received.map(r => r.body.user), ['filler', 'high0', 'high1', 'high2', 'low0', 'low1', 'low2'])
    for (const value of ['urgent', 'constructor', '__proto__']) {
      const bad = await chat(gw.url, {}, { 'x-priority': value })
      assert.equal(bad.status, 400, `x-priority: ${value}`)
      assert.equal(bad.body.error.param, 'x-priority')
    }
  } finally {
    await gw.close()
    await up.close()
  }
})

test('a streaming request waiting past --sse-keepalive-ms gets SSE comments, then its answer (openai client)', async () => {
  const up = await startUpstream({ tokenDelayMs: 100 })
  const gw = await startGateway(['--worker', `test-model=${up.url}`, '--max-inflight-requests', '1', '--sse-keepalive-ms', '40ms'])
  try {
    const first = chat(gw.url)
    await until(() => up.active === 1)
    const raw = await request(gw.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, stream: true })
    })
    assert.equal(raw.statusCode, 200)
    const text = await raw.body.text()
    assert.match(text, /^: waiting for a worker\n\n/)
    assert.match(text, /data: \[DONE\]/)
    await first

    const client = new OpenAI({ baseURL: gw.url + '/v1', apiKey: 'none', maxRetries: 0 })
    const blocker = chat(gw.url)
    await until(() => up.active === 1)
    const stream = await client.chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream: true })
    let content = ''
    for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? ''
    assert.equal(content, 't0 t1 t2 ')
    await blocker
  } finally {
    await gw.close()
    await up.close()
  }
})

test('a queue timeout after keep-alive headers ends the stream with an SSE error event', async () => {
  await withBusyWorker({ tokenDelayMs: 150 }, ['--sse-keepalive-ms', '20ms', '--queue-timeout', '120ms'], async (gw, up, first) => {
    const raw = await request(gw.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }], stream: true })
    })
    const text = await raw.body.text()
    assert.equal(raw.statusCode, 200)
    assert.match(text, /data: \{"error":\{"message":"waited \d+ ms in the queue[^"]*","type":"service_unavailable_error","param":null,"code":"queue_timeout"\}\}/)
    await first
  })
})

test('a mock engine\'s window comes from what it reports (max_num_seqs, KV cache tokens); flags override it', async () => {
  const fleet = await startMockFleet({ numWorkers: 1, port: 0, model: 'm', maxNumSeqs: 3, numGpuBlocks: 100, blockSize: 16, speedupRatio: 0 })
  const gw = await startGateway(['--worker', fleet.workers[0]!.url])
  const gw2 = await startGateway(['--worker', fleet.workers[0]!.url, '--max-inflight-requests', '2'])
  try {
    const list = await (await request(gw.url + '/workers')).body.json() as { data: Array<Record<string, unknown>> }
    assert.equal(list.data[0]!.max_inflight_requests, 3)
    assert.equal(list.data[0]!.max_inflight_tokens, 1600)
    const list2 = await (await request(gw2.url + '/workers')).body.json() as { data: Array<Record<string, unknown>> }
    assert.equal(list2.data[0]!.max_inflight_requests, 2)
    assert.equal(list2.data[0]!.max_inflight_tokens, 1600)
    const metrics = await (await request(gw2.url + '/metrics')).body.text()
    assert.match(metrics, /switchyard_worker_window_use\{worker="[^"]+",kind="requests"\} 0\n/)
  } finally {
    await gw.close()
    await gw2.close()
    await fleet.close()
  }
})

for (const transport of ['http', 'native'] as const) {
test(`a real mock engine that refuses work (429 beyond --max-waiting) gets it back through the queue; every request is served (${transport})`, async () => {
  const fleet = await startMockFleet({ numWorkers: 1, port: 0, nativePort: 0, model: 'test-model', maxNumSeqs: 1, maxWaiting: 1, speedupRatio: 5 })
  const w = fleet.workers[0]!
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const file = join(mkdtempSync(join(tmpdir(), 'swy-pushback-')), 'switchyard.yaml')
  writeFileSync(file, `workers:\n  - { url: "${w.url}", model: test-model${transport === 'native' ? `, native_url: "${w.nativeUrl!}"` : ''} }\n`)
  const gw = await startGateway(['--config', file, '--max-requeues', '20', '--retry-backoff', '20ms', '--retry-backoff-max', '100ms'])
  try {
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => chat(gw.url, { max_tokens: 8, ignore_eos: true, user: `r${i}` })))
    assert.deepEqual(answers.map(a => a.status), [200, 200, 200, 200, 200], JSON.stringify(answers.filter(a => a.status !== 200).map(a => a.body)))
    const metrics = await (await request(gw.url + '/metrics')).body.text()
    const requeues = Number(/switchyard_queue_requeues_total\{model="test-model"\} (\d+)/.exec(metrics)?.[1] ?? 0)
    assert.ok(requeues >= 1, 'the engine pushed back at least once')
  } finally {
    await gw.close()
    await fleet.close()
  }
})
}
