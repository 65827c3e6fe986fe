import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { addLoad, removeLoad } from '../../src/registry/load.js'
import { Registry } from '../../src/registry/registry.js'
import { RouterManager } from '../../src/registry/router-manager.js'
import type { Worker } from '../../src/registry/worker.js'
import { createPolicy, ROUTING_POLICY_NAMES, type RoutingPolicyName } from '../../src/routing/index.js'
import type { Policy, RouteRequest } from '../../src/routing/policy.js'

function fleet (n: number, policy: Policy['name'], model = 'm'): { registry: Registry, routers: RouterManager<Policy> } {
  const registry = new Registry()
  const routers = new RouterManager<Policy>(registry, () => createPolicy(policy as RoutingPolicyName))
  for (let i = 0; i < n; i++) {
    const w = registry.add({ id: `w${i}`, url: `http://10.0.0.1:${8000 + i}`, models: [model], labels: {}, apiKey: null, staticModels: true })
    registry.update(w, 'healthy')
  }
  return { registry, routers }
}

function req (over: Partial<RouteRequest> = {}): RouteRequest {
  return { model: 'm', text: null, tokens: null, headers: new Map(), tokenEstimate: 10, excluded: null, policyPrefill: 0, policyBlocks: 0, ...over }
}

function pick (routers: RouterManager<Policy>, r: RouteRequest = req()): Worker | null {
  const router = routers.get('m')!
  return router.policy.select(router.workers, r)
}

// The conformance suite: every policy, including the ones later issues add, must pass it.
for (const name of ROUTING_POLICY_NAMES) {
  describe(`policy ${name} (shared suite)`, () => {
    test('returns null when the model has no worker', () => {
      const policy = createPolicy(name)
      policy.setWorkers([])
      assert.equal(policy.select([], req()), null)
    })

    test('returns the only worker', () => {
      const { routers, registry } = fleet(1, name)
      assert.equal(pick(routers)?.id, 'w0')
      assert.equal(registry.snapshot.workers.length, 1)
    })

    test('only ever returns one of the current workers', () => {
      const { routers } = fleet(5, name)
      const ids = new Set(routers.get('m')!.workers.map(w => w.id))
      for (let i = 0; i < 200; i++) assert.ok(ids.has(pick(routers)!.id))
    })

    test('never returns an excluded worker, and null when all are excluded', () => {
      const { routers } = fleet(4, name)
      const ws = [...routers.get('m')!.workers]
      for (let i = 0; i < 100; i++) {
        const w = pick(routers, req({ excluded: [ws[0]!, ws[2]!] }))!
        assert.ok(w.id === 'w1' || w.id === 'w3', `picked excluded ${w.id}`)
      }
      assert.equal(pick(routers, req({ excluded: ws })), null)
    })

    test('follows registry changes: a removed worker is never picked, an added one is', () => {
      const { routers, registry } = fleet(3, name)
      void registry.remove('w1')
      for (let i = 0; i < 100; i++) assert.notEqual(pick(routers)!.id, 'w1')
      const w = registry.add({ id: 'w9', url: 'http://10.0.0.9:1', models: ['m'], labels: {}, apiKey: null, staticModels: true })
      registry.update(w, 'healthy')
      const seen = new Set<string>()
      for (let i = 0; i < 300; i++) {
        const p = pick(routers)!
        seen.add(p.id)
        // Load-aware policies spread only when load moves, as it does in real traffic.
        addLoad(p, 1)
      }
      assert.ok(seen.has('w9'), `the added worker was never picked by ${name}`)
    })

    test('spreads load over all workers under sustained traffic', () => {
      const { routers } = fleet(4, name)
      const counts = new Map<string, number>()
      const open: Worker[] = []
      for (let i = 0; i < 4000; i++) {
        const w = pick(routers)!
        counts.set(w.id, (counts.get(w.id) ?? 0) + 1)
        addLoad(w, 10)
        open.push(w)
        if (open.length > 8) removeLoad(open.shift()!, 10)
      }
      for (const [id, c] of counts) assert.ok(c > 4000 / 4 * 0.7, `${id} got only ${c} of 4000`)
      assert.equal(counts.size, 4)
    })
  })
}

describe('policy distribution properties', () => {
  test('round robin rotates exactly', () => {
    const { routers } = fleet(4, 'round_robin')
    const seq = Array.from({ length: 12 }, () => pick(routers)!.id)
    assert.deepEqual(seq, ['w0', 'w1', 'w2', 'w3', 'w0', 'w1', 'w2', 'w3', 'w0', 'w1', 'w2', 'w3'])
  })

  test('power of two never picks the busier of its pair', () => {
    const { routers } = fleet(6, 'power_of_two')
    const ws = routers.get('m')!.workers
    ws.forEach((w, i) => { for (let k = 0; k < i * 3; k++) addLoad(w, 1) })
    // With six workers whose loads all differ, the busiest can never win a pair and the
    // lightest wins every pair it is in: it must get about 2/6 of the picks.
    const counts = new Map<string, number>()
    for (let i = 0; i < 6000; i++) { const w = pick(routers)!; counts.set(w.id, (counts.get(w.id) ?? 0) + 1) }
    assert.equal(counts.get('w5') ?? 0, 0)
    const lightest = counts.get('w0') ?? 0
    assert.ok(lightest > 6000 * 2 / 6 * 0.85 && lightest < 6000 * 2 / 6 * 1.15, `lightest got ${lightest}`)
  })

  test('least load picks the exact minimum by requests, then tokens, as load moves', () => {
    const { routers } = fleet(5, 'least_load')
    const ws = routers.get('m')!.workers
    addLoad(ws[0]!, 1); addLoad(ws[1]!, 1); addLoad(ws[2]!, 5); addLoad(ws[3]!, 1); addLoad(ws[4]!, 2)
    addLoad(ws[0]!, 1); addLoad(ws[1]!, 1); addLoad(ws[3]!, 1)
    // requests: w0 2, w1 2, w2 1(5 tok), w3 2, w4 1(2 tok) -> w4
    assert.equal(pick(routers)!.id, 'w4')
    addLoad(ws[4]!, 1)
    assert.equal(pick(routers)!.id, 'w2')
    removeLoad(ws[0]!, 1); removeLoad(ws[0]!, 1)
    assert.equal(pick(routers)!.id, 'w0')
    // Random walk against a scan: the heap must always agree with the exact minimum.
    for (let i = 0; i < 2000; i++) {
      const w = ws[Math.floor(Math.random() * ws.length)]!
      if (w.inflightRequests > 0 && Math.random() < 0.5) removeLoad(w, 1)
      else addLoad(w, 1 + Math.floor(Math.random() * 3))
      const got = pick(routers)!
      const min = ws.reduce((a, b) => (b.inflightRequests < a.inflightRequests || (b.inflightRequests === a.inflightRequests && b.inflightTokens < a.inflightTokens)) ? b : a)
      assert.equal(got.inflightRequests, min.inflightRequests)
      assert.equal(got.inflightTokens, min.inflightTokens)
    }
  })
})
