// KV event decoding: both vLLM encodings, every hash encoding, skipped fields and events, bad input.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Packr } from 'msgpackr'
import { BlockHasher, KvBatchDecoder, KvDecodeError, KvIndex, KvSourceCounters, OverlapScores, WorkerEventApplier, BlockKeyer } from '../../src/kv/index.js'
import { MsgpackCursor } from '../../src/kv/msgpack-cursor.js'
import { createMockEngine, KvBatchEncoder } from '../../src/mocker/index.js'
import type { KvEventBatch } from '../../src/mocker/index.js'

const packr = new Packr({ useRecords: false, variableMapSize: true })

function sinkFor (index: KvIndex, worker = 'w'): { apply: (payload: Uint8Array) => void, counters: KvSourceCounters, slot: number } {
  const slot = index.addWorker(worker)
  const counters = new KvSourceCounters()
  const applier = new WorkerEventApplier(index, slot, new BlockKeyer(index.blockSize), counters)
  const decoder = new KvBatchDecoder()
  return { apply: (p) => decoder.decode(p, applier), counters, slot }
}

function prompt (shared: number, own: number, salt: number): number[] {
  const p: number[] = []
  for (let i = 0; i < shared; i++) p.push(100 + i)
  for (let i = 0; i < own; i++) p.push(10_000 * salt + i)
  return p
}

test('map and legacy encodings of the same engine batches give the same index state as the engine cache', async () => {
  const engine = createMockEngine({ speedupRatio: 0, blockSize: 4, numGpuBlocks: 40 })
  const batches: KvEventBatch[] = []
  engine.onKvEvents((b) => batches.push(b))
  const prompts: number[][] = []
  for (let i = 0; i < 30; i++) {
    const p = prompt(4 * (i % 3) + 6, 3 + (i % 7), i)
    prompts.push(p)
    await engine.generate({ promptTokens: p, maxTokens: 3, ignoreEos: true })
  }
  await engine.close()
  assert.ok(batches.some((b) => b.events.some((e) => e.type === 'BlockRemoved')), 'the workload evicts blocks')

  const mapIndex = new KvIndex({ blockSize: 4 })
  const legacyIndex = new KvIndex({ blockSize: 4 })
  const viaMap = sinkFor(mapIndex)
  const viaLegacy = sinkFor(legacyIndex)
  const mapEncoder = new KvBatchEncoder('map')
  const legacyEncoder = new KvBatchEncoder('legacy')
  for (const b of batches) {
    viaMap.apply(mapEncoder.encode(b))
    viaLegacy.apply(legacyEncoder.encode(b))
  }
  assert.deepEqual(mapIndex.engineHashes(viaMap.slot), legacyIndex.engineHashes(viaLegacy.slot))
  assert.deepEqual(new Set(mapIndex.engineHashes(viaMap.slot)), engine.blocks.cachedHashes())
  assert.deepEqual(viaMap.counters, viaLegacy.counters)
  assert.equal(viaMap.counters.decodeErrors + viaMap.counters.malformedEvents + viaMap.counters.ignoredEvents, 0)

  // Lookups agree with each other and with the engine's own prefix-cache view.
  const hasher = new BlockHasher(4)
  const a = new OverlapScores()
  const b = new OverlapScores()
  for (const p of prompts) {
    mapIndex.lookupTokens(p, a)
    legacyIndex.lookupTokens(p, b)
    assert.equal(a.get(viaMap.slot), b.get(viaLegacy.slot))
    const seq = hasher.sequenceHashes(p)
    assert.equal(a.get(viaMap.slot), engine.blocks.countCachedPrefix(seq, seq.length))
  }
})

function bytes (seed: number, n = 32): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff
  return b
}

test('hashes as byte strings: stores by parent and removals find them; lookups use our hashes of token_ids', () => {
  const index = new KvIndex({ blockSize: 4 })
  const { apply, counters, slot } = sinkFor(index)
  const ha = bytes(1)
  const hb = bytes(2)
  const hc = bytes(3, 8)
  apply(packr.pack([1.5, [{
    type: 'BlockStored', block_hashes: [ha, hb], parent_block_hash: null, token_ids: [1, 2, 3, 4, 5, 6, 7, 8],
    block_size: 4, lora_id: null, medium: 'GPU', lora_name: null, extra_keys: [null, null], unknown_future_field: { x: [1, 2] }
  }], 0]))
  // Legacy array form, parent given as bytes, extra trailing fields.
  apply(packr.pack([2.0, [['BlockStored', [hc], hb, [9, 10, 11, 12], 4, null, 'GPU', null, null, 0, 'full', null, 'session-1']]]))
  const scores = new OverlapScores()
  assert.equal(index.lookupTokens([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], scores), 3)
  assert.equal(scores.get(slot), 3)
  assert.equal(index.blockCount(slot), 3)
  apply(packr.pack([3.0, [{ medium: 'GPU', block_hashes: [hb], type: 'BlockRemoved' }]]))
  index.lookupTokens([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], scores)
  assert.equal(scores.get(slot), 1, 'the removed middle block ends the match')
  assert.equal(index.blockCount(slot), 2)
  apply(packr.pack([4.0, [['AllBlocksCleared']]]))
  assert.equal(index.blockCount(slot), 0)
  assert.equal(index.nodeCount, 1)
  assert.equal(counters.stores, 2)
  assert.equal(counters.removals, 1)
  assert.equal(counters.clears, 1)
})

test('a hash decodes to the same id from uint64, int64, small-int and 8-byte encodings', () => {
  const c = new MsgpackCursor()
  const out = new Int32Array(2)
  const read = (bytesIn: number[]): [number, number] => {
    c.reset(Uint8Array.from(bytesIn))
    c.hash(out, 0)
    assert.equal(c.pos, bytesIn.length)
    return [out[0]!, out[1]!]
  }
  const five = [0, 5]
  assert.deepEqual(read([0xcf, 0, 0, 0, 0, 0, 0, 0, 5]), five)
  assert.deepEqual(read([0xd3, 0, 0, 0, 0, 0, 0, 0, 5]), five)
  assert.deepEqual(read([0x05]), five)
  assert.deepEqual(read([0xcc, 5]), five)
  assert.deepEqual(read([0xce, 0, 0, 0, 5]), five)
  assert.deepEqual(read([0xc4, 8, 0, 0, 0, 0, 0, 0, 0, 5]), five)
  const minusOne = [-1, -1]
  assert.deepEqual(read([0xff]), minusOne)
  assert.deepEqual(read([0xd3, 255, 255, 255, 255, 255, 255, 255, 255]), minusOne)
  assert.deepEqual(read([0xcf, 255, 255, 255, 255, 255, 255, 255, 255]), minusOne)
  // msgpackr packs BigInts below 2^63 as int64 and above as uint64: both land on the same bits.
  for (const v of [3n, (1n << 53n) + 1n, (1n << 63n) + 12345n, (1n << 64n) - 2n]) {
    c.reset(packr.pack(v))
    c.hash(out, 0)
    assert.equal((BigInt(out[0]! >>> 0) << 32n) | BigInt(out[1]! >>> 0), v)
  }
})

test('events for other media, other KV groups, other block sizes and unknown types are skipped and counted', () => {
  const index = new KvIndex({ blockSize: 4 })
  const { apply, counters, slot } = sinkFor(index)
  const stored = (extra: Record<string, unknown>): Record<string, unknown> =>
    ({ type: 'BlockStored', block_hashes: [7], parent_block_hash: null, token_ids: [1, 2, 3, 4], block_size: 4, ...extra })
  apply(packr.pack([0, [
    stored({ medium: 'CPU' }), stored({ group_idx: 1 }), { type: 'BlockStored', block_hashes: [8], parent_block_hash: null, token_ids: [1, 2, 3, 4, 5, 6, 7, 8], block_size: 8 },
    { type: 'SomethingNew', block_hashes: [1] }, ['AlsoNew', 1, 2], stored({ token_ids: [1, 2, 3] })
  ], 0]))
  assert.equal(counters.ignoredEvents, 5)
  assert.equal(counters.malformedEvents, 1)
  assert.equal(index.blockCount(slot), 0)
  apply(packr.pack([0, [stored({ medium: null })]]))
  assert.equal(index.blockCount(slot), 1, 'a nil medium means GPU (older vLLM)')
})

test('LoRA blocks live under their adapter: they never match base-model lookups', () => {
  const index = new KvIndex({ blockSize: 2 })
  const { apply, slot } = sinkFor(index)
  apply(packr.pack([0, [
    { type: 'BlockStored', block_hashes: [1], parent_block_hash: null, token_ids: [5, 6], block_size: 2, lora_id: 3, lora_name: 'sql-adapter' }
  ]]))
  const scores = new OverlapScores()
  assert.equal(index.lookupTokens([5, 6], scores), 0)
  assert.equal(index.lookupTokens([5, 6], scores, 'sql-adapter'), 1)
  assert.equal(scores.get(slot), 1)
  assert.equal(index.lookupTokens([5, 6], scores, 'other-adapter'), 0)
})

test('a malformed batch throws KvDecodeError with the offset; events before it stay applied', () => {
  const index = new KvIndex({ blockSize: 2 })
  const { apply, slot } = sinkFor(index)
  const good = packr.pack([0, [
    { type: 'BlockStored', block_hashes: [1], parent_block_hash: null, token_ids: [5, 6], block_size: 2 },
    { type: 'BlockStored', block_hashes: [2], parent_block_hash: 1, token_ids: [7, 8], block_size: 2 }
  ]])
  const cut = good.subarray(0, good.length - 3)
  assert.throws(() => apply(cut), (err: unknown) => err instanceof KvDecodeError && err.code === 'SWY_ERR_KV_EVENT_DECODE' && err.offset > 0)
  assert.equal(index.blockCount(slot), 1)
  assert.throws(() => apply(Uint8Array.of(0xc1)), KvDecodeError)
  assert.throws(() => apply(packr.pack('not a batch')), KvDecodeError)
})

test('a map-form batch and its dp rank are read', () => {
  const decoder = new KvBatchDecoder()
  const index = new KvIndex({ blockSize: 2 })
  const slot = index.addWorker('w')
  const applier = new WorkerEventApplier(index, slot, new BlockKeyer(2), new KvSourceCounters())
  decoder.decode(packr.pack({ data_parallel_rank: 2, ts: 9.25, events: [{ type: 'BlockStored', block_hashes: [1], token_ids: [1, 2] }] }), applier)
  assert.equal(decoder.dpRank, 2)
  assert.equal(decoder.ts, 9.25)
  assert.equal(decoder.events, 1)
  assert.equal(index.blockCount(slot), 1)
})
