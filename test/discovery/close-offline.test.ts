// Shutting down while NATS is away must not hang (a gateway or mocker stopping during an outage).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { NatsDiscovery, WorkerRegistration } from '../../src/discovery/index.js'
import { connectNats } from '../../src/events/index.js'
import { NatsServer, natsServerBinary, NO_NATS_SERVER } from '../fixtures/nats-server.js'

test('registration, discovery and the connection close promptly while NATS is down', { skip: natsServerBinary() === null ? NO_NATS_SERVER : false }, async () => {
  const nats = (await NatsServer.start())!
  try {
    const h = await connectNats({ servers: nats.url })
    const reg = new WorkerRegistration(h.nc, { record: { id: 'w:1', url: 'http://127.0.0.1:1', models: ['m'] }, ttlMs: 600 })
    await reg.start()
    const seen: string[] = []
    const d = new NatsDiscovery(h.nc, { onUpsert: r => seen.push(r.id), onRemove: () => {} })
    await d.start()
    assert.deepEqual(seen, ['w:1'])
    await nats.down()
    await new Promise(resolve => setTimeout(resolve, 500)) // a refresh is now in flight
    const t0 = Date.now()
    await reg.close()
    await d.close()
    await h.close()
    assert.ok(Date.now() - t0 < 3_000, `closing took ${Date.now() - t0} ms`)
  } finally {
    await nats.stop()
  }
})
