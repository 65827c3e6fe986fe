import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { Registry } from '../../src/registry/registry.js'
import type { Worker } from '../../src/registry/worker.js'
import { SessionAffinity, type AffinityOptions } from '../../src/routing/affinity.js'
import { createBasePolicy, createPolicy } from '../../src/routing/index.js'
import type { KvPolicy } from '../../src/routing/kv.js'
import type { Policy, RouteRequest } from '../../src/routing/policy.js'

function setup (n: number, inner: Policy = createBasePolicy('round_robin'), opts: Partial<AffinityOptions> = {}): { ws: Worker[], registry: Registry, policy: SessionAffinity } {
  const registry = new Registry()
  const ws = Array.from({ length: n }, (_, i) => {
    const w = registry.add({ id: `w${i}`, url: `http://10.0.0.5:${i + 1}`, models: ['m'], labels: {}, apiKey: null, staticModels: true })
    registry.update(w, 'healthy')
    return w
  })
  const policy = new SessionAffinity(inner, opts)
  policy.setWorkers(ws)
  return { ws, registry, policy }
}

function req (session: string | null, over: Partial<RouteRequest> = {}): RouteRequest {
  return { model: 'm', text: null, tokens: null, headers: new Map(session === null ? [] : [['x-session-id', session]]), tokenEstimate: 10, excluded: null, policyPrefill: 0, policyBlocks: 0, ...over }
}

/** select + onRouted, as the frontend does. */
function route (p: Policy, ws: Worker[], r: RouteRequest): Worker {
  const w = p.select(ws, r)!
  p.onRouted?.(w, r)
  return w
}

test('a session keeps going to the worker that served it last while round robin rotates the others', () => {
  const { ws, policy } = setup(4)
  const first = route(policy, ws, req('s1'))
  for (let i = 0; i < 10; i++) {
    assert.equal(route(policy, ws, req('s1')), first)
    route(policy, ws, req(null))
  }
  assert.equal(policy.stats.hits, 10)
  assert.equal(policy.stats.withSession, 11)
})

test('requests without a session id, or with an absurdly long one, are the inner policy\'s alone', () => {
  const { ws, policy } = setup(3)
  const seen = new Set<string>()
  for (let i = 0; i < 6; i++) seen.add(route(policy, ws, req(null)).id)
  for (let i = 0; i < 6; i++) seen.add(route(policy, ws, req('x'.repeat(300))).id)
  assert.equal(seen.size, 3)
  assert.equal(policy.size, 0)
})

test('a session moves when its worker is excluded for this request (a retry), and then stays on the new one', () => {
  const { ws, policy } = setup(3)
  const first = route(policy, ws, req('s'))
  const moved = route(policy, ws, req('s', { excluded: [first] }))
  assert.notEqual(moved, first)
  assert.equal(route(policy, ws, req('s')), moved)
  assert.equal(policy.stats.missingWorker, 1)
})

test('a session moves when its worker becomes unhealthy or leaves the model', () => {
  const { ws, registry, policy } = setup(3)
  const first = route(policy, ws, req('s'))
  registry.update(first, 'unhealthy')
  const rest = ws.filter(w => w !== first)
  const second = route(policy, rest, req('s'))
  assert.notEqual(second, first)
  policy.setWorkers(ws.filter(w => w !== second))
  const third = route(policy, ws.filter(w => w !== second), req('s'))
  assert.notEqual(third, second)
})

test('a session moves when its worker is overloaded relative to the lightest (1.5x + 4 requests)', () => {
  const { ws, policy } = setup(2, createBasePolicy('power_of_two'))
  const first = route(policy, ws, req('s'))
  const other = ws.find(w => w !== first)!
  first.inflightRequests = 10
  other.inflightRequests = 4 // bound: 1.5 × 4 + 4 = 10: still at the bound, stays
  assert.equal(policy.select(ws, req('s')), first)
  first.inflightRequests = 11
  assert.equal(policy.select(ws, req('s')), other)
  assert.equal(policy.stats.overloaded, 1)
})

test('the session map is bounded: the least recently used session goes first', () => {
  const { ws, policy } = setup(4, createBasePolicy('round_robin'), { maxSessions: 2 })
  const a = route(policy, ws, req('a'))
  route(policy, ws, req('b'))
  route(policy, ws, req('a')) // a is now the most recent
  route(policy, ws, req('c')) // evicts b
  assert.equal(policy.size, 2)
  assert.equal(policy.stats.evicted, 1)
  assert.equal(policy.select(ws, req('a')), a)
  const hits = policy.stats.hits
  policy.select(ws, req('b'))
  assert.equal(policy.stats.hits, hits, 'b was forgotten')
})

test('a session not seen for the TTL is forgotten', async () => {
  const { ws, policy } = setup(4, createBasePolicy('round_robin'), { ttlMs: 5 })
  route(policy, ws, req('s'))
  await sleep(20)
  const hits = policy.stats.hits
  route(policy, ws, req('s'))
  assert.equal(policy.stats.hits, hits)
})

test('when affinity picks the worker, the kv policy still charges the request\'s load (assign)', () => {
  const registry = new Registry()
  const ws = [0, 1].map(i => { const w = registry.add({ id: `k${i}`, url: `http://10.0.0.6:${i + 1}`, models: ['m'], labels: {}, apiKey: null, staticModels: true }); registry.update(w, 'healthy'); return w })
  const policy = createPolicy('kv')
  policy.setWorkers(ws)
  const tokens = Uint32Array.from({ length: 256 }, (_, i) => 300 + i)
  const first = req('s', { tokens, tokenEstimate: 256 })
  route(policy, ws, first)
  const again = req('s', { tokens, tokenEstimate: 256 })
  route(policy, ws, again)
  assert.ok(again.policyBlocks > 0, 'decode blocks charged')
  assert.equal(again.policyPrefill, 0, 'the first request\'s blocks (recorded: no event source here) all count as cached')
  const kv = (policy as SessionAffinity).inner as KvPolicy
  assert.equal(kv.stats.decisions, 1, 'the first request: chosen by kv')
  assert.equal(kv.stats.assigned, 1, 'the second: placed by affinity, charged by kv')
})

test('createPolicy wraps every policy in session affinity unless told not to', () => {
  assert.ok(createPolicy('round_robin') instanceof SessionAffinity)
  assert.ok(!(createPolicy('round_robin', '', null, { affinity: false }) instanceof SessionAffinity))
  assert.equal(createPolicy('kv').name, 'kv')
  assert.equal(createPolicy('kv').needs, 'tokens')
})

test('--session-affinity false (and the default) reach the gateway\'s routers', async () => {
  const { startGateway } = await import('../fixtures/gateway.js')
  const { startUpstream } = await import('../fixtures/openai-upstream.js')
  const up = await startUpstream()
  const on = await startGateway(['--worker', `test-model=${up.url}`])
  const off = await startGateway(['--worker', `test-model=${up.url}`, '--session-affinity', 'false'])
  try {
    assert.ok(on.ctx.routers.get('test-model')!.policy instanceof SessionAffinity)
    assert.ok(!(off.ctx.routers.get('test-model')!.policy instanceof SessionAffinity))
  } finally {
    await on.close()
    await off.close()
    await up.close()
  }
})
