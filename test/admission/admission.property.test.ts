import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Admission, type AdmissionOptions, type AdmitRequest } from '../../src/admission/admission.js'
import { DEFAULT_SCHEDULER } from '../../src/admission/scheduler.js'
import { Registry } from '../../src/registry/registry.js'
import { RouterManager } from '../../src/registry/router-manager.js'
import type { Worker } from '../../src/registry/worker.js'
import { createPolicy, type RoutingPolicyName } from '../../src/routing/index.js'
import type { Policy, RouteRequest } from '../../src/routing/policy.js'
import { SwitchyardError } from '../../src/shared/errors.js'

const OPTS: AdmissionOptions = { ...DEFAULT_SCHEDULER, maxQueuedRequests: 20, maxQueuedTokens: 20_000, queueTimeoutMs: 60_000, maxRequeues: 3, sseKeepaliveMs: 0, quantum: 500 }

function setup (windows: Array<{ requests: number, tokens: number }>, policy: RoutingPolicyName, opts: Partial<AdmissionOptions> = {}): { admission: Admission, workers: Worker[], close: () => void } {
  const registry = new Registry()
  const routers = new RouterManager<Policy>(registry, () => createPolicy(policy))
  const admission = new Admission(routers, registry, { ...OPTS, ...opts })
  const workers = windows.map((w, i) => {
    const worker = registry.add({ id: `w${i}`, url: `http://10.0.0.1:${8000 + i}`, models: ['m'], labels: {}, apiKey: null, staticModels: true })
    worker.maxInflightRequests = w.requests
    worker.maxInflightTokens = w.tokens
    registry.update(worker, 'healthy')
    return worker
  })
  return { admission, workers, close: () => { admission.close(); routers.close() } }
}

function admit (tokens: number, cls: number, arrival: number): AdmitRequest {
  const route: RouteRequest = { model: 'm', text: null, tokens: null, headers: new Map(), tokenEstimate: tokens, excluded: null, policyPrefill: 0, policyBlocks: 0 }
  return { model: 'm', route, cls, lane: 0, arrival, keepalive: null, inflight: { exchange: null } }
}

const arbOp = fc.oneof(
  fc.record({ kind: fc.constant('arrive' as const), tokens: fc.integer({ min: 1, max: 1500 }), cls: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('finish' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('disconnect' as const), pick: fc.nat() })
)

test('property: windows and queue caps are never exceeded; every admitted request is dispatched, refused or removed; no load is left behind', async () => {
  await fc.assert(fc.asyncProperty(
    fc.array(fc.record({ requests: fc.integer({ min: 1, max: 4 }), tokens: fc.integer({ min: 1500, max: 5000 }) }), { minLength: 1, maxLength: 4 }),
    fc.constantFrom<RoutingPolicyName>('round_robin', 'least_load', 'power_of_two', 'random'),
    fc.array(arbOp, { minLength: 1, maxLength: 120 }),
    async (windows, policy, ops) => {
      const { admission, workers, close } = setup(windows, policy)
      const running: Array<{ worker: Worker, a: AdmitRequest }> = []
      const waiting: Array<{ a: AdmitRequest, settled: boolean }> = []
      const check = (): void => {
        for (const w of workers) {
          assert.ok(w.inflightRequests <= w.maxInflightRequests, `${w.id}: ${w.inflightRequests} requests in a window of ${w.maxInflightRequests}`)
          assert.ok(w.inflightTokens <= w.maxInflightTokens, `${w.id}: ${w.inflightTokens} tokens in a window of ${w.maxInflightTokens}`)
        }
        const depth = [...admission.schedulers().values()].reduce((a, s) => a + s.size, 0)
        const tokens = [...admission.schedulers().values()].reduce((a, s) => a + s.tokens, 0)
        assert.ok(depth <= OPTS.maxQueuedRequests && tokens <= OPTS.maxQueuedTokens)
      }
      try {
        let t = 0
        for (const op of ops) {
          if (op.kind === 'arrive') {
            const a = admit(op.tokens, op.cls, t++)
            let got: ReturnType<Admission['acquire']>
            try {
              got = admission.acquire(a)
            } catch (err) {
              assert.ok(err instanceof SwitchyardError && (err.apiCode === 'queue_full' || err.apiCode === 'context_length_exceeded'), String(err))
              continue
            }
            assert.ok(got !== null)
            if (got instanceof Promise) {
              const entry = { a, settled: false }
              waiting.push(entry)
              got.then((worker) => { entry.settled = true; running.push({ worker, a }) }, () => { entry.settled = true })
            } else running.push({ worker: got, a })
          } else if (op.kind === 'finish' && running.length > 0) {
            const [r] = running.splice(op.pick % running.length, 1)
            admission.release(r!.worker, r!.a.route, null)
          } else if (op.kind === 'disconnect') {
            const live = waiting.filter(w => !w.settled)
            if (live.length > 0) live[op.pick % live.length]!.a.inflight.exchange?.abort(new Error('gone'))
          }
          await Promise.resolve()
          check()
        }
        // Drain: finish everything; every waiter must be dispatched in turn.
        for (let guard = 0; guard < 10_000 && (running.length > 0 || waiting.some(w => !w.settled)); guard++) {
          const r = running.shift()
          if (r !== undefined) admission.release(r.worker, r.a.route, null)
          await new Promise(resolve => setImmediate(resolve))
          check()
        }
        assert.equal(admission.size, 0, 'nothing is left waiting once the windows free')
        for (const w of workers) assert.deepEqual([w.inflightRequests, w.inflightTokens], [0, 0])
      } finally {
        close()
      }
    }), { numRuns: 150 })
})

test('a flood beyond the caps is refused with 429 and the queue stays at its cap', () => {
  const { admission, close } = setup([{ requests: 1, tokens: 10_000 }], 'round_robin')
  try {
    let refused = 0
    let queued = 0
    for (let i = 0; i < 10_000; i++) {
      try {
        const got = admission.acquire(admit(100, i % 3, i))
        if (got instanceof Promise) { queued++; got.catch(() => {}) }
      } catch (err) {
        assert.equal((err as SwitchyardError).apiCode, 'queue_full')
        assert.ok(((err as SwitchyardError).retryAfter ?? 0) >= 1)
        refused++
      }
    }
    assert.equal(queued, OPTS.maxQueuedRequests)
    assert.equal(refused, 10_000 - 1 - OPTS.maxQueuedRequests)
    assert.equal(admission.size, OPTS.maxQueuedRequests)
  } finally {
    close()
  }
})
