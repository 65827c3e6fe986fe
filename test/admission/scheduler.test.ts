import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { DEFAULT_SCHEDULER, DISPATCHED, DispatchScheduler, FULL, HIGH, LOW, MEDIUM, NO_FIT, type DispatchResult, type QueueMode, type SchedulerOptions } from '../../src/admission/scheduler.js'
import type { Queued } from '../../src/admission/lane.js'

interface Req extends Queued { name: string }

let seq = 0
function req (name: string, cls: number, tokens: number, lane = 0, arrival = seq): Req {
  return { name, cls, tokens, lane, arrival, seq: seq++, queued: false }
}

function sched (o: Partial<SchedulerOptions> = {}): DispatchScheduler<Req> {
  return new DispatchScheduler<Req>({ ...DEFAULT_SCHEDULER, agingMs: [0, 0, 0], ...o })
}

/** A window of `slots` requests and `tokens` tokens that never frees: what one pump can fill. */
function window (slots: number, tokens = Infinity): { take: (e: Req) => DispatchResult, order: string[] } {
  let usedSlots = 0
  let usedTokens = 0
  const order: string[] = []
  return {
    order,
    take (e) {
      if (usedSlots >= slots) return FULL
      if (usedTokens + e.tokens > tokens) return NO_FIT
      usedSlots++
      usedTokens += e.tokens
      order.push(e.name)
      return DISPATCHED
    }
  }
}

test('10 high and 10 low requests of equal size dispatch in a 4:1 interleave', () => {
  const s = sched({ quantum: 100 })
  for (let i = 0; i < 10; i++) s.enqueue(req(`H${i}`, HIGH, 100))
  for (let i = 0; i < 10; i++) s.enqueue(req(`L${i}`, LOW, 100))
  const w = window(100)
  assert.equal(s.pump(w.take), 20)
  assert.equal(w.order.map(n => n[0]).join(''), 'HHHHLHHHHLHHLLLLLLLL')
  assert.equal(s.size, 0)
})

test('a window that frees one slot at a time sees the same interleave', () => {
  const s = sched({ quantum: 100 })
  for (let i = 0; i < 8; i++) s.enqueue(req(`H${i}`, HIGH, 100))
  for (let i = 0; i < 4; i++) s.enqueue(req(`L${i}`, LOW, 100))
  const order: string[] = []
  while (s.size > 0) {
    const w = window(1)
    s.pump(w.take)
    order.push(...w.order)
  }
  assert.equal(order.map(n => n[0]).join(''), 'HHHHLHHHHLLL')
})

test('an oversized high head lets a small medium request through (work-conserving)', () => {
  const s = sched({ quantum: 1000 })
  s.enqueue(req('bigH', HIGH, 900))
  s.enqueue(req('smallM', MEDIUM, 50))
  const w = window(10, 500)
  s.pump(w.take)
  assert.deepEqual(w.order, ['smallM'])
  assert.equal(s.size, 1)
  // Room later: the high request goes.
  const w2 = window(10, 1000)
  s.pump(w2.take)
  assert.deepEqual(w2.order, ['bigH'])
})

test('a head that does not fit does not block the other lane of its class', () => {
  const s = sched({ quantum: 1000 })
  s.enqueue(req('bigUser', HIGH, 900, 0))
  s.enqueue(req('smallInternal', HIGH, 50, 1))
  const w = window(10, 500)
  s.pump(w.take)
  assert.deepEqual(w.order, ['smallInternal'])
})

test('credits are kept per lane: each lane of a class earns its own quantum', () => {
  const s = sched({ quantum: 100, weights: [1, 1, 1] })
  for (let i = 0; i < 4; i++) s.enqueue(req(`u${i}`, MEDIUM, 100, 0))
  for (let i = 0; i < 4; i++) s.enqueue(req(`i${i}`, MEDIUM, 100, 1))
  const w = window(100)
  s.pump(w.take)
  // One request's worth of credit per lane per visit: the lanes alternate.
  assert.deepEqual(w.order.map(n => n[0]), ['u', 'i', 'i', 'u', 'u', 'i', 'i', 'u'])
  assert.deepEqual(s.credit.slice(), new Float64Array(6))
})

test('an emptied lane\'s credit resets to 0', () => {
  const s = sched({ quantum: 1000 })
  s.enqueue(req('a', HIGH, 10))
  s.pump(window(10).take)
  assert.equal(s.credit[0], 0)
})

test('strict mode serves the most urgent class first, and fifo mode ignores priority', () => {
  const mk = (mode: QueueMode): string[] => {
    const s = sched({ mode })
    s.enqueue(req('L0', LOW, 10))
    s.enqueue(req('M0', MEDIUM, 10))
    s.enqueue(req('H0', HIGH, 10))
    s.enqueue(req('L1', LOW, 10))
    const w = window(10)
    s.pump(w.take)
    return w.order
  }
  assert.deepEqual(mk('strict'), ['H0', 'M0', 'L0', 'L1'])
  assert.deepEqual(mk('fifo'), ['L0', 'M0', 'H0', 'L1'])
})

test('fifo mode: a head that does not fit blocks the queue (head-of-line)', () => {
  const s = sched({ mode: 'fifo' })
  s.enqueue(req('big', HIGH, 900))
  s.enqueue(req('small', LOW, 10))
  const w = window(10, 500)
  s.pump(w.take)
  assert.deepEqual(w.order, [])
})

test('aging moves a waiting request to the high class, keeping arrival order there', () => {
  const s = sched({ agingMs: [0, 100, 100], quantum: 10 })
  s.enqueue(req('oldLow', LOW, 10, 0, 0))
  s.enqueue(req('h1', HIGH, 10, 0, 50))
  s.enqueue(req('h2', HIGH, 10, 0, 150))
  assert.equal(s.age(120), 1)
  const w = window(1)
  s.pump(w.take)
  assert.deepEqual(w.order, ['oldLow'], 'the aged request is the oldest in the high class, so it goes first')
})

test('removing a waiting request takes it out of the counts at once and it is never dispatched', () => {
  const s = sched()
  const a = req('a', MEDIUM, 10)
  const b = req('b', MEDIUM, 10)
  s.enqueue(a)
  s.enqueue(b)
  s.remove(a)
  assert.equal(s.size, 1)
  assert.equal(s.tokens, 10)
  const w = window(10)
  s.pump(w.take)
  assert.deepEqual(w.order, ['b'])
})

test('a requeued request (older arrival) goes ahead of younger ones in its lane', () => {
  const s = sched()
  s.enqueue(req('young', MEDIUM, 10, 1, 100))
  s.enqueue(req('old', MEDIUM, 10, 1, 5))
  const w = window(10)
  s.pump(w.take)
  assert.deepEqual(w.order, ['old', 'young'])
})

// ---- properties ----

const arbReq = fc.record({ cls: fc.integer({ min: 0, max: 2 }), lane: fc.integer({ min: 0, max: 1 }), tokens: fc.integer({ min: 1, max: 3000 }) })

test('property: FIFO within a lane, whatever the mode and the windows', () => {
  fc.assert(fc.property(fc.array(arbReq, { minLength: 1, maxLength: 60 }), fc.constantFrom<QueueMode>('wdrr', 'strict'), fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 40 }), (reqs, mode, slots) => {
    const s = sched({ mode, quantum: 500 })
    const all = reqs.map((r, i) => req(String(i), r.cls, r.tokens, r.lane, i))
    for (const r of all) s.enqueue(r)
    const order: Req[] = []
    let k = 0
    while (s.size > 0 && k < 1000) {
      const n = slots[k++ % slots.length]!
      const w = window(n, 4000)
      s.pump((e) => { const r = w.take(e); if (r === DISPATCHED) order.push(e); return r })
    }
    assert.equal(s.size, 0, 'everything eventually dispatches')
    for (let lane = 0; lane < 6; lane++) {
      const got = order.filter(r => r.cls * 2 + r.lane === lane).map(r => r.arrival)
      assert.deepEqual(got, [...got].sort((a, b) => a - b))
    }
  }), { numRuns: 200 })
})

test('property: a backlogged lane gets no more than its weighted share plus one request', () => {
  fc.assert(fc.property(fc.array(arbReq, { minLength: 30, maxLength: 120 }), fc.integer({ min: 50, max: 2000 }), (reqs, quantum) => {
    const s = sched({ quantum })
    const all = reqs.map((r, i) => req(String(i), r.cls, r.tokens, r.lane, i))
    for (const r of all) s.enqueue(r)
    const max = Math.max(...all.map(r => r.tokens))
    const served = new Float64Array(6)
    // Dispatch one request per pump while every lane that started non-empty stays non-empty.
    const lanesAtStart = new Set(all.map(r => r.cls * 2 + r.lane))
    for (;;) {
      const w = window(1)
      let got: Req | null = null
      s.pump((e) => { const r = w.take(e); if (r === DISPATCHED) got = e; return r })
      if (got === null) break
      const g: Req = got
      served[g.cls * 2 + g.lane] = served[g.cls * 2 + g.lane]! + g.tokens
      const live = new Set<number>()
      for (let li = 0; li < 6; li++) if (!s.lanes[li]!.empty) live.add(li)
      if ([...lanesAtStart].some(li => !live.has(li))) break
    }
    // DRR's bound over the stretch where every lane is backlogged. After k visits a lane has been
    // served at most k grants (its credit never goes negative), and every other lane at least
    // k - 1 grants less the one request its leftover credit could not cover. So a lane's service
    // exceeds its weighted share of the total by at most its capped credit (capVisits grants)
    // plus its weight's part of one request per lane. (A tighter "one request" term failed on
    // quantum 52 with 2.7k-token requests by a fraction of a token.)
    const weights = DEFAULT_SCHEDULER.weights
    const lanes = [...lanesAtStart]
    const total = lanes.reduce((a, li) => a + served[li]!, 0)
    const wsum = lanes.reduce((a, li) => a + weights[li >> 1]!, 0)
    for (const li of lanes) {
      const w = weights[li >> 1]!
      const share = w / wsum * total
      const bound = share + w * quantum * DEFAULT_SCHEDULER.capVisits + lanes.length * w / wsum * max
      assert.ok(served[li]! <= bound, `lane ${li} served ${served[li]} tokens, share ${share.toFixed(0)}, bound ${bound.toFixed(0)}, max request ${max}`)
    }
  }), { numRuns: 200 })
})

test('property: with aging on, every request dispatches within a bounded wait under a steady high-priority flood', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 10, max: 200 }), (lows, aging) => {
    const s = sched({ mode: 'strict', agingMs: [0, aging, aging] })
    const waiting = new Map<string, number>()
    for (let i = 0; i < lows; i++) { const r = req(`L${i}`, LOW, 10, 0, 0); s.enqueue(r); waiting.set(r.name, 0) }
    // Each ms: one new high request arrives and one slot frees. Strict priority alone would starve the lows.
    let now = 0
    for (; now < 10_000 && [...waiting.keys()].some(k => k.startsWith('L')); now++) {
      s.enqueue(req(`H${now}`, HIGH, 10, 0, now))
      s.age(now)
      const w = window(1)
      s.pump((e) => { const r = w.take(e); if (r === DISPATCHED) waiting.delete(e.name); return r })
    }
    assert.ok(now <= aging + 2 * lows + 2, `the last low request waited ${now} ms with aging at ${aging} ms`)
  }), { numRuns: 100 })
})

test('a low request waiting on full windows does not hold the turn against high ones arriving behind it', () => {
  const s = sched({ quantum: 100 })
  s.enqueue(req('L0', LOW, 100))
  s.pump(() => FULL)
  s.enqueue(req('H0', HIGH, 100))
  s.enqueue(req('L1', LOW, 100))
  s.enqueue(req('H1', HIGH, 100))
  const order: string[] = []
  while (s.size > 0) {
    const w = window(1)
    s.pump(w.take)
    order.push(...w.order)
  }
  assert.deepEqual(order, ['H0', 'H1', 'L0', 'L1'])
})
