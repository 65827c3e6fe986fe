import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { request } from 'undici'
import { loadServeConfig } from '../../src/config/serve.js'
import { Gateway } from '../../src/frontend/gateway.js'
import { startMockFleet } from '../../src/mocker/index.js'
import { builtinTokenizer } from '../../src/tokenize/index.js'

test('a worker declaring kv_events in the config file feeds the kv policy over ZMQ', async () => {
  const fleet = await startMockFleet({ numWorkers: 1, port: 0, kvEventsPort: 0, speedupRatio: 0, model: 'mock-llm' })
  const w = fleet.workers[0]!
  const dir = mkdtempSync(join(tmpdir(), 'swy-kvcfg-'))
  const file = join(dir, 'switchyard.yaml')
  writeFileSync(file, [
    'policy: kv',
    'workers:',
    `  - { url: "${w.url}", model: mock-llm, kv_events: "${w.kvEvents!.endpoint}", kv_replay: "${w.kvEvents!.replayEndpoint}", block_size: 64 }`
  ].join('\n') + '\n')
  const { config } = loadServeConfig(['--port', '0', '--config', file], {})
  const gw = new Gateway(config, { logger: pino({ level: 'silent' }) })
  await gw.start()
  try {
    const id = gw.ctx.registry.snapshot.workers[0]!.id
    assert.equal(gw.ctx.plane.hasEvents(id), true, 'no ZMQ source was attached')
    const prompt = builtinTokenizer().decode(builtinTokenizer().sampleIds(5 * 64, 7))
    const res = await request(gw.url + '/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'mock-llm', prompt, max_tokens: 2 }) })
    assert.equal(res.statusCode, 200)
    await res.body.dump()
    const index = gw.ctx.plane.indexes.get('mock-llm')!
    const deadline = Date.now() + 3000
    while (index.blockCount(index.slotOf(id)) < 5 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    assert.ok(index.blockCount(index.slotOf(id)) >= 5, `the index holds ${index.blockCount(index.slotOf(id))} blocks of the worker`)
    const counters = gw.ctx.plane.counters()
    assert.equal(counters.length, 1)
    assert.ok(counters[0]!.events > 0)
    const metrics = await (await request(gw.url + '/metrics')).body.text()
    assert.match(metrics, new RegExp(`switchyard_kv_events_total\\{model="mock-llm",worker="${id}"\\} [1-9]`))
    assert.match(metrics, new RegExp(`switchyard_kv_index_blocks\\{model="mock-llm",worker="${id}"\\} [1-9]`))
    assert.match(metrics, /switchyard_kv_event_gaps_total\{model="mock-llm",worker="[^"]+"\} 0/)
    for (const phase of ['tokenize', 'hash', 'lookup', 'select']) {
      assert.match(metrics, new RegExp(`switchyard_router_overhead_seconds_count\\{model="mock-llm",phase="${phase}"\\} 1\\b`), `router overhead for ${phase}`)
    }
    assert.match(metrics, /switchyard_router_predicted_hit_ratio\{model="mock-llm"\} 0\b/, 'a cold index predicts no hit')
  } finally {
    await gw.close(0)
    await fleet.close()
  }
})
