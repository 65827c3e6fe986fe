import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { startGateway } from '../fixtures/gateway.js'

/**
 * A worker whose answer is a few MiB, written in uneven pieces (Content-Length or chunked), so the
 * gateway's pool reads it over many reads into its one shared read buffer while a slow client
 * holds it back: every byte must still arrive in order.
 */
async function bigWorker (body: Buffer, chunked: boolean): Promise<{ url: string, close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer(socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let seen = ''
    socket.on('data', async (d: Buffer) => {
      seen += d.toString('latin1')
      const end = seen.indexOf('\r\n\r\n')
      if (end < 0) return
      const n = Number(/content-length: *(\d+)/i.exec(seen.slice(0, end))?.[1] ?? 0)
      if (seen.length < end + 4 + n) return
      const head = seen.slice(0, end)
      seen = ''
      if (!head.startsWith('POST /v1/chat/completions ')) {
        // Health probes and the like.
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}')
        return
      }
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${chunked ? 'transfer-encoding: chunked' : `content-length: ${body.length}`}\r\n\r\n`)
      let at = 0
      let k = 0
      while (at < body.length) {
        const size = Math.min(body.length - at, 1000 + ((k++ * 7919) % 90_000))
        const piece = body.subarray(at, at + size)
        socket.write(chunked ? Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece)
        at += size
        if (k % 8 === 0) await sleep(1)
      }
      if (chunked) socket.write('0\r\n\r\n')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

for (const chunked of [false, true]) {
  test(`a ${chunked ? 'chunked' : 'Content-Length'} answer of 4 MiB reaches a slow client whole and in order through the fast path`, { timeout: 30_000 }, async () => {
    const body = Buffer.from(`{"data":"${randomBytes(3 * 1024 * 1024).toString('base64')}"}`)
    const worker = await bigWorker(body, chunked)
    const gw = await startGateway(['--worker', `m=${worker.url}`])
    try {
      // Two at once: two worker connections read into the pool's one buffer while either is paused.
      const one = async (): Promise<void> => {
        const res = await request(gw.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }) })
        assert.equal(res.statusCode, 200)
        const hash = createHash('sha256')
        let n = 0
        let got = 0
        for await (const c of res.body) {
          hash.update(c as Buffer)
          got += (c as Buffer).length
          // Slow: the gateway's socket backs up, and it pauses its read from the worker.
          if (++n % 4 === 0) await sleep(2)
        }
        assert.equal(got, body.length)
        assert.equal(hash.digest('hex'), createHash('sha256').update(body).digest('hex'))
      }
      await Promise.all([one(), one(), one()])
      await one()
    } finally {
      await gw.close()
      await worker.close()
    }
  })
}
