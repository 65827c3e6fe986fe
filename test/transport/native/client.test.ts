import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { createMockEngine, startMockNativeServer } from '../../../src/mocker/index.js'
import { FrameKind, NativeUpstream } from '../../../src/transport/native/index.js'
import { chat, openCollect, rawFrame, startFakeWorker, waitFor } from './helpers.js'

test('a worker whose sockets die mid-stream fails every open stream at once, retryable, and leaves the table empty', { timeout: 20_000 }, async () => {
  const engine = createMockEngine({ speedupRatio: 1, heartbeatMs: 0 })
  const worker = await startMockNativeServer(engine, { port: 0 })
  const up = new NativeUpstream(worker.url, { idleTimeoutMs: 5000, connections: 2, streamsPerConnection: 20 })
  try {
    const runs = Array.from({ length: 50 }, (_, i) => openCollect(up, chat(`story ${i}`, 2000)))
    await waitFor(() => engine.scheduler.running.length === 50 && worker.stats().items >= 50, 10_000, 'streams under way')
    await waitFor(() => up.stats().items >= 50, 5000, 'items at the gateway')
    const t0 = performance.now()
    worker.destroy()
    const outcomes = await Promise.all(runs.map(async (r) => await r.done))
    const elapsed = performance.now() - t0
    assert.ok(elapsed < 1000, `streams failed after ${elapsed} ms, want well inside the 5 s idle deadline`)
    for (const o of outcomes) {
      assert.equal(o.calls, 1)
      assert.ok(o.error !== null)
      assert.equal(o.error.reason, 'connection_lost')
      assert.equal(o.error.code, 'SWY_ERR_NATIVE_CONNECTION')
      assert.equal(o.error.retryable, true)
    }
    assert.ok(outcomes.some((o) => o.error!.received), 'some streams had received items')
    assert.equal(up.openStreams, 0)
    const st = up.stats()
    assert.equal(st.failures.connection_lost, 50)
    assert.equal(st.connectionFailures, st.connectionsOpened)
    assert.ok(up.tombstonedUntil > Date.now(), 'the upstream is tombstoned')
    // The worker side cancelled its engine requests: blocks are free.
    await waitFor(() => engine.scheduler.running.length === 0 && engine.blocks.activeBlocks === 0, 5000, 'engine freed')
    const next = await openCollect(up, chat('after', 5)).done
    assert.equal(next.error?.reason, 'tombstoned')
    assert.equal(next.error?.retryable, true)
    assert.equal(up.stats().tombstoneHits, 1)
  } finally {
    await up.close()
    await worker.close(0)
    await engine.close()
  }
})

test('a worker that accepts a stream and never answers is failed by the first-item deadline, and told to cancel', { timeout: 10_000 }, async () => {
  const fake = await startFakeWorker()
  const up = new NativeUpstream(fake.url, { firstItemTimeoutMs: 200 })
  try {
    const o = await openCollect(up, chat('x', 5)).done
    assert.equal(o.accepted, true)
    assert.equal(o.error?.reason, 'first_item_timeout')
    assert.equal(o.error?.code, 'SWY_ERR_NATIVE_TIMEOUT')
    assert.equal(o.error?.status, 504)
    assert.equal(o.error?.received, false)
    assert.ok(o.ms >= 190 && o.ms < 1500, `failed after ${o.ms} ms`)
    await waitFor(() => fake.cancels.length === 1, 2000, 'cancel frame')
    assert.deepEqual(fake.cancels, fake.requests)
    assert.equal(up.openStreams, 0)
    assert.equal(up.tombstonedUntil, 0, 'a slow stream does not tombstone the worker')
  } finally {
    await up.close()
    await fake.close()
  }
})

test('a worker that never acknowledges a stream is failed by the accept deadline (retryable)', { timeout: 10_000 }, async () => {
  const fake = await startFakeWorker({ onRequest: () => {} })
  const up = new NativeUpstream(fake.url, { acceptTimeoutMs: 150 })
  try {
    const o = await openCollect(up, chat('x', 5)).done
    assert.equal(o.accepted, false)
    assert.equal(o.error?.reason, 'accept_timeout')
    assert.equal(o.error?.retryable, true)
  } finally {
    await up.close()
    await fake.close()
  }
})

test('an idle stream (items stop coming) is failed by the idle deadline with received = true', { timeout: 10_000 }, async () => {
  const fake = await startFakeWorker({
    onRequest (w, id) {
      w.frame(FrameKind.ACCEPT, id)
      w.item(id, 'one', null, -1, null, null)
    }
  })
  const up = new NativeUpstream(fake.url, { idleTimeoutMs: 200 })
  try {
    const o = await openCollect(up, chat('x', 5)).done
    assert.equal(o.text, 'one')
    assert.equal(o.error?.reason, 'idle_timeout')
    assert.equal(o.error?.received, true)
    assert.equal(o.error?.retryable, false)
  } finally {
    await up.close()
    await fake.close()
  }
})

test('a server that never completes the handshake fails queued streams by the connect deadline', { timeout: 10_000 }, async () => {
  const fake = await startFakeWorker({ hello: 'none' })
  const up = new NativeUpstream(fake.url, { connectTimeoutMs: 150 })
  try {
    const outs = await Promise.all([openCollect(up, chat('a', 5)).done, openCollect(up, chat('b', 5)).done])
    for (const o of outs) {
      assert.equal(o.error?.reason, 'connect_timeout')
      assert.equal(o.error?.retryable, true)
    }
    assert.equal(fake.requests.length, 0, 'requests wait for the handshake and are never sent')
  } finally {
    await up.close()
    await fake.close()
  }
})

test('a refused connection fails the stream with a retryable error and tombstones the upstream', { timeout: 10_000 }, async () => {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  const up = new NativeUpstream(`swy://127.0.0.1:${port}`, { tombstoneMs: 10_000 })
  try {
    const o = await openCollect(up, chat('a', 5)).done
    assert.equal(o.error?.reason, 'connection_lost')
    assert.equal(o.error?.retryable, true)
    assert.match(o.error!.message, /ECONNREFUSED/)
    assert.ok(up.tombstonedUntil > Date.now() + 5000)
  } finally {
    await up.close()
  }
})

test('a protocol version mismatch fails the streams with a clear error; nothing is sent', { timeout: 10_000 }, async () => {
  const fake = await startFakeWorker({ hello: { version: 99 } })
  const up = new NativeUpstream(fake.url)
  try {
    const o = await openCollect(up, chat('a', 5)).done
    assert.equal(o.error?.reason, 'protocol')
    assert.match(o.error!.message, /version 99; this gateway speaks 1/)
    assert.equal(fake.requests.length, 0)
  } finally {
    await up.close()
    await fake.close()
  }
})

test('an oversized frame from the worker ends that connection with a clear error, not the process', { timeout: 10_000 }, async () => {
  const fake = await startFakeWorker({
    onRequest (_w, id, socket) {
      socket.write(rawFrame(FrameKind.ITEM, id, Buffer.alloc(16), 5000))
    }
  })
  const up = new NativeUpstream(fake.url, { maxFrameBytes: 1024 })
  try {
    const outs = await Promise.all([openCollect(up, chat('a', 5)).done, openCollect(up, chat('b', 5)).done])
    for (const o of outs) {
      assert.equal(o.error?.reason, 'protocol')
      assert.match(o.error!.message, /5000 bytes exceeds the 1024-byte frame size limit/)
    }
    assert.equal(up.openStreams, 0)
    await waitFor(() => fake.sockets.size === 0, 2000, 'connection closed')
  } finally {
    await up.close()
    await fake.close()
  }
})

test('a corrupt item body ends the connection with SWY_ERR_NATIVE_PROTOCOL', { timeout: 10_000 }, async () => {
  const fake = await startFakeWorker({
    onRequest (_w, id, socket) {
      socket.write(rawFrame(FrameKind.ITEM, id, Buffer.from([0x94, 0xd9, 0x40, 0x41])))
    }
  })
  const up = new NativeUpstream(fake.url)
  try {
    const o = await openCollect(up, chat('a', 5)).done
    assert.equal(o.error?.reason, 'protocol')
    assert.match(o.error!.message, /corrupt native item: truncated/)
  } finally {
    await up.close()
    await fake.close()
  }
})

test('a request larger than the worker accepts fails alone, without touching the connection', { timeout: 10_000 }, async () => {
  const engine = createMockEngine({ speedupRatio: 0, heartbeatMs: 0 })
  const worker = await startMockNativeServer(engine, { port: 0, maxFrameBytes: 4096 })
  const up = new NativeUpstream(worker.url)
  try {
    const ok = await openCollect(up, chat('small', 3)).done
    assert.equal(ok.error, null)
    const big = await openCollect(up, chat('x'.repeat(10_000), 3)).done
    assert.equal(big.error?.reason, 'request_too_large')
    assert.equal(big.error?.code, 'SWY_ERR_NATIVE_FRAME_TOO_LARGE')
    const again = await openCollect(up, chat('small', 3)).done
    assert.equal(again.text, ok.text)
    assert.equal(up.stats().connectionFailures, 0)
  } finally {
    await up.close()
    await worker.close(0)
    await engine.close()
  }
})

test('a 1.2 MB prompt of token ids crosses as one frame over many socket chunks', { timeout: 20_000 }, async () => {
  const engine = createMockEngine({ speedupRatio: 0, heartbeatMs: 0 })
  const worker = await startMockNativeServer(engine, { port: 0 })
  const up = new NativeUpstream(worker.url)
  try {
    const ids = Uint32Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 50_000)
    const o = await openCollect(up, { model: 'mock-llm', endpoint: 'completions', tokenIds: ids, sampling: { maxTokens: 2, ignoreEos: true } }).done
    assert.equal(o.error, null, o.error?.message)
    assert.equal(o.usage?.promptTokens, 300_000)
    assert.ok(up.stats().bytesOut > 1_200_000)
  } finally {
    await up.close()
    await worker.close(0)
    await engine.close()
  }
})

test('the worker refusing a request arrives as a non-retryable worker_error with its status', { timeout: 10_000 }, async () => {
  const engine = createMockEngine({ speedupRatio: 0, heartbeatMs: 0, maxModelLen: 64 })
  const worker = await startMockNativeServer(engine, { port: 0 })
  const up = new NativeUpstream(worker.url)
  try {
    const o = await openCollect(up, chat('a very long prompt '.repeat(40), 3)).done
    assert.equal(o.error?.reason, 'worker_error')
    assert.equal(o.error?.status, 400)
    assert.equal(o.error?.workerCode, 'SWY_ERR_INVALID_BODY')
    assert.equal(o.error?.retryable, false)
    const m = await openCollect(up, { ...chat('a', 3), model: 'other' }).done
    assert.equal(m.error?.status, 404)
    assert.equal(m.error?.apiCode, 'model_not_found')
  } finally {
    await up.close()
    await worker.close(0)
    await engine.close()
  }
})

test('cancel reaches the engine and frees the request\'s KV blocks', { timeout: 10_000 }, async () => {
  const engine = createMockEngine({ speedupRatio: 1, heartbeatMs: 0, blockSize: 16 })
  const worker = await startMockNativeServer(engine, { port: 0 })
  const up = new NativeUpstream(worker.url)
  try {
    const run = openCollect(up, chat('a long answer please '.repeat(10), 5000))
    await waitFor(() => engine.blocks.activeBlocks > 0 && engine.scheduler.running.length === 1, 5000, 'request running')
    await waitFor(() => up.stats().items > 0, 5000, 'first item')
    run.stream.cancel()
    const o = await run.done
    assert.equal(o.error?.reason, 'cancelled')
    assert.equal(o.calls, 1)
    await waitFor(() => worker.stats().streamsCancelled === 1, 2000, 'cancel at the worker')
    assert.equal(engine.scheduler.running.length, 0)
    assert.equal(engine.blocks.activeBlocks, 0)
    assert.equal(worker.stats().openStreams, 0)
    run.stream.cancel() // idempotent
    assert.equal(o.calls, 1)
  } finally {
    await up.close()
    await worker.close(0)
    await engine.close()
  }
})

test('10,000 concurrent streams on one connection complete with the right content each', { timeout: 60_000 }, async () => {
  const opts = { speedupRatio: 0, heartbeatMs: 0, blockSize: 16, maxNumSeqs: 1024, maxNumBatchedTokens: 16384 }
  const engine = createMockEngine(opts)
  const reference = createMockEngine(opts)
  const worker = await startMockNativeServer(engine, { port: 0 })
  const up = new NativeUpstream(worker.url, { connections: 1 })
  const N = 10_000
  try {
    const prompt = (i: number): Uint32Array => Uint32Array.from([100 + (i % 997), 200 + (i % 1013), 300 + i % 7, i & 0xffff])
    const t0 = performance.now()
    const runs = Array.from({ length: N }, (_, i) => openCollect(up, {
      model: 'mock-llm', endpoint: 'completions', tokenIds: prompt(i), sampling: { maxTokens: 4, ignoreEos: true }, returnTokenIds: true
    }).done)
    assert.equal(up.openStreams, N)
    const outs = await Promise.all(runs)
    const ms = performance.now() - t0
    assert.equal(up.stats().connections, 1)
    for (let i = 0; i < N; i += 1) {
      const o = outs[i]!
      assert.equal(o.error, null, `stream ${i}: ${o.error?.message}`)
      assert.equal(o.finishReason, 'length')
      assert.equal(o.tokenIds.length, 4)
      assert.equal(o.usage?.completionTokens, 4)
      assert.equal(o.usage?.promptTokens, 4)
    }
    // Content: the same prompt gives the same tokens on any engine with the same seed.
    for (let i = 0; i < N; i += 37) {
      const want = await reference.generate({ promptTokens: prompt(i), maxTokens: 4, ignoreEos: true })
      assert.deepEqual(outs[i]!.tokenIds, want.tokenIds, `stream ${i}`)
      assert.equal(outs[i]!.text, want.text, `stream ${i}`)
    }
    assert.equal(up.openStreams, 0)
    assert.equal(worker.stats().openStreams, 0)
    const st = up.stats()
    assert.equal(st.streamsEnded, N)
    // Coalescing: far fewer socket reads than frames.
    assert.ok(st.framesIn > 5 * N)
    console.log(`10k streams: ${Math.round(ms)} ms, ${st.framesIn} frames in, ${st.bytesIn} bytes in`)
  } finally {
    await up.close()
    await worker.close(0)
    await engine.close()
    await reference.close()
  }
})

test('a draining worker (GOAWAY) lets open streams finish; the upstream is not tombstoned', { timeout: 10_000 }, async () => {
  const engine = createMockEngine({ speedupRatio: 20, heartbeatMs: 0 })
  const worker = await startMockNativeServer(engine, { port: 0 })
  const up = new NativeUpstream(worker.url)
  try {
    const runs = Array.from({ length: 5 }, (_, i) => openCollect(up, chat(`q${i}`, 30)).done)
    await waitFor(() => worker.stats().items > 0, 5000, 'streaming')
    const closing = worker.close(5000)
    const outs = await Promise.all(runs)
    for (const o of outs) {
      assert.equal(o.error, null)
      assert.equal(o.finishReason, 'length')
    }
    await closing
    await waitFor(() => up.stats().connections === 0, 2000, 'connection closed')
    assert.equal(up.stats().connectionFailures, 0)
    assert.equal(up.tombstonedUntil, 0)
  } finally {
    await up.close()
    await worker.close(0)
    await engine.close()
  }
})

test('close() fails open streams with a retryable closed error and is idempotent', { timeout: 10_000 }, async () => {
  const fake = await startFakeWorker()
  const up = new NativeUpstream(fake.url)
  const runs = Array.from({ length: 3 }, () => openCollect(up, chat('a', 5)).done)
  await waitFor(() => fake.requests.length === 3, 2000, 'requests')
  await Promise.all([up.close(), up.close()])
  for (const o of await Promise.all(runs)) {
    assert.equal(o.error?.reason, 'closed')
    assert.equal(o.error?.retryable, true)
  }
  assert.equal(up.openStreams, 0)
  assert.equal(up.stats().connections, 0)
  assert.equal(up.tombstonedUntil, 0)
  const after = await openCollect(up, chat('a', 5)).done
  assert.equal(after.error?.reason, 'closed')
  await fake.close()
})

test('a silent connection with open streams is pinged, and dropped when the ping goes unanswered', { timeout: 10_000 }, async () => {
  const fake = await startFakeWorker({ onRequest: (w, id) => { w.frame(FrameKind.ACCEPT, id) } })
  const up = new NativeUpstream(fake.url, { pingIntervalMs: 100 })
  try {
    // Answers pings: the stream stays open past several ping intervals.
    const run = openCollect(up, chat('a', 5))
    await new Promise((resolve) => setTimeout(resolve, 400))
    assert.equal(up.openStreams, 1)
    // Now stop answering anything (the process froze): the ping times out.
    for (const s of fake.sockets) s.pause()
    const o = await run.done
    assert.equal(o.error?.reason, 'connection_lost')
    assert.match(o.error!.message, /did not answer a ping/)
  } finally {
    await up.close()
    await fake.close()
  }
})

test('options are validated once: unknown keys and bad values are named', () => {
  assert.throws(() => new NativeUpstream('swy://127.0.0.1:1', { idleTimeout: 5 } as any), /unknown native upstream option "idleTimeout"/)
  assert.throws(() => new NativeUpstream('swy://127.0.0.1:1', { connections: 0 }), /connections must be a number ≥ 1/)
  assert.throws(() => new NativeUpstream('http://127.0.0.1:1'), /must start with swy:\/\//)
  assert.throws(() => new NativeUpstream('swy://127.0.0.1'), /needs a port/)
})
