// The KV index against a naive model: per worker, a map from engine hash to the block's path of
// keys from the root, an eviction order, and lookups by brute force over held paths.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { BlockKeys, KvIndex, OverlapScores } from '../../src/kv/index.js'

type Op =
  | { kind: 'store', worker: number, parent: number | null, blocks: Array<[number, number]> }
  | { kind: 'remove', worker: number, hashes: number[] }
  | { kind: 'clear', worker: number }
  | { kind: 'dropWorker', worker: number }
  | { kind: 'lookup', keys: number[] }

const DETACHED = null
// Keys from a small alphabet so prefixes are shared and branch; each key's halves differ in sign
// and size so both int32 halves are compared.
const KEY_HALVES: Array<[number, number]> = [[0, 1], [0, 2], [-1, 1], [0x7fffffff, -0x80000000], [0x12345678, 1]]
const WORKERS = ['a', 'b', 'c', 'd']

class ModelWorker {
  byHash = new Map<number, string | null>()
  order: number[] = [] // oldest first
}

class Model {
  workers = new Map<string, ModelWorker>()
  constructor (readonly max: number) {}

  w (id: string): ModelWorker {
    let w = this.workers.get(id)
    if (w === undefined) this.workers.set(id, w = new ModelWorker())
    return w
  }

  store (id: string, parent: number | null, blocks: Array<[number, number]>): void {
    const w = this.w(id)
    let path: string | null = ''
    if (parent !== null) path = w.byHash.has(parent) ? w.byHash.get(parent)! : DETACHED
    const placed: number[] = []
    // Blocks apply one by one: a hash repeated within the event names its last block.
    for (const [hash, key] of blocks) {
      if (path !== DETACHED) path = path + '/' + key
      w.byHash.set(hash, path)
      w.order = w.order.filter((h) => h !== hash)
      const at = placed.indexOf(hash)
      if (at >= 0 && at === placed.length - 1) continue
      if (at >= 0) placed.splice(at, 1)
      placed.push(hash)
    }
    w.order.push(...placed.reverse())
    while (w.order.length > this.max) w.byHash.delete(w.order.shift()!)
  }

  remove (id: string, hashes: number[]): void {
    const w = this.w(id)
    for (const h of hashes) {
      if (!w.byHash.delete(h)) continue
      w.order = w.order.filter((x) => x !== h)
    }
  }

  lookup (keys: number[]): Map<string, number> {
    const out = new Map<string, number>()
    for (const [id, w] of this.workers) {
      const held = new Set(w.byHash.values())
      let d = 0
      let path = ''
      while (d < keys.length) {
        path += '/' + keys[d]!
        if (!held.has(path)) break
        d++
      }
      if (d > 0) out.set(id, d)
    }
    return out
  }
}

const hashArb = fc.integer({ min: 0, max: 24 })
const keyArb = fc.integer({ min: 0, max: KEY_HALVES.length - 1 })
const workerArb = fc.integer({ min: 0, max: WORKERS.length - 1 })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('store' as const), worker: workerArb, parent: fc.option(hashArb, { freq: 2 }), blocks: fc.array(fc.tuple(hashArb, keyArb), { minLength: 1, maxLength: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), worker: workerArb, hashes: fc.array(hashArb, { maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const), worker: workerArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dropWorker' as const), worker: workerArb }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('lookup' as const), keys: fc.array(keyArb, { maxLength: 8 }) }) }
)

function engineHashOf (h: number): bigint {
  // Spread hashes over the whole u64 range, including values ≥ 2^63.
  return (BigInt(h) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn
}

function pairs (values: Array<[number, number]>): Int32Array {
  const a = new Int32Array(2 * values.length)
  values.forEach(([hi, lo], i) => { a[2 * i] = hi; a[2 * i + 1] = lo })
  return a
}

function engineArray (hashes: number[]): Int32Array {
  return new BlockKeys().fromBigInts(hashes.map(engineHashOf)).data.slice(0, 2 * hashes.length)
}

function run (ops: Op[], max: number): void {
  const index = new KvIndex({ blockSize: 4, maxBlocksPerWorker: max, initialNodes: 16 })
  const model = new Model(max)
  const scores = new OverlapScores(1)
  const keys = new BlockKeys(1)
  for (const op of ops) {
    switch (op.kind) {
      case 'store': {
        const id = WORKERS[op.worker]!
        const slot = index.addWorker(id)
        const parent = op.parent === null ? null : engineArray([op.parent])
        index.storeBlocks(slot, engineArray(op.blocks.map((b) => b[0])), pairs(op.blocks.map((b) => KEY_HALVES[b[1]]!)), op.blocks.length, parent)
        model.store(id, op.parent, op.blocks)
        break
      }
      case 'remove': {
        const slot = index.addWorker(WORKERS[op.worker]!)
        index.removeBlocks(slot, engineArray(op.hashes), op.hashes.length)
        model.remove(WORKERS[op.worker]!, op.hashes)
        break
      }
      case 'clear': {
        const slot = index.addWorker(WORKERS[op.worker]!)
        index.clearWorker(slot)
        model.workers.set(WORKERS[op.worker]!, new ModelWorker())
        break
      }
      case 'dropWorker':
        index.removeWorker(WORKERS[op.worker]!)
        model.workers.delete(WORKERS[op.worker]!)
        break
      case 'lookup': {
        keys.ensure(op.keys.length)
        op.keys.forEach((k, i) => { keys.data[2 * i] = KEY_HALVES[k]![0]; keys.data[2 * i + 1] = KEY_HALVES[k]![1] })
        keys.length = op.keys.length
        const longest = index.lookup(keys, scores)
        const want = model.lookup(op.keys)
        const got = new Map<string, number>()
        for (let i = 0; i < scores.size; i++) got.set(index.workerId(scores.slots[i]!)!, scores.counts[scores.slots[i]!]!)
        assert.deepEqual(got, want, `lookup ${JSON.stringify(op.keys)}`)
        assert.equal(longest, Math.max(0, ...want.values()))
        assert.equal(scores.longest, longest)
        break
      }
    }
    // Every worker's held hashes, in eviction order, match the model.
    for (const [id, w] of model.workers) {
      const slot = index.slotOf(id)
      if (slot < 0) {
        assert.equal(w.order.length, 0)
        continue
      }
      assert.deepEqual(index.engineHashes(slot), w.order.map(engineHashOf), `worker ${id} after ${op.kind}`)
      assert.equal(index.blockCount(slot), w.order.length)
    }
  }
  const total = [...model.workers.values()].reduce((n, w) => n + w.order.length, 0)
  assert.equal(index.totalBlocks, total)
  for (const id of WORKERS) index.removeWorker(id)
  assert.equal(index.nodeCount, 1, 'no tree node outlives the workers that held it')
  assert.equal(index.totalBlocks, 0)
}

test('index lookups, held blocks and eviction order match a naive model (random stores, removals, clears, worker removals)', () => {
  fc.assert(fc.property(fc.array(opArb, { maxLength: 60 }), fc.integer({ min: 1, max: 12 }), (ops, max) => run(ops, max)),
    { numRuns: 400, interruptAfterTimeLimit: 8000 })
})

test('index matches the model without a memory bound', () => {
  fc.assert(fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => run(ops, 1 << 20)),
    { numRuns: 300, interruptAfterTimeLimit: 5000 })
})

test('many workers: bitsets wider than one word', () => {
  const index = new KvIndex({ blockSize: 4 })
  const scores = new OverlapScores()
  const keys = new BlockKeys()
  const chain = pairs([[1, 1], [2, 2], [3, 3], [4, 4]])
  for (let i = 0; i < 100; i++) {
    const slot = index.addWorker(`w${i}`)
    const n = 1 + (i % 4)
    index.storeBlocks(slot, engineArray(Array.from({ length: n }, (_, k) => k)), chain, n, null)
  }
  keys.ensure(4)
  keys.data.set(chain)
  keys.length = 4
  assert.equal(index.lookup(keys, scores), 4)
  assert.equal(scores.size, 100)
  for (let i = 0; i < 100; i++) assert.equal(scores.get(index.slotOf(`w${i}`)), 1 + (i % 4))
  index.removeWorker('w3')
  index.lookup(keys, scores)
  assert.equal(scores.size, 99)
  assert.equal(scores.get(3), 0)
  // The freed slot is reused by the next worker, with no blocks.
  assert.equal(index.addWorker('new'), 3)
  index.lookup(keys, scores)
  assert.equal(scores.get(3), 0)
})
