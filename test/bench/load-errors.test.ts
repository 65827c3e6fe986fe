import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runLoad } from '../../src/bench/load.js'
import { FixtureServer, type Fault } from './fixture-server.js'

test('failures are counted by status, kind and type: HTTP errors, resets, SSE error events, truncation, timeouts', async () => {
  const faults: Record<number, Fault> = {
    0: { status: 429, error: { message: 'queue full', type: 'rate_limit_error', code: 'queue_full' } },
    1: { status: 500, error: { message: 'boom', type: 'server_error' } },
    2: { reset: 'before-headers' },
    3: { streamErrorAfter: 2 },
    4: { truncateAfter: 2 },
    5: { hang: true },
    6: { status: 429, error: { message: 'queue full', type: 'rate_limit_error', code: 'queue_full' } }
  }
  // One request at a time, so arrival index = send index and faults land where planned.
  const server = new FixtureServer({ tokenDelayMs: 1, fault: (i) => faults[i] ?? null })
  const url = await server.listen()
  try {
    const r = await runLoad({ url, model: 'm', stream: true, concurrency: 1, numRequests: 10, osl: 5, requestTimeoutS: 0.3 })
    const s = r.summary
    assert.deepEqual(s.requests, { total: 10, ok: 3, failed: 7 })
    assert.deepEqual(s.errors.byStatus, { 429: 2, 500: 1, none: 2, 200: 2 })
    assert.deepEqual(s.errors.byKind, { http: 3, network: 1, stream: 1, incomplete: 1, timeout: 1 })
    assert.equal(s.errors.byType.rate_limit_error, 2)
    assert.equal(s.errors.byType.server_error, 2, 'the 500 and the SSE error event')
    const rec = r.records
    assert.deepEqual(rec[0]!.error, { kind: 'http', status: 429, type: 'rate_limit_error', code: 'queue_full', message: 'queue full' })
    assert.equal(rec[3]!.error?.kind, 'stream')
    assert.equal(rec[3]!.error?.code, 'upstream_stream')
    assert.equal(rec[3]!.contentChunks, 2, 'tokens before the error are counted')
    assert.equal(rec[4]!.error?.kind, 'incomplete')
    assert.equal(rec[5]!.error?.kind, 'timeout')
    assert.ok(rec[5]!.e2eMs >= 280 && rec[5]!.e2eMs < 1500, `timed out after ${rec[5]!.e2eMs} ms`)
    assert.ok(s.errors.examples.length > 0)
    // Failed requests do not feed the latency figures.
    assert.equal(s.latency.e2eMs?.count, 3)
  } finally {
    await server.close()
  }
})

test('a server that is not there: every request is a network error and the run still ends', async () => {
  const server = new FixtureServer()
  const url = await server.listen()
  await server.close()
  const r = await runLoad({ url, model: 'm', stream: true, concurrency: 2, numRequests: 4, scrapeMetrics: true })
  assert.equal(r.summary.requests.failed, 4)
  assert.deepEqual(r.summary.errors.byKind, { network: 4 })
  assert.equal(r.summary.errors.byType.ECONNREFUSED, 4)
  assert.equal(r.workers, null)
})

test('aborting a run cancels requests in flight and returns what was measured', async () => {
  const server = new FixtureServer({ fault: (i) => i >= 2 ? { hang: true } : null })
  const url = await server.listen()
  try {
    const ac = new AbortController()
    const done = runLoad({ url, model: 'm', stream: true, concurrency: 2, numRequests: 50, osl: 4 }, { signal: ac.signal })
    setTimeout(() => ac.abort(), 200)
    const r = await done
    assert.equal(r.summary.requests.ok, 2)
    assert.equal(r.summary.errors.byKind.cancelled, 2)
  } finally {
    await server.close()
  }
})

test('after --duration, requests still in flight past the drain timeout are cancelled', async () => {
  const server = new FixtureServer({ fault: () => ({ hang: true }) })
  const url = await server.listen()
  try {
    const t = performance.now()
    const r = await runLoad({ url, model: 'm', stream: true, concurrency: 3, durationS: 0.1, drainTimeoutS: 0.2 })
    assert.ok(performance.now() - t < 2000)
    assert.deepEqual(r.summary.errors.byKind, { cancelled: 3 })
  } finally {
    await server.close()
  }
})
