import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Unpackr } from 'msgpackr'
import { BlockHasher } from '../../src/kv/hash.js'
import { createMockEngine, KvBatchEncoder } from '../../src/mocker/index.js'
import type { KvEventBatch, MockEngine } from '../../src/mocker/index.js'

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' })

type Decoded = { type: string, hashes: bigint[], parent: bigint | null, tokens: number[], blockSize: number | null }

// Decodes a payload as a vLLM subscriber would (DESIGN 4.2): map or legacy tagged-array events.
function decodePayload (payload: Buffer): { ts: number, events: Decoded[], dpRank: number } {
  const [ts, events, dpRank] = unpackr.unpack(payload) as [number, unknown[], number]
  return {
    ts,
    dpRank,
    events: events.map((e) => {
      if (Array.isArray(e)) {
        const [type, hashes, parent, tokens, blockSize] = e as [string, bigint[], bigint | null, number[], number]
        if (type === 'BlockStored') return { type, hashes, parent, tokens, blockSize }
        if (type === 'BlockRemoved') return { type, hashes, parent: null, tokens: [], blockSize: null }
        return { type, hashes: [], parent: null, tokens: [], blockSize: null }
      }
      const m = e as Record<string, unknown>
      return {
        type: m.type as string,
        hashes: (m.block_hashes as bigint[] | undefined) ?? [],
        parent: (m.parent_block_hash as bigint | null | undefined) ?? null,
        tokens: (m.token_ids as number[] | undefined) ?? [],
        blockSize: (m.block_size as number | undefined) ?? null
      }
    })
  }
}

function apply (set: Set<bigint>, events: Decoded[]): void {
  for (const e of events) {
    if (e.type === 'BlockStored') for (const h of e.hashes) set.add(h)
    else if (e.type === 'BlockRemoved') for (const h of e.hashes) set.delete(h)
    else if (e.type === 'AllBlocksCleared') set.clear()
  }
}

function prompt (shared: number, own: number, group: number, salt: number): Uint32Array {
  const p = new Uint32Array(shared + own)
  for (let i = 0; i < p.length; i++) p[i] = i < shared ? 100 + group * 1000 + i : 90000 + salt * 500 + i
  return p
}

async function churn (engine: MockEngine, rounds: number): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    const batch: Array<Promise<unknown>> = []
    for (let i = 0; i < 6; i++) {
      batch.push(engine.generate({ promptTokens: prompt(24 + (i % 3) * 8, 5 + i, i % 2, r * 10 + i), maxTokens: 3 + i, ignoreEos: true }))
    }
    await Promise.all(batch)
    if (r === Math.floor(rounds / 2)) engine.resetPrefixCache()
  }
}

for (const format of ['map', 'legacy'] as const) {
  test(`replaying published ${format} events reproduces the cached blocks through stores, evictions and clears`, async () => {
    const engine = createMockEngine({ clock: 'virtual', blockSize: 4, numGpuBlocks: 40, maxNumBatchedTokens: 48, maxNumSeqs: 4 })
    const encoder = new KvBatchEncoder(format)
    const replica = new Set<bigint>()
    const kinds = new Set<string>()
    let batches = 0
    engine.onKvEvents((batch: KvEventBatch) => {
      assert.equal(batch.seq, batches++)
      const decoded = decodePayload(encoder.encode(batch))
      for (const e of decoded.events) kinds.add(e.type)
      apply(replica, decoded.events)
      assert.deepEqual(replica, engine.blocks.cachedHashes(), `after batch ${batch.seq}`)
    })
    await churn(engine, 8)
    assert.ok(kinds.has('BlockStored') && kinds.has('BlockRemoved') && kinds.has('AllBlocksCleared'), [...kinds].join())
    assert.ok(engine.blocks.evictions > 0)
    assert.deepEqual(replica, engine.blocks.cachedHashes())
    await engine.close()
  })
}

test('stored events carry our sequence hashes, their parent and the blocks\' tokens', async () => {
  const engine = createMockEngine({ clock: 'virtual', blockSize: 4, numGpuBlocks: 64 })
  const stored: Decoded[] = []
  const encoder = new KvBatchEncoder()
  engine.onKvEvents((b) => { stored.push(...decodePayload(encoder.encode(b)).events.filter((e) => e.type === 'BlockStored')) })
  const p = prompt(0, 10, 0, 1)
  const r = await engine.generate({ promptTokens: p, maxTokens: 7, ignoreEos: true })
  const all = [...p, ...r.tokenIds]
  const want = new BlockHasher(4).sequenceHashes(all.slice(0, 16))
  assert.deepEqual(stored.flatMap((e) => e.hashes), want, 'prompt blocks, then blocks filled by output')
  assert.equal(stored[0]!.parent, null)
  assert.deepEqual(stored[0]!.tokens, all.slice(0, stored[0]!.hashes.length * 4))
  assert.equal(stored[1]!.parent, want[stored[0]!.hashes.length - 1])
  assert.equal(stored[0]!.blockSize, 4)
  await engine.close()
})

test('the wire payload uses float64 timestamps and uint64 hashes, including values above 2^53', () => {
  const encoder = new KvBatchEncoder()
  const big = 0xfedcba9876543210n
  const small = 5n
  const batch = {
    seq: 0,
    ts: 2,
    dpRank: 0,
    events: [
      { type: 'BlockStored', blockHashes: [big, small], parentBlockHash: 2n ** 60n, tokenIds: Uint32Array.of(1, 2, 3, 4, 5, 6, 7, 8), blockSize: 4, loraId: null, medium: 'GPU', loraName: null },
      { type: 'BlockRemoved', blockHashes: [big], medium: 'GPU' },
      { type: 'AllBlocksCleared' }
    ]
  } as unknown as KvEventBatch
  const payload = encoder.encode(batch)
  assert.equal(payload[0], 0x93, 'array of 3')
  assert.equal(payload[1], 0xcb, 'ts is float64 even when whole')
  assert.ok(payload.includes(Buffer.from('cffedcba9876543210', 'hex')))
  assert.ok(payload.includes(Buffer.from('cf0000000000000005', 'hex')), 'small hashes stay uint64')
  const decoded = unpackr.unpack(payload) as [number, Array<Record<string, unknown>>, number]
  assert.equal(decoded[0], 2)
  assert.deepEqual(decoded[1][0], {
    type: 'BlockStored', block_hashes: [big, small], parent_block_hash: 2n ** 60n, token_ids: [1, 2, 3, 4, 5, 6, 7, 8],
    block_size: 4, lora_id: null, medium: 'GPU', lora_name: null
  })
  assert.deepEqual(decoded[1][1], { type: 'BlockRemoved', block_hashes: [big], medium: 'GPU' })
  assert.deepEqual(decoded[1][2], { type: 'AllBlocksCleared' })
  assert.equal(decoded[2], 0)
  const legacy = unpackr.unpack(new KvBatchEncoder('legacy').encode(batch)) as [number, unknown[], number]
  assert.deepEqual(legacy[1][0], ['BlockStored', [big, small], 2n ** 60n, [1, 2, 3, 4, 5, 6, 7, 8], 4, null, 'GPU', null])
  assert.deepEqual(legacy[1][1], ['BlockRemoved', [big], 'GPU'])
  assert.deepEqual(legacy[1][2], ['AllBlocksCleared'])
})

test('eviction takes a freed request\'s tail blocks first, so its shared prefix survives', async () => {
  const engine = createMockEngine({ clock: 'virtual', blockSize: 4, numGpuBlocks: 6 })
  const hasher = new BlockHasher(4)
  const a = prompt(0, 16, 0, 1)
  await engine.generate({ promptTokens: a, maxTokens: 1, ignoreEos: true })
  const aHashes = hasher.sequenceHashes(a)
  assert.deepEqual([...engine.blocks.cachedHashes()].sort(), [...aHashes].sort())
  // B needs 4 blocks; 2 are free, so 2 of A's cached blocks are evicted: its last two.
  await engine.generate({ promptTokens: prompt(0, 16, 0, 2), maxTokens: 1, ignoreEos: true })
  const cached = engine.blocks.cachedHashes()
  assert.deepEqual(aHashes.map((h) => cached.has(h)), [true, true, false, false])
  const again = await engine.generate({ promptTokens: a, maxTokens: 1, ignoreEos: true })
  assert.equal(again.usage.cachedTokens, 8)
  await engine.close()
})
