import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runLoad } from '../../src/bench/load.js'
import { FixtureServer } from './fixture-server.js'

test('latencies measured against a server with known timing: TTFT 50 ms, 10 ms between tokens', async () => {
  const server = new FixtureServer({ firstTokenDelayMs: 50, tokenDelayMs: 10 })
  const url = await server.listen()
  try {
    for (const endpoint of ['chat', 'completions'] as const) {
      server.arrivals.length = 0
      // One at a time, so record k is arrival k (after the warm-up, which opens the connection and warms the JIT).
      const r = await runLoad({ url, model: 'm', endpoint, stream: true, concurrency: 1, numRequests: 6, warmup: 2, isl: 64, osl: 20 })
      const s = r.summary
      assert.equal(s.requests.ok, 6)
      const arrivals = server.arrivals.slice(2)
      r.records.forEach((rec, k) => {
        const a = arrivals[k]!
        assert.equal(a.writes.length, 20)
        // Against the server's own clock (same process, same performance.now()): the client's TTFT
        // starts before the request arrives and ends after the chunk is written, by little.
        const serverTtft = a.writes[0]! - a.atMs
        assert.ok(rec.ttftMs! >= serverTtft - 0.5 && rec.ttftMs! - serverTtft < 30, `${endpoint} #${k} TTFT ${rec.ttftMs!.toFixed(1)} vs server ${serverTtft.toFixed(1)}`)
        const serverItl = (a.writes[19]! - a.writes[0]!) / 19
        assert.ok(Math.abs(rec.itlMeanMs! - serverItl) < 3, `${endpoint} #${k} ITL ${rec.itlMeanMs!.toFixed(2)} vs server ${serverItl.toFixed(2)}`)
        assert.ok(Math.abs(rec.tpotMs! - (rec.e2eMs - rec.ttftMs!) / 19) < 1e-9)
        assert.equal(rec.contentChunks, 20, 'the role-only first chunk is not a token')
        assert.equal(rec.outputTokens, 20)
        assert.equal(rec.finishReason, 'length')
      })
      // And against the nominal timing: timers never fire early, and on an idle machine late by ~1 ms;
      // the upper bounds leave room for a busy shared machine.
      const ttft = s.latency.ttftMs!
      const itl = s.latency.itlMs!
      assert.ok(ttft.p50 >= 50 && ttft.p50 < 90, `${endpoint} TTFT p50 ${ttft.p50.toFixed(1)}`)
      assert.ok(itl.mean >= 9.5 && itl.p50 < 20, `${endpoint} ITL mean ${itl.mean.toFixed(2)} p50 ${itl.p50.toFixed(2)}`)
      assert.equal(itl.count, 6 * 19, 'one gap between each pair of content chunks')
      assert.ok(s.latency.tpotMs!.mean >= 9.5 && s.latency.tpotMs!.mean < 20)
      assert.ok(s.latency.e2eMs!.p50 >= 50 + 190 && s.latency.e2eMs!.p50 < 450)
      // One at a time: throughput is the inverse of the latency.
      assert.ok(Math.abs(s.requestThroughput - 6 / s.durationS) < 1e-9)
      assert.ok(Math.abs(s.durationS * 1000 - r.records.reduce((acc, x) => acc + x.e2eMs, 0)) < 30)
    }
  } finally {
    await server.close()
  }
})

test('goodput counts only the requests within every SLO given', async () => {
  const server = new FixtureServer({ firstTokenDelayMs: 5, tokenDelayMs: 20 })
  const url = await server.listen()
  try {
    const base = { url, model: 'm', stream: true, concurrency: 4, numRequests: 8, osl: 4 } as const
    const loose = await runLoad({ ...base, sloTtftMs: 1000, sloTpotMs: 100 })
    assert.deepEqual([loose.summary.goodput?.requests, loose.summary.goodput?.ratio], [8, 1])
    const tpot = await runLoad({ ...base, sloTpotMs: 10 })
    assert.equal(tpot.summary.goodput?.requests, 0, 'TPOT ≈ 20 ms misses a 10 ms bound')
    const ttft = await runLoad({ ...base, sloTtftMs: 1 })
    assert.equal(ttft.summary.goodput?.requests, 0, 'TTFT ≈ 5 ms misses a 1 ms bound')
    const none = await runLoad(base)
    assert.equal(none.summary.goodput, null)
  } finally {
    await server.close()
  }
})
