import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { BlockManager } from '../../src/mocker/block-manager.js'
import { KvEventCollector } from '../../src/mocker/kv-events.js'
import { buildOutputVocab } from '../../src/mocker/output-vocab.js'
import { EngineRequest, RequestState } from '../../src/mocker/request.js'
import type { FinishReason, RequestSink } from '../../src/mocker/request.js'
import { PassPlan, Scheduler } from '../../src/mocker/scheduler.js'
import { builtinTokenizer } from '../../src/tokenize/index.js'

const vocab = buildOutputVocab(builtinTokenizer())

class CountingSink implements RequestSink {
  tokens = new Map<string, number>()
  finishes = new Map<string, FinishReason[]>()
  onToken (req: EngineRequest): void {
    this.tokens.set(req.id, (this.tokens.get(req.id) ?? 0) + 1)
  }

  onFinish (req: EngineRequest, reason: FinishReason): void {
    const list = this.finishes.get(req.id) ?? []
    list.push(reason)
    this.finishes.set(req.id, list)
  }
}

const configArb = fc.record({
  blockSize: fc.integer({ min: 1, max: 16 }),
  numBlocks: fc.integer({ min: 4, max: 48 }),
  maxNumSeqs: fc.integer({ min: 1, max: 8 }),
  budget: fc.integer({ min: 1, max: 96 }),
  eosProbability: fc.constantFrom(0, 0.05)
})

const requestArb = fc.record({
  arrivalPass: fc.nat({ max: 30 }),
  group: fc.nat({ max: 3 }),
  sharedLen: fc.nat({ max: 80 }),
  ownLen: fc.integer({ min: 1, max: 60 }),
  maxTokens: fc.integer({ min: 1, max: 24 }),
  ignoreEos: fc.boolean(),
  priority: fc.nat({ max: 2 }),
  cancelAtPass: fc.option(fc.nat({ max: 60 }), { freq: 4 })
})

type Cfg = { blockSize: number, numBlocks: number, maxNumSeqs: number, budget: number, eosProbability: number }
type Spec = { arrivalPass: number, group: number, sharedLen: number, ownLen: number, maxTokens: number, ignoreEos: boolean, priority: number, cancelAtPass: number | null }

let totalPreemptions = 0
let totalPrefixHits = 0

function runWorkload (cfg: Cfg, specs: Spec[]): void {
  const events = new KvEventCollector()
  const blocks = new BlockManager(cfg.numBlocks, cfg.blockSize, events)
  const sched = new Scheduler({
    blockSize: cfg.blockSize,
    maxNumSeqs: cfg.maxNumSeqs,
    maxNumBatchedTokens: cfg.budget,
    enablePrefixCaching: true,
    eosProbability: cfg.eosProbability,
    eosTokenId: 0
  }, blocks, events, vocab)
  const sink = new CountingSink()
  const capacity = cfg.numBlocks * cfg.blockSize
  const reqs: EngineRequest[] = []
  const plan = new PassPlan()
  const lastArrival = Math.max(...specs.map((s) => s.arrivalPass))
  let pass = 0
  for (;;) {
    specs.forEach((s, i) => {
      if (s.arrivalPass !== pass) return
      // Every request must fit the cache alone (the engine enforces this as max_model_len).
      const maxTokens = Math.min(s.maxTokens, capacity - 1)
      const promptLen = Math.max(1, Math.min(s.sharedLen + s.ownLen, capacity - maxTokens))
      const prompt = new Uint32Array(promptLen)
      for (let t = 0; t < promptLen; t++) prompt[t] = t < s.sharedLen ? 1000 + s.group * 100 + t : 50000 + i * 1000 + t
      const req = new EngineRequest(`r${i}`, i, prompt, maxTokens, 0, s.ignoreEos, s.priority, null, i + 1, pass, sink, null)
      reqs.push(req)
      sched.add(req)
    })
    specs.forEach((s, i) => {
      const req = reqs.find((r) => r.id === `r${i}`)
      if (req !== undefined && s.cancelAtPass === pass) sched.cancel(req, pass)
    })
    const scheduled = sched.schedule(plan)
    if (scheduled) {
      assert.ok(plan.scheduledTokens <= cfg.budget, `pass ${pass}: ${plan.scheduledTokens} tokens > budget ${cfg.budget}`)
      assert.ok(plan.count <= cfg.maxNumSeqs, `pass ${pass}: ${plan.count} sequences > cap ${cfg.maxNumSeqs}`)
      assert.ok(sched.running.length <= cfg.maxNumSeqs)
      assert.ok(blocks.activeBlocks <= cfg.numBlocks)
      for (let k = 0; k < plan.count; k++) {
        const r = plan.reqs[k]!
        assert.ok(r.blocks.length * cfg.blockSize >= r.numComputed + plan.numNew[k]!, `${r.id} scheduled beyond its blocks`)
      }
      blocks.checkInvariants()
      sched.commit(plan, pass + 1)
      blocks.checkInvariants()
    }
    pass++
    if (pass > lastArrival && !sched.hasWork) break
    assert.ok(pass < 50000, 'scheduler made no progress (livelock)')
  }
  assert.equal(blocks.activeBlocks, 0, 'all blocks released at the end')
  for (const req of reqs) {
    const fin = sink.finishes.get(req.id) ?? []
    assert.equal(fin.length, 1, `${req.id} ended ${fin.length} times`)
    assert.ok(req.state === RequestState.FINISHED || req.state === RequestState.CANCELLED, `${req.id} neither finished nor cancelled`)
    if (req.state === RequestState.FINISHED) {
      if (req.ignoreEos) {
        assert.equal(req.numOutputTokens, req.maxTokens, `${req.id} (preempted ${req.numPreemptions}×) produced every token`)
        assert.equal(fin[0], 'length')
      } else {
        assert.ok(req.numOutputTokens <= req.maxTokens)
      }
      const texts = sink.tokens.get(req.id) ?? 0
      assert.equal(texts + (fin[0] === 'stop' ? 1 : 0), req.numOutputTokens, `${req.id}: sink saw every token`)
    } else {
      assert.equal(fin[0], 'abort')
    }
  }
  totalPreemptions += sched.totals.preemptions
  totalPrefixHits += sched.totals.prefixHitTokens
}

test('scheduler respects budget, sequence cap and block pool; every request ends; preempted ones complete', () => {
  const t0 = performance.now()
  fc.assert(fc.property(configArb, fc.array(requestArb, { minLength: 1, maxLength: 24 }), (cfg, specs) => {
    runWorkload(cfg, specs)
  }), { numRuns: 1500, interruptAfterTimeLimit: 10000 })
  assert.ok(totalPreemptions > 0, 'the workloads exercised preemption')
  assert.ok(totalPrefixHits > 0, 'the workloads exercised prefix-cache hits')
  assert.ok(performance.now() - t0 < 15000)
})

test('a tight cache under heavy load preempts and still completes everything', () => {
  const before = totalPreemptions
  const specs: Spec[] = Array.from({ length: 12 }, (_, i) => ({
    arrivalPass: 0, group: i % 2, sharedLen: 20, ownLen: 10 + i, maxTokens: 30, ignoreEos: true, priority: i % 3, cancelAtPass: null
  }))
  runWorkload({ blockSize: 4, numBlocks: 40, maxNumSeqs: 8, budget: 64, eosProbability: 0 }, specs)
  assert.ok(totalPreemptions > before)
})
