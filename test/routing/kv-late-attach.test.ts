import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { startMockFleet } from '../../src/mocker/index.js'
import { builtinTokenizer } from '../../src/tokenize/index.js'
import { startGateway } from '../fixtures/gateway.js'
import { laterPort } from '../fixtures/ports.js'

async function until (cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not reached within ${ms} ms`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

test('a worker added by POST /workers before its engine is up gets its KV events attached once discovery succeeds', async () => {
  // Bound only after the gateway has tried the worker: ports no outgoing connection can take meanwhile.
  const [port, kvPort, replayPort] = [await laterPort(), await laterPort(), await laterPort()]
  const gw = await startGateway(['--policy', 'kv', '--discovery-retries', '1', '--discovery-timeout', '200ms'])
  let fleet: Awaited<ReturnType<typeof startMockFleet>> | null = null
  try {
    const res = await request(gw.url + '/workers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: `http://127.0.0.1:${port}`, kv_events: `tcp://127.0.0.1:${kvPort}`, kv_replay: `tcp://127.0.0.1:${replayPort}`, block_size: 64 })
    })
    await res.body.dump()
    const id = gw.ctx.registry.snapshot.workers[0]!.id
    await until(() => gw.ctx.registry.snapshot.workers[0]!.state === 'pending', 2000, 'pending state')
    assert.equal(gw.ctx.plane.hasEvents(id), false)

    fleet = await startMockFleet({ numWorkers: 1, port, kvEventsPort: kvPort, kvReplayPort: replayPort, speedupRatio: 0, model: 'mock-llm' })
    await until(() => gw.ctx.plane.hasEvents(id), 5000, 'the KV event source attached after late discovery')
    const prompt = builtinTokenizer().decode(builtinTokenizer().sampleIds(4 * 64, 3))
    const r = await request(gw.url + '/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'mock-llm', prompt, max_tokens: 2 }) })
    assert.equal(r.statusCode, 200)
    await r.body.dump()
    const index = gw.ctx.plane.indexes.get('mock-llm')!
    await until(() => index.blockCount(index.slotOf(id)) >= 4, 3000, 'the index holding the prompt\'s blocks')
  } finally {
    await gw.close(0)
    await fleet?.close()
  }
})
