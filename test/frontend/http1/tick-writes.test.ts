// A connection's writes of one tick leave in one socket write, in order, and the backpressure
// signals stay true: a full socket says so, and a response that waits for 'drain' gets it.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createServer as createHttpServer } from 'node:http'
import { connect, createServer, type Socket } from 'node:net'
import { test } from 'node:test'
import { request } from 'undici'
import { ChunkWriter } from '../../../src/frontend/chunk-writer.js'
import { answerClientError, Http1Server, type HttpReq, type HttpRes } from '../../../src/frontend/http1/server.js'
import { TickWrites } from '../../../src/frontend/http1/tick-writes.js'

/**
 * Runs `fn` on a loopback pair, closed afterwards: `client` writes (through a TickWrites),
 * `peer` is the server's end (paused until read).
 */
async function withPair (fn: (client: Socket, peer: Socket) => Promise<void>): Promise<void> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const accepted = new Promise<Socket>(resolve => server.once('connection', resolve))
  const client = connect((server.address() as { port: number }).port, '127.0.0.1')
  try {
    await new Promise<void>(resolve => client.once('connect', resolve))
    const peer = await accepted
    peer.pause()
    await fn(client, peer)
  } finally {
    client.destroy()
    server.close()
  }
}

/** Counts the socket's write calls (the real write still runs). */
function countWrites (socket: Socket): { n: number } {
  const count = { n: 0 }
  const write = socket.write.bind(socket) as (...a: unknown[]) => boolean
  socket.write = ((...a: unknown[]) => { count.n++; return write(...a) }) as Socket['write']
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
  })
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
  })
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
  })
})

test('a peer that stops reading makes the connection blocked, and backlogOver reports past the limit', async () => {
  await withPair(async (client, peer) => {
    const out = new TickWrites(client)
    const piece = Buffer.alloc(64 * 1024, 120)
    let sent = 0
    while (!out.blocked && sent < 256 * 1024 * 1024) {
      out.send(piece)
      out.flush()
      sent += piece.length
    }
    assert.equal(out.blocked, true, 'the kernel buffers filled up')
    assert.equal(out.backlogOver(client.writableLength + 1), false, 'at the limit is not over it')
    out.send(piece)
    assert.equal(out.backlogOver(client.writableLength + 1), true, 'queued bytes count')
    assert.equal(out.backlogOver(client.writableLength + piece.length), false)
    peer.destroy()
  })
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
