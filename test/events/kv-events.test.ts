// KV events over NATS: the worker publishes compact batches, the gateway's stream feeds its index;
// gaps and late joiners are repaired from snapshots, restarts clear the worker.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connectNats, NatsKvPublisher, NatsKvSubscriber, BlockMirror, fromWire, toWire } from '../../src/events/index.js'
import { InProcessKvEventSource, KvIndex } from '../../src/kv/index.js'
import { createMockEngine } from '../../src/mocker/index.js'
import { NatsServer, NO_NATS_SERVER } from '../fixtures/nats-server.js'

async function until (what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

function sameSet (a: Iterable<bigint>, b: Iterable<bigint>): boolean {
  const x = new Set(a)
  const y = new Set(b)
  return x.size === y.size && [...x].every(h => y.has(h))
}

test('the wire form round-trips events, and a mirror snapshot lists parents before children', () => {
  const tokens = Uint32Array.from({ length: 12 }, (_, i) => i + 1)
  const stored = { type: 'BlockStored' as const, blockHashes: [2n ** 63n + 5n, 7n, 9n], parentBlockHash: null, tokenIds: tokens, blockSize: 4, loraName: null, medium: 'GPU' }
  const back = fromWire(structuredClone(toWire(stored)))
  assert.ok(back !== null && back.type === 'BlockStored')
  assert.deepEqual(back.blockHashes, stored.blockHashes)
  assert.deepEqual(Array.from(back.tokenIds), Array.from(tokens))
  assert.equal(toWire({ type: 'BlockRemoved', blockHashes: [1n], medium: 'CPU' }), null, 'other tiers are not published')
  const m = new BlockMirror()
  m.apply(stored)
  // Re-storing the root moves it after its children in insertion order; the snapshot still starts with it.
  m.apply({ type: 'BlockRemoved', blockHashes: [2n ** 63n + 5n] })
  m.apply({ type: 'BlockStored', blockHashes: [2n ** 63n + 5n], parentBlockHash: null, tokenIds: tokens.subarray(0, 4), blockSize: 4 })
  const snap = m.snapshot(1 << 20).flat().map(w => fromWire(w)!)
  assert.equal(snap.length, 1, 'one chain, one event')
  const first = snap[0]!
  assert.ok(first.type === 'BlockStored')
  assert.deepEqual(first.blockHashes, [2n ** 63n + 5n, 7n, 9n])
})

test('KV events over NATS mirror the engine in the gateway index; a gap is repaired from a snapshot; a restart clears', async (t) => {
  const server = await NatsServer.start()
  if (server === null) { t.skip(NO_NATS_SERVER); return }
  const worker = await connectNats({ servers: server.url })
  const gateway = await connectNats({ servers: server.url })
  const engine = createMockEngine({ speedupRatio: 0, blockSize: 4, numGpuBlocks: 24 })
  const pub = new NatsKvPublisher(worker.nc, { namespace: 'test', workerId: '127.0.0.1:9000' })
  const off = engine.onKvEvents((b) => { pub.publish(b.events) })
  const sub = new NatsKvSubscriber(gateway.nc, { namespace: 'test', snapshotTimeoutMs: 1000 })
  const index = new KvIndex({ blockSize: 4 })
  try {
    // Blocks cached before the gateway attaches arrive with the attach snapshot.
    await engine.generate({ promptTokens: Array.from({ length: 13 }, (_, k) => 500 + k), maxTokens: 2, ignoreEos: true })
    await worker.nc.flush()
    const stream = sub.engineFor('127.0.0.1:9000')
    const src = new InProcessKvEventSource(index, stream, { workerId: '127.0.0.1:9000' })
    await until('attach snapshot', () => stream.counters.snapshots === 1)
    assert.ok(sameSet(index.engineHashes(src.slot), engine.blocks.cachedHashes()))

    for (let i = 0; i < 20; i++) {
      if (i === 8) pub.dropNext(2)
      const p = [...Array.from({ length: 4 * (i % 3) + 2 }, (_, k) => 7 + k), ...Array.from({ length: 9 }, (_, k) => 1000 * i + k)]
      await engine.generate({ promptTokens: p, maxTokens: 3, ignoreEos: true })
    }
    assert.ok(engine.blocks.evictions > 0, 'the test wants evictions')
    await worker.nc.flush()
    await until('the index to match the engine', () => sameSet(index.engineHashes(src.slot), engine.blocks.cachedHashes()))
    assert.ok(stream.counters.gaps >= 1, 'the dropped batches were noticed')
    assert.ok(stream.counters.snapshots >= 2, 'and repaired from a snapshot')

    // The worker restarts: a new publisher instance starting at seq 1 clears its old blocks.
    off()
    await pub.close()
    engine.resetPrefixCache()
    const pub2 = new NatsKvPublisher(worker.nc, { namespace: 'test', workerId: '127.0.0.1:9000' })
    const off2 = engine.onKvEvents((b) => { pub2.publish(b.events) })
    await engine.generate({ promptTokens: Array.from({ length: 9 }, (_, k) => 77 + k), maxTokens: 2, ignoreEos: true })
    await worker.nc.flush()
    await until('the restart', () => stream.counters.restarts === 1)
    await until('the index to match the restarted engine', () => sameSet(index.engineHashes(src.slot), engine.blocks.cachedHashes()))
    off2()
    await pub2.close()
    await src.close()
  } finally {
    await engine.close()
    await sub.close()
    await gateway.close()
    await worker.close()
    await server.stop()
  }
})
