import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addLoad } from '../../src/registry/load.js'
import { Registry } from '../../src/registry/registry.js'
import type { Worker } from '../../src/registry/worker.js'
import { CacheAwarePolicy } from '../../src/routing/cache-aware.js'
import type { RouteRequest } from '../../src/routing/policy.js'
import { TextTree } from '../../src/routing/text-tree.js'

function workers (n: number): Worker[] {
  const r = new Registry()
  return Array.from({ length: n }, (_, i) => r.add({ id: `w${i}`, url: `http://10.0.0.1:${9000 + i}`, models: ['m'], labels: {}, apiKey: null, staticModels: true }))
}

const req = (text: string): RouteRequest => ({ model: 'm', text, tokens: null, headers: new Map(), tokenEstimate: 1, excluded: null, policyPrefill: 0, policyBlocks: 0 })

test('cache_aware sends a repeated prefix to the worker that holds it', () => {
  const ws = workers(4)
  const p = new CacheAwarePolicy()
  p.setWorkers(ws)
  const system = 'You are a helpful assistant. '.repeat(20)
  const first = p.select(ws, req(system + 'question one'))!
  for (let i = 0; i < 20; i++) assert.equal(p.select(ws, req(system + `question ${i}`)), first)
  p.close()
})

test('cache_aware spreads distinct prompts over the least loaded workers (ties at random)', () => {
  const ws = workers(4)
  const p = new CacheAwarePolicy()
  p.setWorkers(ws)
  const seen = new Set<string>()
  for (let i = 0; i < 40; i++) {
    const w = p.select(ws, req(`${i} unrelated prompt ${'x'.repeat(i)}`))!
    seen.add(w.id)
  }
  assert.equal(seen.size, 4, 'with equal load, new prefixes did not spread')
  p.close()
})

test('cache_aware falls back to the least loaded worker when load is imbalanced', () => {
  const ws = workers(3)
  const p = new CacheAwarePolicy()
  p.setWorkers(ws)
  const text = 'shared prefix '.repeat(30)
  const owner = p.select(ws, req(text))!
  for (let i = 0; i < 200; i++) addLoad(owner, 1)
  const other = ws.find(w => w !== owner)!
  for (let i = 0; i < 10; i++) addLoad(other, 1)
  const third = ws.find(w => w !== owner && w !== other)!
  // max - min = 200 > 64 and 200 > 1.5 x 0: imbalanced, so the owner's cache is ignored.
  assert.equal(p.select(ws, req(text)), third)
  p.close()
})

test('text tree: match finds the longest shared prefix and its tenants; split edges keep owners', () => {
  const ws = workers(2)
  const t = new TextTree()
  t.insert('hello world', ws[0]!, 1)
  t.insert('hello there', ws[1]!, 2)
  const m = t.match('hello wor')
  assert.equal(m.chars, 9)
  assert.deepEqual([...m.tenants!.keys()], [ws[0]])
  const shared = t.match('hello x')
  assert.equal(shared.chars, 6)
  assert.deepEqual(new Set(shared.tenants!.keys()), new Set(ws))
  assert.equal(t.tenantChars.get(ws[0]!), 11)
  assert.equal(t.tenantChars.get(ws[1]!), 11)
  assert.equal(t.size(), 'hello '.length + 'world'.length + 'there'.length)
})

test('text tree: pruning evicts least recently used tails first and keeps shared prefixes', () => {
  const [w] = workers(1)
  const t = new TextTree()
  t.insert('common prefix / old tail', w!, 1)
  t.insert('common prefix / new tail', w!, 2)
  t.prune('common prefix / new tail'.length)
  assert.equal(t.match('common prefix / new tail').chars, 'common prefix / new tail'.length)
  assert.equal(t.match('common prefix / old tail').chars, 'common prefix / '.length)
  assert.ok(t.tenantChars.get(w!)! <= 'common prefix / new tail'.length)
})

test('a worker that leaves the model is forgotten by the tree', () => {
  const ws = workers(2)
  const p = new CacheAwarePolicy()
  p.setWorkers(ws)
  const text = 'long shared system prompt '.repeat(10)
  const owner = p.select(ws, req(text))!
  const rest = ws.filter(w => w !== owner)
  p.setWorkers(rest)
  assert.equal(p.tree.tenantChars.has(owner), false)
  assert.equal(p.select(rest, req(text)), rest[0])
  p.close()
})
