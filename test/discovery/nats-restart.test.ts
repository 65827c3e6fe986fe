// NATS restarted under load: the gateways keep serving their last-known fleet while it is away,
// and resynchronise (discovery watch, KV event plane) once it is back. No request fails.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { openWorkerBucket } from '../../src/discovery/index.js'
import { connectNats } from '../../src/events/index.js'
import type { Gateway } from '../../src/frontend/gateway.js'
import { OverlapScores } from '../../src/kv/index.js'
import { builtinTokenizer } from '../../src/tokenize/index.js'
import { NatsServer, natsServerBinary, NO_NATS_SERVER } from '../fixtures/nats-server.js'
import { chat, MockerProcess, natsGateway, sleep, until } from './helpers.js'

const TTL = 1500
const skip = natsServerBinary() === null ? NO_NATS_SERVER : false

describe('NATS restarted under load', { skip }, () => {
  let nats: NatsServer
  let mocker: MockerProcess | null = null
  const gateways: Gateway[] = []

  before(async () => {
    nats = (await NatsServer.start())!
    const nc = await connectNats({ servers: nats.url })
    await openWorkerBucket(nc.nc, { bucket: 'switchyard-workers', ttlMs: TTL })
    await nc.close()
  })

  after(async () => {
    await Promise.all(gateways.map(async g => { await g.close(1000) }))
    await mocker?.kill()
    await nats?.stop()
  })

  it('gateways serve through the outage and resynchronise discovery and KV events afterwards', async () => {
    mocker = await MockerProcess.start(['--num-workers', '2', '--port', '0', '--speedup-ratio', '0', '--nats', nats.url])
    const gw1 = await natsGateway(nats.url, ['--policy', 'kv'])
    gateways.push(gw1)
    const gw2 = await natsGateway(nats.url, ['--policy', 'kv'])
    gateways.push(gw2)
    for (const g of [gw1, gw2]) await until('2 workers', 5_000, () => g.ctx.registry.snapshot.workers.filter(w => w.state === 'healthy').length === 2)

    let stop = false
    let ok = 0
    const failures: string[] = []
    const loop = async (g: Gateway, n: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        try {
          const r = await chat(g.url, `load ${n} ${i}`, 2)
          if (r.status === 200) ok++
          else failures.push(`${r.status} ${JSON.stringify(r.body)}`)
        } catch (err) {
          failures.push((err as Error).message)
        }
      }
    }
    const loops = [loop(gw1, 0), loop(gw1, 1), loop(gw2, 2), loop(gw2, 3)]
    try {
      await sleep(300)
      const before = ok
      await nats.down()
      // Longer than the TTL: the records the server keeps are older than their TTL when it is back.
      await sleep(TTL + 500)
      // Away: the fleet is still there and still serves (data never flows through NATS).
      assert.equal(gw1.ctx.registry.snapshot.workers.length, 2)
      assert.equal(gw2.ctx.registry.snapshot.workers.length, 2)
      await nats.up()
      await sleep(TTL + 500)
      assert.ok(ok > before + 20, `requests served across the outage: ${ok - before}`)
    } finally {
      stop = true
      await Promise.all(loops)
    }
    assert.deepEqual(failures, [])
    assert.equal(gw1.ctx.registry.snapshot.workers.length, 2)

    // KV events flow again: a long prompt through gw1 shows up in gw2's index. Each try is a
    // fresh prompt (a repeated one is a cache hit: no new events), checked by lookup on gw2 so a
    // worker cleared while its snapshot retry is pending does not blur a total-block count.
    const index = gw2.ctx.plane.indexes.get('mock-llm')!
    const tok = builtinTokenizer()
    const scores = new OverlapScores()
    let k = 0
    await until('gw2 to learn the blocks of a prompt sent through gw1', 15_000, async () => {
      const prompt = Array.from({ length: 400 }, (_v, i) => `after${k} ${i % 89} restart${i}`).join(' ')
      k++
      assert.equal((await chat(gw1.url, prompt, 2)).status, 200)
      const tokens = tok.encode(tok.applyChatTemplate([{ role: 'user', content: prompt }]))
      const end = Date.now() + 1500
      while (Date.now() < end) {
        if (index.lookupTokens(tokens, scores) >= 10) return true
        await sleep(50)
      }
      return false
    })

    // Discovery watches again: a clean mocker shutdown removes the workers from both at once.
    assert.equal(await mocker.kill('SIGTERM'), 0)
    mocker = null
    for (const g of [gw1, gw2]) await until('workers to leave', TTL, () => g.ctx.registry.snapshot.workers.length === 0)
  })
})
