// A connection's writes of one tick leave in one socket write, in order, and the backpressure
// signals stay true: a full socket says so, and a response that waits for 'drain' gets it.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createServer as createHttpServer } from 'node:http'
import type { Socket } from 'node:net'
import { test } from 'node:test'
import { request } from 'undici'
import { ChunkWriter } from '../../../src/frontend/chunk-writer.js'
import { answerClientError, Http1Server, type HttpReq, type HttpRes } from '../../../src/frontend/http1/server.js'
import { handleWrites } from '../../../src/shared/handle-write.js'
import { TickWrites } from '../../../src/frontend/http1/tick-writes.js'
import { resetByPeer, withPair } from '../../shared/loopback.js'

type Handle = Record<string, (...a: unknown[]) => unknown>
const HANDLE_WRITES = ['writeBuffer', 'writev', 'writeLatin1String', 'writeUtf8String', 'writeAsciiString', 'writeUcs2String']

/**
 * Counts the writes that reach the socket's libuv handle, whether through socket.write or
 * directly (`n`), and those through socket.write (`viaNode`); the real writes still run.
 */
function countWrites (socket: Socket): { n: number, viaNode: number } {
  const count = { n: 0, viaNode: 0 }
  const handle = (socket as unknown as { _handle: Handle })._handle
  for (const name of HANDLE_WRITES) {
    const real = handle[name]!
    handle[name] = (...a: unknown[]) => { count.n++; return real.apply(handle, a) }
  }
  const write = socket.write.bind(socket) as (...a: unknown[]) => boolean
  socket.write = ((...a: unknown[]) => { count.viaNode++; return write(...a) }) as Socket['write']
  return count
}

async function readAll (peer: Socket, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = []
  let got = 0
  peer.resume()
  return await new Promise(resolve => {
    peer.on('data', (d: Buffer) => {
      parts.push(d)
      got += d.length
      if (got >= bytes) resolve(Buffer.concat(parts))
    })
  })
}

const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

test('pieces queued in one tick reach the socket as one write, in order; one piece is written as it is', async () => {
  await withPair(async (client, peer) => {
    const out = new TickWrites(client)
    const writes = countWrites(client)
    out.send(Buffer.from('one,'))
    out.send(Buffer.from('two,'))
    out.send(Buffer.from('three'))
    assert.equal(writes.n, 0, 'nothing is written before the tick ends')
    assert.equal(out.bytes, 13)
    await tick()
    assert.equal(writes.n, 1, 'three pieces, one write')
    assert.equal(out.bytes, 0)
    out.send(Buffer.from('|four'))
    await tick()
    assert.equal(writes.n, 2)
    assert.equal((await readAll(peer, 18)).toString(), 'one,two,three|four')
  }, { pausePeer: true })
})

test('sendNow writes at once when nothing is queued, and behind the queued pieces otherwise', async () => {
  await withPair(async (client, peer) => {
    const out = new TickWrites(client)
    const writes = countWrites(client)
    out.sendNow(Buffer.from('a'))
    assert.equal(writes.n, 1, 'an empty queue: written synchronously')
    out.send(Buffer.from('b'))
    out.sendNow(Buffer.from('c'))
    assert.equal(writes.n, 2, 'the queued piece and this one: one write, now')
    await tick()
    assert.equal(writes.n, 2, 'nothing left for the tick')
    assert.equal((await readAll(peer, 3)).toString(), 'abc')
  }, { pausePeer: true })
})

test('past 16 KiB queued in one tick the bytes are written at once; large ones as a writev, in order', async () => {
  await withPair(async (client, peer) => {
    const out = new TickWrites(client)
    const writes = countWrites(client)
    const pieces: Buffer[] = []
    for (let i = 0; i < 40; i++) pieces.push(Buffer.alloc(1000, 97 + (i % 26)))
    for (const p of pieces) out.send(p)
    assert.ok(writes.n >= 1, 'written before the tick ended')
    assert.ok(out.bytes < 16 * 1024, `queue held ${out.bytes} bytes`)
    await tick()
    assert.deepEqual(await readAll(peer, 40_000), Buffer.concat(pieces))
  }, { pausePeer: true })
})

/** Writes `piece` until the connection is blocked (the peer does not read); returns the bytes written. */
function fill (out: TickWrites, piece: Buffer): number {
  let sent = 0
  while (!out.blocked && sent < 256 * 1024 * 1024) {
    out.send(piece)
    out.flush()
    sent += piece.length
  }
  assert.equal(out.blocked, true, 'the kernel buffers filled up')
  return sent
}

test('a peer that stops reading makes the connection blocked, and backlogOver reports past the limit', async () => {
  await withPair(async (client, peer) => {
    const out = new TickWrites(client)
    const piece = Buffer.alloc(64 * 1024, 120)
    fill(out, piece)
    const backlog = out.backlog
    assert.ok(backlog > 0, 'the bytes the kernel did not take are counted')
    assert.equal(out.backlogOver(backlog), false, 'at the limit is not over it')
    out.send(piece)
    assert.equal(out.backlog, backlog + piece.length)
    assert.equal(out.backlogOver(backlog + 1), true, 'queued bytes count')
    assert.equal(out.backlogOver(backlog + piece.length), false)
    peer.destroy()
  }, { pausePeer: true })
})

test('a lone write goes to the socket handle, not through socket.write, where node has its stream binding', async () => {
  assert.notEqual(handleWrites, null, 'process.binding("stream_wrap") is usable on this node')
  await withPair(async (client, peer) => {
    const out = new TickWrites(client)
    const writes = countWrites(client)
    out.sendNow(Buffer.from('direct'))
    out.send(Buffer.from('|tick'))
    await tick()
    assert.deepEqual(writes, { n: 2, viaNode: 0 })
    assert.equal((await readAll(peer, 11)).toString(), 'direct|tick')
  }, { pausePeer: true })
})

test('writes that libuv queues, mixed with writes node buffers, arrive whole and in order; onDrain fires once all are out', async () => {
  await withPair(async (client, peer) => {
    let drains = 0
    const out = new TickWrites(client, () => { drains++ })
    client.on('drain', () => { out.socketDrained() }) // as the server's connection does
    const parts: Buffer[] = []
    let seq = 0
    const piece = (size: number): Buffer => {
      const b = Buffer.alloc(size)
      for (let i = 0; i < size; i += 4) b.writeUInt32BE(seq++ >>> 0, i)
      parts.push(b)
      return b
    }
    let sent = 0
    while (!out.blocked && sent < 256 * 1024 * 1024) {
      out.sendNow(piece(64 * 1024))
      sent += 64 * 1024
    }
    const writes = countWrites(client)
    // While blocked: small direct writes, then a tick larger than the flush size (a corked
    // writev through node), then more small ones.
    for (let i = 0; i < 3; i++) out.sendNow(piece(1024))
    assert.deepEqual(writes, { n: 3, viaNode: 0 }, 'queued behind libuv\'s, still written to the handle')
    for (let i = 0; i < 20; i++) out.send(piece(2000))
    for (let i = 0; i < 3; i++) out.sendNow(piece(1024))
    assert.ok(writes.viaNode > 0, 'the large tick went through node')
    assert.equal(drains, 0, 'nothing drained while the peer reads nothing')
    const want = Buffer.concat(parts)
    const got = await readAll(peer, want.length)
    assert.equal(got.length, want.length)
    assert.ok(got.equals(want), 'every byte, in the order written')
    await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(out.blocked, false)
    assert.equal(out.backlog, 0)
    assert.ok(drains >= 1, 'onDrain fired once the kernel took everything')
  }, { pausePeer: true })
})

test('a write to a peer that reset the connection destroys the socket with the errno, without throwing', async () => {
  await withPair(async (client, peer) => {
    const out = new TickWrites(client)
    const closed = await resetByPeer(client, peer)
    for (let i = 0; i < 5 && !client.destroyed; i++) {
      out.sendNow(Buffer.alloc(1024, 1))
      await tick()
    }
    const e = await closed()
    assert.ok(e !== undefined && /^(EPIPE|ECONNRESET)$/.test(e.code ?? '') && e.syscall === 'write', `closed with ${String(e)} (${e?.syscall})`)
    assert.doesNotThrow(() => { out.sendNow(Buffer.from('after')) }, 'a write after the close is dropped quietly')
  }, { pausePeer: true })
})

/** The fast server with a handler per path. */
async function withFastServer (handler: (req: HttpReq, res: HttpRes) => void, fn: (port: number) => Promise<void>): Promise<void> {
  const fallback = createHttpServer({ requestTimeout: 0 }, handler)
  fallback.on('clientError', answerClientError)
  const server = new Http1Server(handler, fallback, { bodyLimit: 1024, keepAliveTimeout: 5000, headersTimeout: 5000 })
  await server.listen(0, '127.0.0.1')
  try {
    await fn(server.address().port)
  } finally {
    server.closeAllConnections()
    await server.close()
  }
}

test('a streamed answer written until write() returns false, resumed on drain, reaches a slow client whole', async () => {
  const piece = Buffer.alloc(48 * 1024)
  for (let i = 0; i < piece.length; i++) piece[i] = (i * 31) & 0xff
  const pieces = 64
  let falses = 0
  await withFastServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    let i = 0
    const more = (): void => {
      while (i < pieces) {
        i++
        if (!res.write(piece)) { falses++; res.once('drain', more); return }
      }
      res.end()
    }
    more()
  }, async (port) => {
    const res = await request(`http://127.0.0.1:${port}/`)
    const hash = createHash('sha256')
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer)
      await new Promise(resolve => setTimeout(resolve, 1))
    }
    const want = createHash('sha256')
    for (let i = 0; i < pieces; i++) want.update(piece)
    assert.equal(hash.digest('hex'), want.digest('hex'))
  })
  assert.ok(falses > 0, 'the client was slow enough to fill the socket')
})

test('SSE chunks and the head of one tick go out as one write on the fast server; the bytes parse as the chunks written', async () => {
  let writes: { n: number } | null = null
  await withFastServer((_req, res) => {
    writes = countWrites(res.socket!)
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const w = new ChunkWriter(res, 1 << 20)
    const text = Buffer.from('xx "hi"\n yy')
    for (let i = 0; i < 5; i++) w.writeJsonString(Buffer.from(`data: {"i":${i},"t":"`), text, 2, text.length - 2, Buffer.from('"}\n\n'))
    setImmediate(() => {
      assert.equal(writes!.n, 1, 'head and five chunks, one write')
      w.write('data: tail\n\n')
      res.end('data: [DONE]\n\n')
    })
  }, async (port) => {
    const res = await request(`http://127.0.0.1:${port}/`)
    assert.equal(res.headers['transfer-encoding'], 'chunked')
    const body = await res.body.text()
    const want = Array.from({ length: 5 }, (_, i) => `data: {"i":${i},"t":${JSON.stringify(' "hi"\n ')}}\n\n`).join('') + 'data: tail\n\ndata: [DONE]\n\n'
    assert.equal(body, want)
  })
  assert.equal(writes!.n, 2, 'the tail, the last chunk and the terminator: one more write')
})
