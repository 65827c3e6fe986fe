// Distributed mode end to end against a real nats-server: a `switchyard mocker --nats` process,
// gateways in-process following the discovery bucket and the KV event plane.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Gateway } from '../../src/frontend/gateway.js'
import { NatsServer, natsServerBinary, NO_NATS_SERVER } from '../fixtures/nats-server.js'
import { chat, getJson, listedWorkers, MockerProcess, natsGateway, until } from './helpers.js'

const TTL = 1500
const MOCKER_ARGS = ['--num-workers', '2', '--port', '0', '--speedup-ratio', '0', '--nats-ttl', String(TTL)]
const skip = natsServerBinary() === null ? NO_NATS_SERVER : false

describe('distributed mode over NATS', { skip }, () => {
  let nats: NatsServer
  let mocker: MockerProcess | null = null
  const gateways: Gateway[] = []
  let gw1: Gateway
  let gw2: Gateway

  before(async () => {
    nats = (await NatsServer.start())!
    // gw1 creates the bucket with the default max age (15 s); the mocker's records carry their
    // own shorter TTL (--nats-ttl), which the gateways age them by.
    gw1 = await natsGateway(nats.url, ['--policy', 'kv'])
    gateways.push(gw1)
  })

  after(async () => {
    await Promise.all(gateways.map(async g => { await g.close(1000) }))
    await mocker?.kill()
    await nats?.stop()
  })

  it('a gateway with nats set and no static workers starts no fleet and refuses requests until a worker appears', async () => {
    assert.equal(gw1.ctx.registry.snapshot.workers.length, 0)
    assert.deepEqual(await listedWorkers(gw1.url), [])
    const r = await chat(gw1.url, 'hello')
    // No worker serves the model yet: 503 would be the better answer in distributed mode, but the
    // model check in src/frontend/openai.ts answers 404 model_not_found before routing.
    assert.ok(r.status === 503 || (r.status === 404 && r.body.error.code === 'model_not_found'), JSON.stringify(r.body))
  })

  it('two gateways list the mocker fleet registered on NATS and serve through it', async () => {
    mocker = await MockerProcess.start([...MOCKER_ARGS, '--nats', nats.url])
    assert.match(mocker.out, new RegExp(`registered 2 engines on NATS \\(namespace default, record TTL ${TTL} ms\\)`))
    gw2 = await natsGateway(nats.url, ['--policy', 'kv'])
    gateways.push(gw2)
    const ids = mocker.urls.map(u => new URL(u).host).sort()
    assert.equal(ids.length, 2)
    for (const g of [gw1, gw2]) {
      await until('both workers healthy', 5_000, async () => JSON.stringify(await listedWorkers(g.url)) === JSON.stringify(ids))
      const models = await getJson(`${g.url}/v1/models`)
      assert.equal(models.status, 200)
      assert.deepEqual(models.body.data.map((m: { id: string }) => m.id), ['mock-llm'])
      const r = await chat(g.url, 'hello there')
      assert.equal(r.status, 200, JSON.stringify(r.body))
      assert.equal(r.body.object, 'chat.completion')
    }
    const w = (await getJson(`${gw2.url}/workers`)).body.data[0]
    assert.equal(w.labels.discovery, 'nats')
    assert.equal(w.max_inflight_tokens, 16384 * 64, 'the record\'s KV capacity sizes the token window')
    assert.equal(w.labels.engine, 'mocker')
  })

  it('KV events over NATS feed the other gateway\'s index, and a repeated prefix routes to the same engine', async () => {
    const prompt = Array.from({ length: 400 }, (_v, i) => `word${i % 97} item${i}`).join(' ')
    const idx2 = (): ReturnType<Map<string, any>['get']> => gw2.ctx.plane.indexes.get('mock-llm')
    const blocksOf = (id: string): number => {
      const index = idx2()
      if (index === undefined) return 0
      const slot = index.slotOf(id)
      return slot < 0 ? 0 : index.engineHashes(slot).length
    }
    const ids = [...gw2.ctx.registry.snapshot.workers].map(w => w.id)
    const before0 = ids.map(blocksOf)
    const r1 = await chat(gw1.url, prompt, 2)
    assert.equal(r1.status, 200)
    // gw2 never saw this request: its index learns the blocks from the event plane.
    const served = await until('gw2 index to hold the prompt blocks', 5_000, () => {
      const grown = ids.filter((id, i) => blocksOf(id) >= before0[i]! + 10)
      return grown.length === 1 ? grown[0] : undefined
    })
    const other = ids.find(id => id !== served)!
    const otherBefore = blocksOf(other)
    const r2 = await chat(gw2.url, prompt + ' and one more question', 2)
    assert.equal(r2.status, 200)
    assert.ok(r2.body.usage.prompt_tokens_details.cached_tokens >= 10 * 64, JSON.stringify(r2.body.usage))
    // The engine that cached it served it: the other one stored nothing new.
    await until('the repeat to be stored', 5_000, () => blocksOf(served) > before0[ids.indexOf(served)]! + 10)
    assert.equal(blocksOf(other), otherBefore)
    // gw1 sees the same thing.
    const idx1 = gw1.ctx.plane.indexes.get('mock-llm')!
    await until('gw1 index', 5_000, () => idx1.slotOf(served) >= 0 && idx1.engineHashes(idx1.slotOf(served)).length >= 10)
  })

  it('killing the mocker removes its workers from both gateways within the TTL; restarting brings them back', async () => {
    const t0 = Date.now()
    await mocker!.kill('SIGKILL')
    for (const g of [gw1, gw2]) await until('workers to leave', 3 * TTL, () => g.ctx.registry.snapshot.workers.length === 0)
    const took = Date.now() - t0
    assert.ok(took < 2 * TTL, `removal took ${took} ms (TTL ${TTL})`)
    assert.notEqual((await chat(gw1.url, 'anyone?')).status, 200)

    mocker = await MockerProcess.start([...MOCKER_ARGS, '--nats', nats.url])
    const ids = mocker.urls.map(u => new URL(u).host).sort()
    for (const g of [gw1, gw2]) {
      await until('workers to come back', 5_000, async () => JSON.stringify(await listedWorkers(g.url)) === JSON.stringify(ids))
      assert.equal((await chat(g.url, 'welcome back')).status, 200)
    }
  })

  it('a gateway started late lists the fleet at start, then follows changes', async () => {
    const gw3 = await natsGateway(nats.url)
    gateways.push(gw3)
    const ids = mocker!.urls.map(u => new URL(u).host).sort()
    // Listed during start(): the records are in the registry as soon as start() returns.
    assert.deepEqual(gw3.ctx.registry.snapshot.workers.map(w => w.id).sort(), ids)
    await until('gw3 workers healthy', 5_000, async () => JSON.stringify(await listedWorkers(gw3.url)) === JSON.stringify(ids))
    assert.equal((await chat(gw3.url, 'late hello')).status, 200)
    // A clean shutdown deletes the records: everyone drops them at once (not after the TTL).
    const t0 = Date.now()
    assert.equal(await mocker!.kill('SIGTERM'), 0)
    for (const g of [gw1, gw2, gw3]) await until('workers to leave', TTL, () => g.ctx.registry.snapshot.workers.length === 0)
    assert.ok(Date.now() - t0 < TTL)
    mocker = null
  })
})
