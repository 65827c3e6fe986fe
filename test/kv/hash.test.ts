import { test } from 'node:test'
import assert from 'node:assert/strict'
import { xxh3 } from '@node-rs/xxhash'
import fc from 'fast-check'
import { BlockHasher, KV_HASH_SEED } from '../../src/kv/hash.js'

// Independent reference: build the exact bytes DESIGN 4.3 describes and hash them directly.
function refLocal (tokens: number[]): bigint {
  const b = Buffer.alloc(tokens.length * 4)
  tokens.forEach((t, i) => b.writeUInt32LE(t, i * 4))
  return xxh3.xxh64(b, 1337n)
}

function refChain (parent: bigint, local: bigint): bigint {
  const b = Buffer.alloc(16)
  b.writeBigUInt64LE(parent, 0)
  b.writeBigUInt64LE(local, 8)
  return xxh3.xxh64(b, 1337n)
}

function refSequence (tokens: number[], bs: number): bigint[] {
  const out: bigint[] = []
  for (let i = 0; i + bs <= tokens.length; i += bs) {
    const local = refLocal(tokens.slice(i, i + bs))
    out.push(out.length === 0 ? local : refChain(out[out.length - 1]!, local))
  }
  return out
}

test('seed is 1337', () => {
  assert.equal(KV_HASH_SEED, 1337n)
})

test('local hash of a fixed block matches XXH3-64 over LE u32 bytes (known vector)', () => {
  const h = new BlockHasher(4)
  assert.equal(h.localHash([1, 2, 3, 4], 0), 14643705804678351452n)
  assert.equal(h.localHash(Uint32Array.of(9, 1, 2, 3, 4), 1), 14643705804678351452n)
})

test('sequence hashes chain parent and local hash as LE u64 pairs', () => {
  const tokens = Array.from({ length: 64 * 3 + 10 }, (_, i) => (i * 2654435761) >>> 0)
  const h = new BlockHasher(64)
  const got = h.sequenceHashes(Uint32Array.from(tokens))
  const want = refSequence(tokens, 64)
  assert.equal(got.length, 3, 'only full blocks are hashed')
  assert.deepEqual(got, want)
  assert.equal(got[0], refLocal(tokens.slice(0, 64)), 'seq[0] = local[0]')
  assert.notEqual(got[1], refLocal(tokens.slice(64, 128)), 'seq[1] depends on its parent')
  assert.deepEqual(h.localHashes(tokens), [0, 1, 2].map((b) => refLocal(tokens.slice(b * 64, b * 64 + 64))))
})

test('large token ids and hashes above 2^53 survive', () => {
  const tokens = [0xffffffff, 0, 0x80000000, 151645]
  const h = new BlockHasher(2)
  assert.deepEqual(h.sequenceHashes(tokens), refSequence(tokens, 2))
  assert.ok(h.sequenceHashes(tokens).some((x) => x >= 2n ** 53n), 'vector covers hashes beyond double precision')
})

test('extending a growing sequence gives the same hashes as hashing it whole', () => {
  fc.assert(fc.property(
    fc.array(fc.nat({ max: 200000 }), { maxLength: 300 }),
    fc.integer({ min: 1, max: 32 }),
    fc.nat({ max: 300 }),
    (tokens, bs, cut) => {
      const h = new BlockHasher(bs)
      const partial = h.extendSequenceHashes(tokens, Math.min(cut, tokens.length), [])
      const full = h.extendSequenceHashes(tokens, tokens.length, partial)
      assert.deepEqual(full, refSequence(tokens, bs))
    }
  ), { numRuns: 200 })
})

test('a different seed gives different hashes (adapters never match)', () => {
  const tokens = [5, 6, 7, 8]
  assert.notEqual(new BlockHasher(4, 7n).sequenceHashes(tokens)[0], new BlockHasher(4).sequenceHashes(tokens)[0])
})
