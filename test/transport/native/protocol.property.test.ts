import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  FrameKind, FrameReader, FrameWriter, HEADER_BYTES, NativeProtocolError, decodeItem, decodeRequest, decodeBody, encodeRequest, packr
} from '../../../src/transport/native/index.js'
import type { FrameKindValue, NativeRequest, ResponseItem } from '../../../src/transport/native/index.js'

interface Frame { kind: FrameKindValue, id: number, body: Buffer }

/** A socket stand-in that collects what the writer sends. */
function capture (): { socket: any, bytes: () => Buffer } {
  const chunks: Buffer[] = []
  return {
    socket: { destroyed: false, write (b: Buffer) { chunks.push(Buffer.from(b)); return true } },
    bytes: () => Buffer.concat(chunks)
  }
}

function collect (max?: number): { reader: FrameReader, frames: Frame[] } {
  const frames: Frame[] = []
  const reader = new FrameReader({ onFrame (kind, id, buf, start, end) { frames.push({ kind, id, body: Buffer.from(buf.subarray(start, end)) }) } }, max)
  return { reader, frames }
}

const frameArb = fc.record({
  kind: fc.constantFrom(...Object.values(FrameKind)),
  id: fc.integer({ min: 0, max: 0xffffffff }),
  body: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a))
})

function encodeAll (frames: Frame[]): Buffer {
  const cap = capture()
  const w = new FrameWriter(cap.socket)
  w.corked = true
  for (const f of frames) w.frame(f.kind, f.id, f.body.length === 0 ? null : f.body)
  w.corked = false
  w.flush()
  return cap.bytes()
}

test('frames round-trip through writer and reader however the bytes are chunked', () => {
  fc.assert(fc.property(fc.array(frameArb, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 40 }), (frames, cuts) => {
    const bytes = encodeAll(frames)
    const { reader, frames: got } = collect()
    let off = 0
    let i = 0
    while (off < bytes.length) {
      const n = cuts[i++ % cuts.length]!
      reader.push(bytes.subarray(off, off + n))
      off += n
    }
    assert.equal(reader.pendingBytes, 0)
    // fast-check records have a null prototype: compare as plain objects.
    assert.deepEqual(got, frames.map((f) => ({ ...f })))
  }), { numRuns: 300, interruptAfterTimeLimit: 5000 })
})

test('a frame split at every byte boundary decodes the same', () => {
  const frames: Frame[] = [
    { kind: FrameKind.REQUEST, id: 7, body: encodeRequest({ model: 'm', endpoint: 'chat', tokenIds: Uint32Array.from([1, 2, 3, 0xffffffff]), messages: [{ role: 'user', content: 'héllo' }] }) },
    { kind: FrameKind.END, id: 7, body: Buffer.alloc(0) },
    { kind: FrameKind.PING, id: 1, body: Buffer.alloc(0) }
  ]
  const bytes = encodeAll(frames)
  for (let a = 0; a <= bytes.length; a++) {
    for (const b of [a, Math.min(bytes.length, a + 1), Math.min(bytes.length, a + 5)]) {
      const { reader, frames: got } = collect()
      reader.push(bytes.subarray(0, a))
      reader.push(bytes.subarray(a, b))
      reader.push(bytes.subarray(b))
      assert.deepEqual(got, frames, `split at ${a}/${b}`)
    }
  }
})

const itemArb = fc.record({
  text: fc.option(fc.string({ unit: 'grapheme', maxLength: 200 }), { nil: null }),
  tokenIds: fc.option(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 80 }), { nil: null }),
  finishReason: fc.option(fc.constantFrom('stop', 'length', 'abort'), { nil: null }),
  usage: fc.option(fc.record({
    promptTokens: fc.integer({ min: 0, max: 0xffffffff }),
    completionTokens: fc.integer({ min: 0, max: 0xffffffff }),
    cachedTokens: fc.integer({ min: 0, max: 0xffffffff })
  }), { nil: null })
})

test('items round-trip, text of any script and token ids of any u32 value', () => {
  fc.assert(fc.property(fc.array(itemArb, { minLength: 1, maxLength: 10 }), (items) => {
    const cap = capture()
    const w = new FrameWriter(cap.socket)
    w.corked = true
    items.forEach((it, i) => w.item(i + 1, it.text, it.tokenIds, -1, it.finishReason, it.usage))
    w.corked = false
    w.flush()
    const { reader, frames } = collect()
    reader.push(cap.bytes())
    assert.equal(frames.length, items.length)
    frames.forEach((f, i) => {
      assert.equal(f.kind, FrameKind.ITEM)
      assert.equal(f.id, i + 1)
      const out: ResponseItem = { text: null, tokenIds: null, finishReason: null, usage: null }
      decodeItem(f.body, 0, f.body.length, out)
      const want = items[i]!
      assert.equal(out.text, want.text === '' ? '' : want.text)
      assert.deepEqual(out.tokenIds === null ? null : Array.from(out.tokenIds), want.tokenIds)
      assert.equal(out.finishReason, want.finishReason)
      assert.deepEqual(out.usage, want.usage === null ? null : { ...want.usage })
    })
  }), { numRuns: 300, interruptAfterTimeLimit: 5000 })
})

test('an item encoded by a generic msgpack encoder decodes too (other-language workers)', () => {
  const ids = Buffer.alloc(8)
  ids.writeUInt32LE(5, 0)
  ids.writeUInt32LE(70000, 4)
  const out: ResponseItem = { text: null, tokenIds: null, finishReason: null, usage: null }
  const packed = packr.pack(['abc', ids, 'stop', [300, 2, 70000], 'a future field'])
  decodeItem(packed, 0, packed.length, out)
  assert.equal(out.text, 'abc')
  assert.deepEqual(Array.from(out.tokenIds!), [5, 70000])
  assert.deepEqual(out.usage, { promptTokens: 300, completionTokens: 2, cachedTokens: 70000 })
})

test('requests round-trip, token ids as little-endian bytes', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 500 }), fc.string(), fc.integer({ min: -10, max: 10 }), (ids, prompt, priority) => {
    const req: NativeRequest = {
      model: 'm', endpoint: 'completions', tokenIds: Uint32Array.from(ids), prompt, priority, deadlineMs: 1000, requestId: 'r1',
      sampling: { maxTokens: 5, stop: ['x'], temperature: 0.5 }, returnTokenIds: true, extra: { top_k: 3 }
    }
    const { reader, frames } = collect()
    const cap = capture()
    const w = new FrameWriter(cap.socket)
    w.frame(FrameKind.REQUEST, 3, encodeRequest(req))
    w.flush()
    reader.push(cap.bytes())
    const back = decodeRequest(decodeBody(frames[0]!.body, 'request'))
    assert.deepEqual(Array.from(back.tokenIds!), ids)
    assert.deepEqual({ ...back, tokenIds: null, priority: back.priority ?? 0 }, { ...req, tokenIds: null })
  }), { numRuns: 100, interruptAfterTimeLimit: 5000 })
})

test('an oversized frame fails with a clear SWY_ERR_NATIVE_FRAME_TOO_LARGE error before its body arrives', () => {
  const { reader } = collect(1024)
  const head = Buffer.alloc(HEADER_BYTES)
  head.writeUInt32BE(5 + 4096, 0)
  head[4] = FrameKind.REQUEST
  assert.throws(() => reader.push(head.subarray(0, 4)), (err: any) => {
    assert.ok(err instanceof NativeProtocolError)
    assert.equal(err.code, 'SWY_ERR_NATIVE_FRAME_TOO_LARGE')
    assert.match(err.message, /4101 bytes exceeds the 1024-byte frame size limit/)
    return true
  })
})

test('corrupt frames (bad length, unknown kind, bad item body) fail with SWY_ERR_NATIVE_PROTOCOL', () => {
  const short = Buffer.from([0, 0, 0, 2, 1, 0])
  assert.throws(() => collect().reader.push(short), (e: any) => e.code === 'SWY_ERR_NATIVE_PROTOCOL' && /shorter than a frame header/.test(e.message))
  const badKind = Buffer.from([0, 0, 0, 5, 99, 0, 0, 0, 1])
  assert.throws(() => collect().reader.push(badKind), (e: any) => e.code === 'SWY_ERR_NATIVE_PROTOCOL' && /unknown kind 99/.test(e.message))
  // Decoded in place, inside bytes that would parse (nils): nothing outside [start, end) is read.
  const attempt = (buf: Buffer, start: number, end: number): unknown => {
    const out: ResponseItem = { text: null, tokenIds: null, finishReason: null, usage: null }
    try {
      decodeItem(buf, start, end, out)
      return { text: out.text, ids: out.tokenIds === null ? null : Array.from(out.tokenIds), finish: out.finishReason, usage: out.usage }
    } catch (err) {
      assert.ok(err instanceof NativeProtocolError, String(err))
      return 'threw'
    }
  }
  fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (junk) => {
    const alone = attempt(Buffer.from(junk), 0, junk.length)
    const padded = Buffer.concat([Buffer.from([0x94, 0xc0, 0xc0]), Buffer.from(junk), Buffer.alloc(6, 0xc0)])
    assert.deepEqual(attempt(padded, 3, 3 + junk.length), alone)
  }), { numRuns: 500 })
  const item = packr.pack(['abc', null, null, null])
  assert.equal(attempt(item.subarray(0, item.length - 1), 0, item.length - 1), 'threw', 'a truncated item throws')
  assert.equal(attempt(Buffer.concat([item.subarray(0, item.length - 1), Buffer.from([0xc0])]), 0, item.length - 1), 'threw', 'a truncated item throws even when the next byte would complete it')
})

test('frames larger than the write arena, and many small ones past it, arrive whole and in order (corked or not)', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 200_000 }), { minLength: 1, maxLength: 12 }), fc.boolean(), (sizes, corked) => {
    const cap = capture()
    const w = new FrameWriter(cap.socket)
    w.corked = corked
    const frames: Frame[] = sizes.map((n, i) => ({ kind: FrameKind.REQUEST, id: i + 1, body: Buffer.alloc(n, i + 1) }))
    for (const f of frames) {
      w.frame(f.kind, f.id, f.body.length === 0 ? null : f.body)
      for (let k = 0; k < 50; k++) w.frame(FrameKind.CANCEL, 1000 + k)
    }
    w.corked = false
    w.flush()
    const { reader, frames: got } = collect()
    reader.push(cap.bytes())
    const big = got.filter((f) => f.kind === FrameKind.REQUEST)
    assert.equal(got.length, frames.length * 51)
    assert.deepEqual(big.map((f) => [f.id, f.body.length, f.body[0]]), frames.map((f) => [f.id, f.body.length, f.body[0]]))
    assert.ok(big.every((f, i) => f.body.every((b) => b === (i + 1) % 256)))
  }), { numRuns: 40, interruptAfterTimeLimit: 8000 })
})
