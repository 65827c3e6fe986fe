// `switchyard register`: the sidecar for engines we do not run. A mock engine over plain HTTP and
// ZMQ stands in for vLLM; the sidecar is a real `switchyard register` process.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import type { Gateway } from '../../src/frontend/gateway.js'
import { startMockFleet, type MockFleet } from '../../src/mocker/index.js'
import { NatsServer, natsServerBinary, NO_NATS_SERVER } from '../fixtures/nats-server.js'
import { CLI, natsGateway, until } from './helpers.js'

const skip = natsServerBinary() === null ? NO_NATS_SERVER : false

describe('switchyard register (sidecar)', { skip }, () => {
  let nats: NatsServer
  let engine: MockFleet | null = null
  let gw: Gateway
  let sidecar: ReturnType<typeof spawn> | null = null
  let out = ''

  before(async () => {
    nats = (await NatsServer.start())!
    engine = await startMockFleet({ numWorkers: 1, port: 0, kvEventsPort: 0, speedupRatio: 0, model: 'vllm-model' })
    gw = await natsGateway(nats.url, ['--policy', 'kv'])
  })

  after(async () => {
    sidecar?.kill('SIGKILL')
    await gw?.close(500)
    await engine?.close()
    await nats?.stop()
  })

  it('registers the engine with its discovered model and KV event endpoints; the gateway serves through it and subscribes to its events', async () => {
    const w = engine!.workers[0]!
    sidecar = spawn(process.execPath, [CLI, 'register', '--nats', nats.url, '--url', w.url, '--kv-events', w.kvEvents!.endpoint, '--kv-replay', w.kvEvents!.replayEndpoint!, '--block-size', '64', '--ttl', '1500', '--probe-interval', '200'], { stdio: ['ignore', 'pipe', 'pipe'] })
    sidecar.stderr!.on('data', (b: Buffer) => { out += b.toString() })
    await until('the sidecar registered the engine', 10_000, () => out.includes('registered on'))
    assert.match(out, /\(vllm-model\) registered on/)
    await until('the gateway lists it healthy', 5_000, () => gw.ctx.registry.snapshot.workers.some(x => x.state === 'healthy'))
    const worker = gw.ctx.registry.snapshot.workers[0]!
    assert.equal(worker.url, w.url)
    assert.deepEqual(worker.models, ['vllm-model'])
    await until('the KV event source attached', 5_000, () => gw.ctx.plane.hasEvents(worker.id))
    const r = await fetch(gw.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'vllm-model', messages: [{ role: 'user', content: 'hello from the sidecar test' }], max_tokens: 4 }) })
    assert.equal(r.status, 200, await r.text())
  })

  it('when the engine stops answering, the sidecar withdraws the record and the gateway drops the worker', async () => {
    await engine!.close()
    engine = null
    const t0 = Date.now()
    await until('the gateway dropped the worker', 6_000, () => gw.ctx.registry.snapshot.workers.length === 0)
    assert.ok(Date.now() - t0 < 6_000)
    assert.equal(sidecar!.exitCode, null, 'the sidecar keeps running, waiting for the engine to come back')
  })
})
