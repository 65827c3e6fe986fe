// Replica sync between gateways over a real nats-server: in-flight load one gateway routes shows
// on the other's workers, leaves when the requests end, and ages out when a gateway vanishes.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { request } from 'undici'
import { connectNats } from '../../src/events/nats.js'
import { RoutingSync } from '../../src/events/routing-sync.js'
import type { Gateway } from '../../src/frontend/gateway.js'
import { Registry } from '../../src/registry/registry.js'
import { NatsServer, natsServerBinary, NO_NATS_SERVER } from '../fixtures/nats-server.js'
import { MockerProcess, natsGateway, until } from '../discovery/helpers.js'

const skip = natsServerBinary() === null ? NO_NATS_SERVER : false

/** Starts `n` slow streams through `gw` (they run until the test aborts them). */
function slowStreams (gw: Gateway, n: number, ac: AbortController): Array<Promise<unknown>> {
  return Array.from({ length: n }, async (_, i) => {
    const res = await request(gw.url + '/v1/completions', {
      method: 'POST',
      signal: ac.signal,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-llm', prompt: `slow ${i}`, max_tokens: 5000, ignore_eos: true, stream: true })
    })
    for await (const _chunk of res.body) { /* keep reading */ }
  }).map(async p => await p.catch(() => {}))
}

const inflight = (gw: Gateway): number => gw.ctx.registry.snapshot.workers.reduce((a, w) => a + w.inflightRequests, 0)

describe('replica sync over NATS', { skip }, () => {
  let nats: NatsServer
  let mocker: MockerProcess | null = null
  let gw1: Gateway
  let gw2: Gateway

  before(async () => {
    nats = (await NatsServer.start())!
    mocker = await MockerProcess.start(['--num-workers', '2', '--port', '0', '--speedup-ratio', '1', '--nats', nats.url])
    gw1 = await natsGateway(nats.url, ['--policy', 'least_load'])
    gw2 = await natsGateway(nats.url, ['--policy', 'least_load'])
    for (const g of [gw1, gw2]) await until('two healthy workers', 5000, () => g.ctx.registry.snapshot.workers.filter(w => w.state === 'healthy').length === 2)
  })

  after(async () => {
    await gw2?.close(500)
    await gw1?.close(500)
    await mocker?.kill()
    await nats?.stop()
  })

  it('load routed by one gateway shows on the other\'s workers and leaves when the requests end', async () => {
    const ac = new AbortController()
    const streams = slowStreams(gw1, 4, ac)
    await until('gw1 sees its 4 streams', 5000, () => inflight(gw1) === 4)
    await until('gw2 sees gw1\'s 4 streams', 3000, () => inflight(gw2) === 4)
    // least_load on gw2 now sees the same per-worker load as gw1 (2 + 2).
    assert.deepEqual(gw2.ctx.registry.snapshot.workers.map(w => w.inflightRequests).sort(), gw1.ctx.registry.snapshot.workers.map(w => w.inflightRequests).sort())
    assert.equal(gw2.ctx.registry.snapshot.workers.reduce((a, w) => a + w.totalRequests, 0), 0, 'remote load is not counted as gw2\'s own requests')
    ac.abort()
    await Promise.all(streams)
    await until('gw2 sees them end', 3000, () => inflight(gw2) === 0)
  })

  it('a gateway that vanishes without a word has its load aged out of the others', async () => {
    const ac = new AbortController()
    const streams = slowStreams(gw1, 2, ac)
    await until('gw2 sees gw1\'s 2 streams', 5000, () => inflight(gw2) === 2)
    const sync = (gw1 as unknown as { distributed: { routing: { silent: boolean } } }).distributed.routing
    sync.silent = true
    const t0 = Date.now()
    await until('gw2 ages gw1\'s load out', 9000, () => inflight(gw2) === 0)
    assert.ok(Date.now() - t0 >= 4000, 'not before the expiry (5 s)')
    ac.abort()
    await Promise.all(streams)
    sync.silent = false
  })
})

describe('replica sync and the kv load guard', { skip }, () => {
  let nats: NatsServer
  let mocker: MockerProcess | null = null
  let gws: Gateway[] = []

  before(async () => {
    nats = (await NatsServer.start())!
    mocker = await MockerProcess.start(['--num-workers', '4', '--port', '0', '--speedup-ratio', '1', '--nats', nats.url])
    gws = [await natsGateway(nats.url, ['--policy', 'kv']), await natsGateway(nats.url, ['--policy', 'kv'])]
    for (const g of gws) await until('four healthy workers', 8000, () => g.ctx.registry.snapshot.workers.filter(w => w.state === 'healthy').length === 4)
  })

  after(async () => {
    for (const g of gws) await g.close(500)
    await mocker?.kill()
    await nats?.stop()
  })

  it('two gateways splitting identical-prefix requests keep every engine under the fleet-wide load bound', async () => {
    const prefix = 'the same long system prompt shared by every request of this test, '.repeat(40)
    const ac = new AbortController()
    const streams: Array<Promise<unknown>> = []
    for (let i = 0; i < 16; i++) {
      const gw = gws[i % 2]!
      streams.push((async () => {
        const res = await request(gw.url + '/v1/completions', {
          method: 'POST',
          signal: ac.signal,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'mock-llm', prompt: prefix + `question ${i}`, max_tokens: 5000, ignore_eos: true, stream: true })
        })
        for await (const _chunk of res.body) { /* keep reading */ }
      })().catch(() => {}))
      // Each gateway's dispatch reaches the other within a tick or two of NATS.
      await until(`request ${i} visible on both gateways`, 3000, () => gws.every(g => inflight(g) === i + 1))
    }
    const perEngine = gws[0]!.ctx.registry.snapshot.workers.map(w => w.inflightRequests)
    if (process.env.SWY_TEST_VERBOSE !== undefined) console.error(`per-engine load: ${perEngine.join("/")}`)
    assert.deepEqual(perEngine, gws[1]!.ctx.registry.snapshot.workers.map(w => w.inflightRequests), 'both gateways see the same per-engine load')
    // The kv guard's bound, (1 + 1) x (in flight + 1) / engines + 1, over the fleet's whole load.
    const bound = 2 * (15 + 1) / 4 + 1
    assert.ok(Math.max(...perEngine) <= bound, `per-engine load ${perEngine.join('/')} exceeds the bound ${bound}`)
    // The kv policy's own charge travels too: prefill until the first token, KV blocks until the end.
    const remote = (g: Gateway, k: 'remotePrefillTokens' | 'remoteDecodeBlocks'): number => g.ctx.registry.snapshot.workers.reduce((a, w) => a + w[k], 0)
    await until('remote prefill charges end with the first tokens', 5000, () => gws.every(g => remote(g, 'remotePrefillTokens') === 0))
    for (const g of gws) assert.ok(remote(g, 'remoteDecodeBlocks') > 0, 'the other gateway\'s requests hold KV blocks in this one\'s view')
    ac.abort()
    await Promise.all(streams)
    await until('remote kv charges leave with the requests', 3000, () => gws.every(g => remote(g, 'remoteDecodeBlocks') === 0 && inflight(g) === 0))
  })
})

describe('replica sync wire: the kv policy\'s prefill and decode charge', { skip }, () => {
  it('an add carries prefill and blocks, prefill-done clears the prefill, finished clears the rest', async () => {
    const nats = (await NatsServer.start())!
    const handles = [await connectNats({ servers: nats.url }), await connectNats({ servers: nats.url })]
    const regs = [new Registry(), new Registry()]
    const workers = regs.map(r => r.add({ id: 'w0', url: 'http://127.0.0.1:9', models: ['m'], labels: {}, apiKey: null, staticModels: true }))
    const syncs = handles.map((h, i) => new RoutingSync(h.nc, regs[i]!, { namespace: 'wire', heartbeatMs: 60_000 }))
    try {
      await Promise.all(handles.map(async h => await h.nc.flush()))
      const key = {}
      syncs[0]!.added(key, workers[0]!, 700, 640, 44)
      const seen = workers[1]!
      await until('the add arrives', 3000, () => seen.inflightRequests === 1)
      assert.deepEqual([seen.inflightTokens, seen.remotePrefillTokens, seen.remoteDecodeBlocks], [700, 640, 44])
      syncs[0]!.prefillDone(key)
      await until('prefill done arrives', 3000, () => seen.remotePrefillTokens === 0)
      assert.equal(seen.remoteDecodeBlocks, 44, 'decode blocks stay until the request ends')
      syncs[0]!.finished(key)
      await until('finished arrives', 3000, () => seen.inflightRequests === 0)
      assert.deepEqual([seen.inflightTokens, seen.remotePrefillTokens, seen.remoteDecodeBlocks], [0, 0, 0])
      // Add and prefill-done in one tick go out as one add with prefill 0.
      const k2 = {}
      syncs[0]!.added(k2, workers[0]!, 10, 10, 2)
      syncs[0]!.prefillDone(k2)
      await until('the add arrives', 3000, () => seen.inflightRequests === 1)
      assert.deepEqual([seen.remotePrefillTokens, seen.remoteDecodeBlocks], [0, 2])
      syncs[0]!.finished(k2)
      await until('finished arrives', 3000, () => seen.inflightRequests === 0)
      assert.equal(workers[0]!.remoteDecodeBlocks, 0, 'a gateway never charges its own requests as remote')
    } finally {
      for (const s of syncs) s.close()
      for (const h of handles) await h.close()
      await nats.stop()
    }
  })
})
