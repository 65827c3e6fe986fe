import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { builtinTokenizer } from '../../src/tokenize/index.js'
import { runLoad } from '../../src/bench/load.js'
import { FixtureServer } from './fixture-server.js'

test('Poisson arrivals reach the server at the asked rate, exponentially spaced, on schedule', async () => {
  const server = new FixtureServer({ tokenDelayMs: 1 })
  const url = await server.listen()
  try {
    // The warm-up opens connections and warms the JIT, which would otherwise make the first arrivals late.
    const r = await runLoad({ url, model: 'm', stream: true, requestRate: 150, numRequests: 300, isl: 32, osl: 2, seed: 7, warmup: 20 })
    assert.equal(r.mode, 'poisson')
    assert.equal(server.arrivals.length, 320)
    const rateAndCv = (times: number[]): [number, number] => {
      const t = [...times].sort((a, b) => a - b)
      const gaps = t.slice(1).map((v, i) => v - t[i]!)
      const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length
      const sd = Math.sqrt(gaps.reduce((a, b) => a + (b - mean) ** 2, 0) / gaps.length)
      return [1000 / mean, sd / mean]
    }
    // The schedule itself: 300 exponential gaps have a mean within a few % of 1/rate.
    const plannedTimes = r.records.map((x) => x.scheduledMs!).sort((a, b) => a - b)
    const [planned, plannedCv] = rateAndCv(plannedTimes)
    assert.ok(Math.abs(planned - 150) < 15, `planned rate ${planned.toFixed(1)}/s`)
    assert.ok(plannedCv > 0.85 && plannedCv < 1.15, `planned coefficient of variation ${plannedCv.toFixed(2)} (exponential: 1)`)
    // The server sees requests when the records say they were sent (k-th arrival ↔ k-th send).
    // Medians, because this shared 2-core machine stalls a process for tens of ms now and then.
    const seen = server.arrivals.slice(20).map((a) => a.atMs).sort((a, b) => a - b)
    const sent = r.records.map((x) => x.startMs).sort((a, b) => a - b)
    const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!
    const offset = median(seen.map((t, k) => t - sent[k]!))
    const drift = median(seen.map((t, k) => Math.abs(t - offset - sent[k]!)))
    assert.ok(drift < 10, `server arrivals off the recorded send times by ${drift.toFixed(1)} ms (median)`)
    // And sends keep to the plan, or the generator says it fell behind.
    const lag = r.generator.dispatchLagMs!
    assert.equal(lag.count, 300)
    assert.equal(r.generator.behindSchedule, lag.p99 > 10)
    if (!r.generator.behindSchedule) {
      const [seenRate] = rateAndCv(seen)
      assert.ok(Math.abs(seenRate - planned) < planned * 0.1, `server saw ${seenRate.toFixed(1)}/s, planned ${planned.toFixed(1)}/s`)
    } else {
      assert.ok(r.generator.warnings.some((w) => /behind its schedule/.test(w)))
    }
    for (const rec of r.records) assert.ok(rec.scheduledMs !== null && rec.lagMs !== null && rec.lagMs >= -1)
  } finally {
    await server.close()
  }
})

test('--duration cuts an open-loop run: no request starts after it', async () => {
  const server = new FixtureServer()
  const url = await server.listen()
  try {
    const r = await runLoad({ url, model: 'm', stream: true, requestRate: 100, durationS: 0.5, isl: 8, osl: 2 })
    const n = r.summary.requests.total
    assert.ok(n > 25 && n < 80, `about 50 requests, got ${n}`)
    assert.ok(r.records.every((x) => x.scheduledMs! < 500), 'nothing planned after the duration')
  } finally {
    await server.close()
  }
})

test('a Mooncake trace is replayed at its times ÷ speed-up, cut by start and count, with shared prefixes exactly where hash ids match', async () => {
  const server = new FixtureServer()
  const url = await server.listen()
  const dir = await mkdtemp(join(tmpdir(), 'swy-trace-'))
  try {
    const lines = []
    // Records 0..9 every 100 ms; all share block 7, odd ones also share block 8.
    for (let i = 0; i < 10; i++) lines.push(JSON.stringify({ timestamp: i * 100, input_length: 1100, output_length: 3, hash_ids: [7, i % 2 === 1 ? 8 : 100 + i, 200 + i] }))
    const file = join(dir, 't.jsonl')
    await writeFile(file, lines.join('\n') + '\n')
    const r = await runLoad({ url, model: 'm', endpoint: 'completions', stream: true, trace: file, workload: 'trace', traceSpeedup: 2, traceStartS: 0.2, numRequests: 6, traceBlockSize: 512 })
    assert.equal(r.mode, 'trace')
    assert.equal(server.arrivals.length, 6, 'records 2..7')
    // The plan is exact; the sends keep to it unless the generator reports lag; the server sees the sends.
    assert.deepEqual(r.records.map((x) => x.scheduledMs), [0, 50, 100, 150, 200, 250])
    for (const x of r.records) assert.ok(Math.abs(x.startMs - x.scheduledMs! - x.lagMs!) < 1e-9)
    if (!r.generator.behindSchedule) assert.ok(r.records.every((x) => x.lagMs! < 10))
    const sent = r.records.map((x) => x.startMs)
    const offsets = server.arrivals.map((a, k) => a.atMs - sent[k]!).sort((a, b) => a - b)
    assert.ok(offsets[offsets.length - 1]! - offsets[0]! < 50, `server arrivals follow the sends: offsets ${offsets.map((o) => o.toFixed(1)).join(' ')}`)
    for (const a of server.arrivals) {
      assert.equal(a.body.max_tokens, 3)
      assert.equal(a.promptIds.length, 1100)
    }
    const lcp = (a: Uint32Array, b: Uint32Array): number => { let i = 0; while (i < a.length && a[i] === b[i]) i++; return i }
    const ids = server.arrivals.map((a) => a.promptIds)
    // arrivals 0..5 are records 2..7: records 3, 5, 7 (odd) share two blocks, others only block 7.
    assert.ok(lcp(ids[1]!, ids[3]!) >= 1024 && lcp(ids[1]!, ids[3]!) < 1030)
    assert.ok(lcp(ids[0]!, ids[2]!) >= 512 && lcp(ids[0]!, ids[2]!) < 518)
    assert.ok(lcp(ids[0]!, ids[1]!) >= 512 && lcp(ids[0]!, ids[1]!) < 518)
    // The built-in tokenizer decodes our own block 7 to the same text the server saw.
    const tok = builtinTokenizer()
    assert.equal(tok.decode(ids[0]!.subarray(0, 512)), tok.decode(ids[5]!.subarray(0, 512)))
  } finally {
    await server.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('an Azure CSV trace replays arrivals with random prompts of the recorded lengths', async () => {
  const server = new FixtureServer()
  const url = await server.listen()
  const dir = await mkdtemp(join(tmpdir(), 'swy-azure-'))
  try {
    const file = join(dir, 'a.csv')
    await writeFile(file, 'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9000000,40,2\n2023-11-16 18:17:04.0000000,55,3\n2023-11-16 18:17:04.1500000,70,4')
    const r = await runLoad({ url, model: 'm', endpoint: 'completions', trace: file, workload: 'trace' })
    assert.equal(r.summary.requests.ok, 3)
    assert.deepEqual(server.arrivals.map((a) => [a.promptIds.length, a.body.max_tokens]), [[40, 2], [55, 3], [70, 4]])
    assert.deepEqual(r.records.map((x) => x.scheduledMs), [0, 100, 250])
    if (!r.generator.behindSchedule) {
      const t0 = server.arrivals[0]!.atMs
      assert.ok(Math.abs(server.arrivals[2]!.atMs - t0 - 250) < 20)
    }
  } finally {
    await server.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('a generator that falls behind its schedule says so, during the run and in the results', async () => {
  const server = new FixtureServer()
  const url = await server.listen()
  try {
    const warnings: string[] = []
    // Blocking the event loop for 30 ms after each answer makes later dispatches late.
    const block = (): void => { const until = performance.now() + 30; while (performance.now() < until) { /* busy */ } }
    const r = await runLoad({ url, model: 'm', stream: true, requestRate: 100, numRequests: 60, osl: 2 }, { onRecord: block, onWarning: (m) => warnings.push(m) })
    assert.equal(r.generator.behindSchedule, true)
    assert.ok(r.generator.dispatchLagMs!.p99 > 10)
    assert.ok(warnings.some((w) => /behind its schedule/.test(w)), JSON.stringify(warnings))
    assert.deepEqual(r.generator.warnings, warnings)
  } finally {
    await server.close()
  }
})
