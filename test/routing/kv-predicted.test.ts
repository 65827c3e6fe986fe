import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { POLICY_NAMES } from '../../src/config/settings.js'
import { BlockKeyer, BlockKeys, KvIndex } from '../../src/kv/index.js'
import { Registry } from '../../src/registry/registry.js'
import type { Worker } from '../../src/registry/worker.js'
import { ROUTING_POLICY_NAMES } from '../../src/routing/index.js'
import { KV_POLICY_DEFAULTS, KvPolicy, prefillMs, type KvPolicyOptions } from '../../src/routing/kv.js'
import type { RouteRequest } from '../../src/routing/policy.js'

const BS = 4
// 1 ms per prefill token and 1 ms per decode pass: costs are easy to add up by hand.
const LINEAR: Partial<KvPolicyOptions> = { costModel: 'predicted', prefillFit: [0, 1, 0], decodeFit: [0, 0, 0], maxBatchedTokens: 1_000_000, boundedLoad: 0 }

function setup (n: number, opts: Partial<KvPolicyOptions> = LINEAR): { ws: Worker[], index: KvIndex, policy: KvPolicy } {
  const r = new Registry()
  const ws = Array.from({ length: n }, (_, i) => r.add({ id: `w${i}`, url: `http://10.0.0.4:${i + 1}`, models: ['m'], labels: {}, apiKey: null, staticModels: true }))
  const index = new KvIndex({ blockSize: BS })
  const policy = new KvPolicy('kv', index, { hasEvents: () => true }, opts)
  policy.setWorkers(ws)
  return { ws, index, policy }
}

function store (index: KvIndex, id: string, tokens: number[]): void {
  const keys = new BlockKeyer(BS).keys(Uint32Array.from(tokens), new BlockKeys())
  const engine = keys.data.slice(0, 2 * keys.length).map((v, i) => v ^ (i * 7919))
  index.storeBlocks(index.addWorker(id), engine, keys.data, keys.length, null)
}

const req = (tokens: number[]): RouteRequest => ({ model: 'm', text: null, tokens: Uint32Array.from(tokens), headers: new Map(), tokenEstimate: tokens.length, excluded: null, policyPrefill: 0, policyBlocks: 0 })
const prompt = Array.from({ length: 32 }, (_, i) => 100 + i)
const other = (k: number, len = 32): number[] => Array.from({ length: len }, (_, i) => 7000 + 100 * k + i)

test('every configurable policy name is one routing knows', () => {
  for (const n of POLICY_NAMES) assert.ok((ROUTING_POLICY_NAMES as readonly string[]).includes(n), n)
})

test('prefill time is charged per pass of the token budget, not per request (requests share a pass)', () => {
  const o: KvPolicyOptions = { ...KV_POLICY_DEFAULTS, maxBatchedTokens: 100, prefillFit: [0, 1, 10] }
  assert.equal(prefillMs(o, 0), 0)
  assert.equal(prefillMs(o, 50), 60)
  assert.equal(prefillMs(o, 100), 110)
  assert.equal(prefillMs(o, 250), 110 + 110 + 60)
})

test('predicted kv sends a request to its cache when the workers are idle, and charges only the uncached part', () => {
  const { ws, index, policy } = setup(3)
  store(index, 'w2', prompt.slice(0, 16))
  const r = req(prompt)
  assert.equal(policy.select(ws, r), ws[2])
  assert.equal(r.policyPrefill, 16)
  assert.equal(policy.stats.lastPredictedMs, 16, 'TTFT = 16 uncached tokens at 1 ms each')
  assert.equal(policy.stats.lastPredictedHitRatio, 0.5)
  assert.equal(policy.stats.decisions, 1)
})

test('predicted kv: queued prefill on the cache holder outweighs the hit once waiting costs more than recomputing', () => {
  const { ws, index, policy } = setup(2)
  store(index, 'w0', prompt.slice(0, 16))
  // 10 tokens queued on w0: 10 + 16 + 1 decode pass = 27 < 32 on the idle w1.
  const a = Object.assign(req(other(1, 10)), { policyPrefill: 10, policyBlocks: 3 })
  policy.onRouted(ws[0]!, a)
  assert.equal(policy.select(ws, req(prompt)), ws[0])
  // 10 more: 20 + 16 + 1 = 37 > 32.
  const b = Object.assign(req(other(2, 10)), { policyPrefill: 10, policyBlocks: 3 })
  policy.onRouted(ws[0]!, b)
  assert.equal(policy.select(ws, req(prompt)), ws[1])
  // Their first tokens arrive: nothing is queued any more and the holder wins again.
  policy.onFirstToken(ws[0]!, a)
  policy.onFirstToken(ws[0]!, b)
  assert.equal(policy.select(ws, req(prompt)), ws[0])
})

test('predicted kv: a worker decoding long contexts is not shunned as Dynamo\'s decode-block term shuns it', () => {
  const dyn = setup(2, { costModel: 'dynamo' })
  const pred = setup(2)
  for (const { ws, index, policy } of [dyn, pred]) {
    store(index, 'w0', prompt.slice(0, 28))
    // w0 decodes a long context (prefill done): 400 blocks active.
    const long = Object.assign(req(other(3, 1600)), { policyPrefill: 0, policyBlocks: 400 })
    policy.onRouted(ws[0]!, long)
  }
  assert.equal(dyn.policy.select(dyn.ws, req(prompt)), dyn.ws[1], 'Dynamo: 400 decode blocks outweigh a 28-token hit')
  assert.equal(pred.policy.select(pred.ws, req(prompt)), pred.ws[0], 'predicted: 4 tokens + one decode pass beat 32 tokens')
})

test('predicted kv: queued prefill decays with time, at a rate calibrated from measured TTFTs', async () => {
  // One full pass = 100 tokens in 1 ms (model): 1000 queued tokens drain in ~10 ms at scale 1.
  const { ws, policy } = setup(2, { ...LINEAR, maxBatchedTokens: 100, prefillFit: [0, 0.01, 0] })
  const a = Object.assign(req(other(4, 1000)), { policyPrefill: 1000, policyBlocks: 250 })
  policy.onRouted(ws[0]!, a)
  const now = performance.now()
  const busy = policy.predictedCost(ws[0]!, 100, 25, now)
  const idle = policy.predictedCost(ws[1]!, 100, 25, now)
  assert.ok(busy > idle + 9, `queued work counts at first (${busy} vs ${idle})`)
  await sleep(40)
  const later = policy.predictedCost(ws[0]!, 100, 25, performance.now())
  assert.ok(later <= idle + 10 * 1 + 1e-9, `drained after 40 ms: ${later} vs idle ${idle} (+ decode passes)`)
})

test('predicted kv: another gateway\'s prefill (replica sync) joins the backlog and decays like our own', async () => {
  const { ws, policy } = setup(2, { ...LINEAR, maxBatchedTokens: 100, prefillFit: [0, 0.01, 0] })
  const now = performance.now()
  const idle = policy.predictedCost(ws[1]!, 100, 25, now)
  ws[0]!.remotePrefillTokens = 1000
  ws[0]!.remoteDecodeBlocks = 250
  const busy = policy.predictedCost(ws[0]!, 100, 25, now)
  assert.ok(busy > idle + 9, `remote queued work counts at first (${busy} vs ${idle})`)
  await sleep(40)
  const later = policy.predictedCost(ws[0]!, 100, 25, performance.now())
  assert.ok(later < busy - 9, `it drains with time although the remote gateway has not reported a first token yet (${later} vs ${busy})`)
  ws[0]!.remotePrefillTokens = 0
  ws[0]!.remoteDecodeBlocks = 0
  assert.ok(policy.predictedCost(ws[0]!, 100, 25, performance.now()) <= idle + 1e-9, 'nothing left once the remote requests end')
})

test('predicted kv calibrates its time scale from the first token (measured / predicted)', async () => {
  const { ws, policy } = setup(1)
  const r = req(prompt)
  const w = policy.select(ws, r)!
  policy.onRouted(w, r)
  await sleep(64)
  policy.onFirstToken(w, r)
  assert.equal(policy.stats.calibrations, 1)
  // Predicted 32 ms, measured ≥ 64 ms: the scale is about 2 or more.
  assert.ok(policy.stats.timeScale >= 1.9, `timeScale ${policy.stats.timeScale}`)
})

test('bounded load: the cache holder is skipped when it carries far more requests than the mean', () => {
  const guarded = setup(4, { ...LINEAR, boundedLoad: 1 })
  const open = setup(4)
  for (const { ws, index } of [guarded, open]) {
    store(index, 'w0', prompt.slice(0, 28))
    ws[0]!.inflightRequests = 12 // bound = 2 × (12 + 1) / 4 + 1 = 7.5
  }
  const g = guarded.policy.select(guarded.ws, req(prompt))
  assert.notEqual(g, guarded.ws[0])
  assert.equal(guarded.policy.stats.guarded, 1)
  assert.equal(open.policy.select(open.ws, req(prompt)), open.ws[0], 'without the guard the hit wins')
})

test('bounded load: when every worker is over the bound the cheapest still gets the request', () => {
  const { ws, policy } = setup(2, { ...LINEAR, boundedLoad: 0.1 })
  for (const w of ws) w.inflightRequests = 50
  ws[1]!.inflightRequests = 60
  assert.ok(policy.select(ws, req(prompt)) !== null)
})

test('predicted kv breaks ties at random, not by position', () => {
  const { ws, policy } = setup(4)
  const seen = new Set<string>()
  for (let i = 0; i < 200; i++) seen.add(policy.select(ws, req(prompt))!.id)
  assert.equal(seen.size, 4)
})

test('predicted kv with temperature samples: the cheaper worker more often, but not always', () => {
  const { ws, index, policy } = setup(2, { ...LINEAR, temperature: 0.5 })
  store(index, 'w0', prompt.slice(0, 24))
  let w0 = 0
  for (let i = 0; i < 1000; i++) if (policy.select(ws, req(prompt)) === ws[0]) w0++
  assert.ok(w0 > 600 && w0 < 1000, `w0 picked ${w0} of 1000`)
})

test('decision stats split hash, lookup and select time and add up over decisions', () => {
  const { ws, policy } = setup(2)
  for (let i = 0; i < 5; i++) policy.select(ws, req(other(i, 64)))
  const s = policy.stats
  assert.equal(s.decisions, 5)
  assert.equal(s.promptBlocks, 5 * 16)
  for (const k of ['hashUs', 'lookupUs', 'selectUs'] as const) assert.ok(s[k] >= 0 && Number.isFinite(s[k]), k)
  assert.ok(s.lastSelectUs >= 0)
})
