import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { startGateway } from '../fixtures/gateway.js'
import { sleep, startUpstream, type Upstream } from '../fixtures/openai-upstream.js'
import { Registry } from '../../src/registry/registry.js'

test('snapshots are immutable and swapped whole: a reader keeps a consistent view', () => {
  const r = new Registry()
  const w = r.add({ id: null, url: 'http://127.0.0.1:9', models: ['m'], labels: {}, apiKey: null, staticModels: true })
  assert.equal(w.id, '127.0.0.1:9')
  const before = r.snapshot
  assert.deepEqual(before.workersFor('m'), [])
  r.update(w, 'healthy')
  const after = r.snapshot
  assert.notEqual(before, after)
  assert.deepEqual(before.workersFor('m'), [], 'the old snapshot did not change')
  assert.deepEqual(after.workersFor('m')!.map(x => x.id), ['127.0.0.1:9'])
  assert.ok(Object.isFrozen(after.workersFor('m')))
  assert.equal(after.workersFor('other'), null)
  assert.throws(() => r.add({ id: null, url: 'http://127.0.0.1:9', models: ['m'], labels: {}, apiKey: null, staticModels: true }), /already registered/)
})

test('adding and removing workers while streams are in flight never drops or misroutes a request', async () => {
  const ups: Upstream[] = []
  for (let i = 0; i < 3; i++) ups.push(await startUpstream({ name: `u${i}`, models: ['m'], tokens: 20, tokenDelayMs: 3 }))
  const other = await startUpstream({ name: 'other', models: ['other-model'] })
  const gw = await startGateway(['--worker', ups[0]!.url, '--worker', other.url])
  try {
    const admin = async (method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<number> => {
      const r = await request(gw.url + path, { method, body: body === undefined ? null : JSON.stringify(body) })
      await r.body.dump()
      return r.statusCode
    }
    const results: Array<Promise<{ status: number, text: string, servedBy: string }>> = []
    const churn = (async () => {
      for (let round = 0; round < 4; round++) {
        assert.equal(await admin('POST', '/workers', { url: ups[1]!.url }), 201)
        await sleep(15)
        assert.equal(await admin('POST', '/workers', { url: ups[2]!.url, model: 'm' }), 201)
        await sleep(15)
        assert.equal(await admin('DELETE', '/workers/' + encodeURIComponent(new URL(ups[1]!.url).host)), 200)
        await sleep(15)
        assert.equal(await admin('DELETE', '/workers/' + encodeURIComponent(new URL(ups[2]!.url).host)), 200)
      }
    })()
    for (let i = 0; i < 60; i++) {
      results.push((async () => {
        const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true, max_tokens: 20 }) })
        return { status: res.statusCode, text: await res.body.text(), servedBy: String(res.headers['x-served-by']) }
      })())
      await sleep(2)
    }
    await churn
    const all = await Promise.all(results)
    for (const r of all) {
      assert.equal(r.status, 200)
      assert.ok(r.text.endsWith('data: [DONE]\n\n'), 'a stream was cut short')
      assert.equal((r.text.match(/"content"/g) ?? []).length, 20)
      assert.notEqual(r.servedBy, 'other', 'a request went to a worker of another model')
    }
    assert.equal(other.received.length, 0)
    assert.ok(ups[1]!.received.length + ups[2]!.received.length > 0, 'churned workers took some traffic')
  } finally {
    await gw.close(0)
    for (const u of [...ups, other]) await u.close()
  }
})

test('a removed worker drains: its streams finish, it takes no new request, its client closes after', async () => {
  const a = await startUpstream({ name: 'a', models: ['m'], tokens: 30, tokenDelayMs: 5 })
  const b = await startUpstream({ name: 'b', models: ['m'] })
  const gw = await startGateway(['--worker', a.url, '--policy', 'round_robin'])
  try {
    const inflight = request(gw.url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true }) })
    const res = await inflight
    const wa = gw.ctx.registry.snapshot.workers[0]!
    assert.equal(wa.inflightRequests, 1)
    const r1 = await request(gw.url + '/workers', { method: 'POST', body: JSON.stringify({ url: b.url }) })
    assert.equal(r1.statusCode, 201)
    await r1.body.dump()
    const drained = gw.ctx.registry.remove(wa.id)!
    let drainedAt = 0
    void drained.then(() => { drainedAt = performance.now() })
    for (let i = 0; i < 3; i++) {
      const r = await request(gw.url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }) })
      assert.equal(r.headers['x-served-by'], 'b')
      await r.body.dump()
    }
    assert.equal(drainedAt, 0, 'drained while a stream was still running')
    const text = await res.body.text()
    const endedAt = performance.now()
    assert.equal((text.match(/"content"/g) ?? []).length, 30)
    await drained
    assert.ok(drainedAt >= endedAt - 50)
    assert.equal(wa.client, null, 'the drained worker\'s client was closed and released')
  } finally {
    await gw.close(0)
    await a.close()
    await b.close()
  }
})
