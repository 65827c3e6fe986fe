import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BlockKeyer, BlockKeys, KvIndex } from '../../src/kv/index.js'
import { Registry } from '../../src/registry/registry.js'
import type { Worker } from '../../src/registry/worker.js'
import { KvPolicy } from '../../src/routing/kv.js'
import type { RouteRequest } from '../../src/routing/policy.js'

const BS = 4

function setup (n: number): { ws: Worker[], index: KvIndex, policy: KvPolicy } {
  const r = new Registry()
  const ws = Array.from({ length: n }, (_, i) => r.add({ id: `w${i}`, url: `http://10.0.0.2:${i + 1}`, models: ['m'], labels: {}, apiKey: null, staticModels: true }))
  const index = new KvIndex({ blockSize: BS })
  // Every worker has an event source here: nothing is recorded approximately.
  const policy = new KvPolicy('kv', index, { hasEvents: () => true })
  policy.setWorkers(ws)
  return { ws, index, policy }
}

/** Stores the full blocks of `tokens` for worker `id`, as a BlockStored event would. */
function store (index: KvIndex, id: string, tokens: number[]): void {
  const keys = new BlockKeyer(BS).keys(Uint32Array.from(tokens), new BlockKeys())
  const engine = keys.data.slice(0, 2 * keys.length).map((v, i) => v ^ (i * 7919))
  index.storeBlocks(index.addWorker(id), engine, keys.data, keys.length, null)
}

const req = (tokens: number[]): RouteRequest => ({ model: 'm', text: null, tokens: Uint32Array.from(tokens), headers: new Map(), tokenEstimate: tokens.length, excluded: null, policyPrefill: 0, policyBlocks: 0 })
const prompt = Array.from({ length: 32 }, (_, i) => 100 + i)

test('kv picks the worker holding the longest prefix when load is equal, and charges it only the uncached part', () => {
  const { ws, index, policy } = setup(3)
  store(index, 'w1', prompt.slice(0, 16))
  store(index, 'w2', prompt.slice(0, 8))
  const r = req(prompt)
  assert.equal(policy.select(ws, r), ws[1])
  assert.equal(r.policyPrefill, 32 - 16, 'prefill charge = ISL - overlap x block size')
  assert.equal(r.policyBlocks, 8 - 4 + 1)
})

test('kv: enough prefill in flight on the cache holder sends the request elsewhere (cost terms)', () => {
  const { ws, index, policy } = setup(2)
  store(index, 'w0', prompt.slice(0, 16))
  // Load w0 with in-flight prefill: cost(w0) = (P + 16)/4 + 4 + ...; cost(w1) = 32/4 + 8.
  for (let i = 0; i < 3; i++) {
    const other = req(Array.from({ length: 32 }, (_, k) => 5000 + 100 * i + k))
    policy.onRouted(ws[0]!, Object.assign(other, { policyPrefill: 32, policyBlocks: 8 }))
  }
  assert.equal(policy.select(ws, req(prompt)), ws[1])
})

test('kv releases prefill load at the first token and decode load at the end', () => {
  const { ws, index, policy } = setup(2)
  store(index, 'w0', prompt.slice(0, 16))
  const a = req(Array.from({ length: 64 }, (_, k) => 9000 + k))
  const wa = policy.select(ws, a)!
  policy.onRouted(wa, a)
  policy.onFirstToken(wa, a)
  policy.onFinished(wa, a)
  // With all load released, the cache holder wins again.
  assert.equal(policy.select(ws, req(prompt)), ws[0])
})

test('kv breaks ties at random, not by position', () => {
  const { ws, policy } = setup(4)
  const seen = new Set<string>()
  for (let i = 0; i < 200; i++) seen.add(policy.select(ws, req(prompt))!.id)
  assert.equal(seen.size, 4)
})

test('kv with temperature samples: lower cost is picked more often, but not always', () => {
  const r = new Registry()
  const ws = Array.from({ length: 2 }, (_, i) => r.add({ id: `w${i}`, url: `http://10.0.0.3:${i + 1}`, models: ['m'], labels: {}, apiKey: null, staticModels: true }))
  const index = new KvIndex({ blockSize: BS })
  store(index, 'w0', prompt.slice(0, 24))
  const policy = new KvPolicy('kv', index, { hasEvents: () => true }, { temperature: 0.5 })
  policy.setWorkers(ws)
  let w0 = 0
  for (let i = 0; i < 1000; i++) if (policy.select(ws, req(prompt)) === ws[0]) w0++
  assert.ok(w0 > 600 && w0 < 1000, `w0 picked ${w0} of 1000`)
})
