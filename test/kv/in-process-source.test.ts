// The in-process source follows an embedded mock engine through engine.onKvEvents, with no sockets.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BlockHasher, InProcessKvEventSource, KvIndex, OverlapScores } from '../../src/kv/index.js'
import type { InProcessKvEngine } from '../../src/kv/index.js'
import { createMockEngine } from '../../src/mocker/index.js'

test('an embedded engine\'s cache is mirrored in the index, resets included; close() unsubscribes', async () => {
  const engine = createMockEngine({ speedupRatio: 0, blockSize: 4, numGpuBlocks: 24 })
  const index = new KvIndex({ blockSize: 4 })
  const src = new InProcessKvEventSource(index, engine, { workerId: 'mock-0' })
  const hasher = new BlockHasher(4)
  const scores = new OverlapScores()
  try {
    const prompts: number[][] = []
    for (let i = 0; i < 25; i++) {
      const p = [...Array.from({ length: 4 * (i % 4) + 2 }, (_, k) => 7 + k), ...Array.from({ length: 9 }, (_, k) => 1000 * i + k)]
      prompts.push(p)
      await engine.generate({ promptTokens: p, maxTokens: 3, ignoreEos: true })
    }
    assert.ok(engine.blocks.evictions > 0)
    assert.deepEqual(new Set(index.engineHashes(src.slot)), engine.blocks.cachedHashes())
    for (const p of prompts) {
      index.lookupTokens(p, scores)
      const seq = hasher.sequenceHashes(p)
      assert.equal(scores.get(src.slot), engine.blocks.countCachedPrefix(seq, seq.length))
    }
    assert.ok(src.counters.removedBlocks > 0 && src.counters.storedBlocks > 0)
    engine.resetPrefixCache()
    assert.equal(src.blocks, 0)
    assert.equal(src.counters.clears, 1)
    await src.close()
    await src.close()
    await engine.generate({ promptTokens: prompts[0]!, maxTokens: 2, ignoreEos: true })
    assert.equal(src.blocks, 0, 'no events after close')
  } finally {
    await engine.close()
  }
})

test('any object with onKvEvents works as an engine (number[] tokens, BigInt hashes ≥ 2^63)', async () => {
  let listener: ((b: Parameters<Parameters<InProcessKvEngine['onKvEvents']>[0]>[0]) => void) | null = null
  const engine: InProcessKvEngine = { onKvEvents (fn) { listener = fn; return () => { listener = null } } }
  const index = new KvIndex({ blockSize: 2 })
  const src = new InProcessKvEventSource(index, engine, { workerId: 'x' })
  const big = (1n << 63n) + 77n
  listener!({ seq: 0, events: [{ type: 'BlockStored', blockHashes: [big, 5n], parentBlockHash: null, tokenIds: [1, 2, 3, 4], blockSize: 2 }] })
  assert.deepEqual(index.engineHashes(src.slot), [5n, big])
  listener!({ seq: 1, events: [{ type: 'BlockRemoved', blockHashes: [big] }] })
  const scores = new OverlapScores()
  assert.equal(index.lookupTokens([1, 2, 3, 4], scores), 0, 'the first block is gone, so nothing matches')
  await src.close()
  assert.equal(listener, null)
})

test('a source whose worker was removed from the index stops applying, even when its slot is reused', () => {
  let listener: ((b: Parameters<Parameters<InProcessKvEngine['onKvEvents']>[0]>[0]) => void) | null = null
  const engine: InProcessKvEngine = { onKvEvents (fn) { listener = fn; return () => { listener = null } } }
  const index = new KvIndex({ blockSize: 2 })
  const src = new InProcessKvEventSource(index, engine, { workerId: 'old' })
  index.removeWorker('old')
  const other = index.addWorker('new')
  assert.equal(other, src.slot, 'the slot is reused')
  listener!({ seq: 0, events: [{ type: 'BlockStored', blockHashes: [1n], parentBlockHash: null, tokenIds: [1, 2], blockSize: 2 }] })
  assert.equal(index.blockCount(other), 0)
  assert.equal(src.counters.orphanBatches, 1)
})
