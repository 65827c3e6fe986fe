import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { startGateway } from '../fixtures/gateway.js'
import { sleep, Upstream } from '../fixtures/openai-upstream.js'

async function waitFor (cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time')
    await sleep(5)
  }
}

test('health: healthy -> unhealthy after the failure threshold -> healthy after the success threshold', async () => {
  const up = new Upstream({ models: ['m'] })
  await up.listen()
  const gw = await startGateway(['--worker', up.url, '--health-interval', '20ms', '--health-failure-threshold', '3', '--health-success-threshold', '2'])
  try {
    const w = gw.ctx.registry.snapshot.workers[0]!
    assert.equal(w.state, 'healthy')
    up.healthy = false
    await waitFor(() => w.state === 'unhealthy')
    assert.ok(w.consecutiveFailures >= 3)
    assert.deepEqual(gw.ctx.registry.snapshot.workersFor('m'), [], 'an unhealthy worker leaves the snapshot')
    up.healthy = true
    await waitFor(() => w.state === 'healthy')
    assert.ok(w.consecutiveSuccesses >= 2)
    assert.equal(gw.ctx.registry.snapshot.workersFor('m')![0], w)
  } finally {
    await gw.close(0)
    await up.close()
  }
})

test('a worker that is down at registration stays pending, then joins when it comes up', async () => {
  const up = new Upstream({ models: ['late-model'] })
  await up.listen()
  const port = up.port
  await up.close()
  const gw = await startGateway(['--worker', `http://127.0.0.1:${port}`, '--discovery-retries', '1', '--health-interval', '20ms'])
  try {
    const w = gw.ctx.registry.snapshot.workers[0]!
    assert.equal(w.state, 'pending')
    assert.match(w.lastError ?? '', /model discovery failed/)
    const res = await request(gw.url + '/v1/models')
    assert.deepEqual((await res.body.json() as any).data, [])
    const again = new Upstream({ models: ['late-model'] })
    await again.listen(port)
    try {
      await waitFor(() => w.state === 'healthy')
      assert.deepEqual(gw.ctx.registry.snapshot.modelNames, ['late-model'])
    } finally {
      await again.close()
    }
  } finally {
    await gw.close(0)
  }
})
