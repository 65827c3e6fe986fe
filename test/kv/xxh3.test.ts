// The JavaScript XXH3 and the block keyer give exactly the values hash.ts computes natively.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { xxh3 } from '@node-rs/xxhash'
import fc from 'fast-check'
import { BlockHasher, BlockKeyer, BlockKeys, Xxh3, pairToBigInt } from '../../src/kv/index.js'

const u32 = fc.integer({ min: 0, max: 0xffffffff })

function jsHash (h: Xxh3, words: Uint32Array, start: number, count: number): bigint {
  const out = new Int32Array(2)
  h.hashWords(words, start, count, out, 0)
  return pairToBigInt(out[0]!, out[1]!)
}

test('XXH3-64 in JavaScript equals the native xxh3.xxh64 for every length class (4 B .. 4 KiB) and seeds', () => {
  // Lengths cover 4–8, 9–16, 17–128, 129–240, one long block, several 1 KiB blocks with scrambles.
  const lengths = fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 60, max: 1100 }))
  const seeds = fc.oneof(fc.constant(1337n), fc.constant(0n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }))
  fc.assert(fc.property(lengths, seeds, fc.integer({ min: 0, max: 3 }), u32, (n, seed, offset, fill) => {
    const words = new Uint32Array(n + offset)
    let x = fill
    for (let i = 0; i < words.length; i++) words[i] = x = (Math.imul(x, 0x9e3779b1) + i) >>> 0
    const native = xxh3.xxh64(new Uint8Array(words.buffer, offset * 4, n * 4), seed)
    assert.equal(jsHash(new Xxh3(seed), words, offset, n), native)
  }), { numRuns: 600, interruptAfterTimeLimit: 6000 })
})

test('extreme words (all zero, all ones) hash like the native function', () => {
  const h = new Xxh3(1337n)
  for (const n of [1, 2, 3, 4, 5, 16, 32, 33, 60, 61, 64, 256, 257, 1024]) {
    for (const fill of [0, 0xffffffff]) {
      const words = new Uint32Array(n).fill(fill)
      assert.equal(jsHash(h, words, 0, n), xxh3.xxh64(new Uint8Array(words.buffer), 1337n), `n=${n} fill=${fill}`)
    }
  }
})

test('block keys are hash.ts local hashes, and chain() is its sequence-hash step', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 70 }), fc.array(u32, { maxLength: 400 }), (bs, tokens) => {
    const hasher = new BlockHasher(bs)
    const keys = new BlockKeyer(bs).keys(tokens, new BlockKeys(1))
    assert.deepEqual(keys.toBigInts(), hasher.localHashes(tokens))
    // From a Uint32Array too (no copy path).
    assert.deepEqual(new BlockKeyer(bs).keys(Uint32Array.from(tokens), new BlockKeys()).toBigInts(), hasher.localHashes(tokens))
    const local = hasher.localHashes(tokens)
    const seq = hasher.sequenceHashes(tokens)
    const x = new Xxh3(1337n)
    const out = new Int32Array(2)
    for (let i = 1; i < seq.length; i++) {
      const p = new BlockKeys().fromBigInts([seq[i - 1]!, local[i]!]).data
      x.chain(p[0]!, p[1]!, p[2]!, p[3]!, out, 0)
      assert.equal(pairToBigInt(out[0]!, out[1]!), seq[i])
    }
  }), { numRuns: 200, interruptAfterTimeLimit: 5000 })
})

test('BlockKeys round-trips u64 values through int32 halves, including values ≥ 2^63', () => {
  const values = [0n, 1n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 1n << 53n, (1n << 63n) + 5n, (1n << 64n) - 1n]
  assert.deepEqual(new BlockKeys(1).fromBigInts(values).toBigInts(), values)
})
