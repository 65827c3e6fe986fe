import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { iterableEngine, startNativeWorker } from '../../src/worker/index.js'
import type { NativeEngine, WorkerStream } from '../../src/worker/index.js'
import { FrameKind, FrameReader, FrameWriter, NativeUpstream, decodeBody, encodeRequest, packr } from '../../src/transport/native/index.js'
import type { FrameKindValue } from '../../src/transport/native/index.js'
import { chat, openCollect, waitFor } from '../transport/native/helpers.js'

interface RawClient { socket: Socket, w: FrameWriter, frames: Array<{ kind: FrameKindValue, id: number, body: Buffer }>, closed: Promise<void> }

async function rawClient (port: number, hello = true): Promise<RawClient> {
  const socket = connect({ port, host: '127.0.0.1' })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const frames: RawClient['frames'] = []
  const reader = new FrameReader({ onFrame (kind, id, buf, start, end) { frames.push({ kind, id, body: Buffer.from(buf.subarray(start, end)) }) } })
  socket.on('data', (c: Buffer) => { reader.push(c) })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const w = new FrameWriter(socket)
  if (hello) w.frame(FrameKind.HELLO, 0, packr.pack({ versions: [1] }))
  return { socket, w, frames, closed }
}

/** An engine that records what happens and answers only when told. */
function manualEngine (): NativeEngine & { streams: WorkerStream[], cancelled: number[] } {
  const streams: WorkerStream[] = []
  const cancelled: number[] = []
  return {
    models: ['m'],
    streams,
    cancelled,
    start (_req, stream) {
      streams.push(stream)
      stream.onCancel = (s) => { cancelled.push(s.id) }
    }
  }
}

test('a connection that skips the handshake or sends junk is closed with an error frame; the server keeps serving', { timeout: 10_000 }, async () => {
  const engine = manualEngine()
  const worker = await startNativeWorker(engine)
  try {
    const a = await rawClient(worker.port, false)
    a.w.frame(FrameKind.REQUEST, 1, encodeRequest({ model: 'm', endpoint: 'chat' }))
    await a.closed
    const err = a.frames.find((f) => f.kind === FrameKind.ERROR)!
    assert.equal(err.id, 0)
    assert.match(String(decodeBody(err.body, 'error').message), /expected a hello frame first, got request/)

    const b = await rawClient(worker.port)
    b.socket.write(Buffer.from([0, 0, 0, 9, 0xee, 1, 2, 3, 4, 5, 6, 7, 8]))
    await b.closed
    assert.match(String(decodeBody(b.frames.find((f) => f.kind === FrameKind.ERROR)!.body, 'error').message), /unknown kind 238/)

    const c = await rawClient(worker.port, false)
    c.w.frame(FrameKind.HELLO, 0, packr.pack({ versions: [7, 8] }))
    await c.closed
    assert.match(String(decodeBody(c.frames.find((f) => f.kind === FrameKind.ERROR)!.body, 'error').message), /version\(s\) \[7,8\]; this worker speaks 1/)

    assert.equal(worker.stats().protocolErrors, 3)
    const up = new NativeUpstream(worker.url)
    const run = openCollect(up, { ...chat('x', 1), model: 'm' })
    await waitFor(() => engine.streams.length === 1, 2000, 'request')
    engine.streams[0]!.finish('stop', { promptTokens: 1, completionTokens: 0, cachedTokens: 0 }, 'ok')
    const o = await run.done
    assert.equal(o.text, 'ok')
    await up.close()
  } finally {
    await worker.close(0)
  }
})

test('ping is answered with pong carrying the same id', { timeout: 5000 }, async () => {
  const worker = await startNativeWorker(manualEngine())
  try {
    const c = await rawClient(worker.port)
    c.w.frame(FrameKind.PING, 42)
    await waitFor(() => c.frames.some((f) => f.kind === FrameKind.PONG), 2000, 'pong')
    assert.equal(c.frames.find((f) => f.kind === FrameKind.PONG)!.id, 42)
    c.socket.destroy()
  } finally {
    await worker.close(0)
  }
})

test('cancel and disconnect reach the engine (onCancel, signal); later writes are ignored', { timeout: 10_000 }, async () => {
  const engine = manualEngine()
  const worker = await startNativeWorker(engine)
  try {
    const c = await rawClient(worker.port)
    c.w.frame(FrameKind.REQUEST, 1, encodeRequest({ model: 'm', endpoint: 'chat' }))
    c.w.frame(FrameKind.REQUEST, 2, encodeRequest({ model: 'm', endpoint: 'chat' }))
    await waitFor(() => engine.streams.length === 2, 2000, 'requests')
    const signal = engine.streams[1]!.signal
    c.w.frame(FrameKind.CANCEL, 1)
    await waitFor(() => engine.cancelled.length === 1, 2000, 'cancel')
    assert.deepEqual(engine.cancelled, [1])
    engine.streams[0]!.write('late')
    assert.equal(engine.streams[0]!.closed, true)
    c.socket.destroy()
    await waitFor(() => engine.cancelled.length === 2, 2000, 'disconnect cancels the rest')
    assert.equal(signal.aborted, true)
    assert.equal(worker.stats().openStreams, 0)
    assert.equal(c.frames.filter((f) => f.kind === FrameKind.ITEM).length, 0)
  } finally {
    await worker.close(0)
  }
})

test('an engine that throws refuses the request with an error frame; the connection stays up', { timeout: 5000 }, async () => {
  const worker = await startNativeWorker({ models: [], start () { throw new Error('no capacity') } })
  const up = new NativeUpstream(worker.url)
  try {
    const o = await openCollect(up, chat('x', 1)).done
    assert.equal(o.error?.reason, 'worker_error')
    assert.equal(o.error?.workerCode, 'SWY_ERR_INTERNAL')
    assert.match(o.error!.message, /no capacity/)
    assert.equal(up.stats().connectionFailures, 0)
  } finally {
    await up.close()
    await worker.close(0)
  }
})

test('close(grace) drains: GOAWAY, new streams refused as retryable, open ones finish, stragglers are cut at the grace', { timeout: 10_000 }, async () => {
  const engine = manualEngine()
  const worker = await startNativeWorker(engine)
  const c = await rawClient(worker.port)
  c.w.frame(FrameKind.REQUEST, 1, encodeRequest({ model: 'm', endpoint: 'chat' }))
  c.w.frame(FrameKind.REQUEST, 2, encodeRequest({ model: 'm', endpoint: 'chat' }))
  await waitFor(() => engine.streams.length === 2, 2000, 'requests')
  const t0 = performance.now()
  const closing = worker.close(300)
  await waitFor(() => c.frames.some((f) => f.kind === FrameKind.GOAWAY), 2000, 'goaway')
  c.w.frame(FrameKind.REQUEST, 3, encodeRequest({ model: 'm', endpoint: 'chat' }))
  await waitFor(() => c.frames.some((f) => f.kind === FrameKind.ERROR && f.id === 3), 2000, 'refusal')
  const refusal = decodeBody(c.frames.find((f) => f.kind === FrameKind.ERROR && f.id === 3)!.body, 'error')
  assert.equal(refusal.code, 'SWY_ERR_SHUTTING_DOWN')
  assert.equal(refusal.retryable, true)
  engine.streams[0]!.finish('stop', null, 'done')
  await closing
  await c.closed
  const ms = performance.now() - t0
  assert.ok(ms >= 250 && ms < 2000, `closed after ${ms} ms`)
  assert.ok(c.frames.some((f) => f.kind === FrameKind.END && f.id === 1), 'stream 1 finished')
  assert.deepEqual(engine.cancelled, [2], 'stream 2 was cut at the grace')
})

test('iterableEngine: async generator engines stream, and see the abort on cancel', { timeout: 10_000 }, async () => {
  let aborted = false
  const worker = await startNativeWorker(iterableEngine(['m'], async function * (req, signal) {
    signal.addEventListener('abort', () => { aborted = true })
    const n = req.sampling?.maxTokens ?? 3
    for (let i = 0; i < n; i++) {
      if (signal.aborted) return
      yield { text: `t${i} `, tokenIds: Uint32Array.of(i), finishReason: null, usage: null }
      await new Promise((resolve) => setTimeout(resolve, n > 10 ? 20 : 0))
    }
    yield { text: null, tokenIds: null, finishReason: 'length', usage: { promptTokens: 1, completionTokens: n, cachedTokens: 0 } }
  }))
  const up = new NativeUpstream(worker.url)
  try {
    const o = await openCollect(up, { ...chat('x', 3), model: 'm', returnTokenIds: true }).done
    assert.equal(o.text, 't0 t1 t2 ')
    assert.deepEqual(o.tokenIds, [0, 1, 2])
    assert.equal(o.finishReason, 'length')
    assert.deepEqual(o.usage, { promptTokens: 1, completionTokens: 3, cachedTokens: 0 })
    const run = openCollect(up, { ...chat('x', 1000), model: 'm' }, (s) => { s.cancel() })
    assert.equal((await run.done).error?.reason, 'cancelled')
    await waitFor(() => aborted, 2000, 'abort seen by the generator')
  } finally {
    await up.close()
    await worker.close(0)
  }
})

test('the worker enforces a request\'s deadline itself: the stream ends with a timeout error and the engine is cancelled', { timeout: 10_000 }, async () => {
  const engine = manualEngine()
  const worker = await startNativeWorker(engine)
  try {
    // A raw gateway that never expires anything itself: only the worker can end this stream.
    const c = await rawClient(worker.port)
    c.w.frame(FrameKind.REQUEST, 1, encodeRequest({ model: 'm', endpoint: 'chat', deadlineMs: 120 }))
    c.w.frame(FrameKind.REQUEST, 3, encodeRequest({ model: 'm', endpoint: 'chat' }))
    const t0 = performance.now()
    await waitFor(() => engine.cancelled.includes(1), 3000)
    const took = performance.now() - t0
    assert.ok(took >= 100 && took < 1000, `expired after ${took.toFixed(0)} ms (deadline 120 ms)`)
    await waitFor(() => c.frames.some((f) => f.kind === FrameKind.ERROR && f.id === 1), 1000)
    const body = decodeBody(c.frames.find((f) => f.kind === FrameKind.ERROR && f.id === 1)!.body, 'error')
    assert.equal(body.code, 'SWY_ERR_NATIVE_TIMEOUT')
    assert.equal(body.retryable, false)
    assert.equal(body.status, 504)
    assert.equal(engine.cancelled.includes(3), false, 'a stream without a deadline is left alone')
    assert.equal(worker.stats().streamsExpired, 1)
    assert.equal(worker.stats().openStreams, 1)
    engine.streams.find((s) => s.id === 3)!.end()
    c.socket.destroy()
  } finally {
    await worker.close(100)
  }
})
