import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { startGateway } from '../fixtures/gateway.js'

/**
 * A worker that answers every request with the same crafted head (custom, repeated, odd-case,
 * latin1 and hop-by-hop headers) and a body framed by Content-Length or chunked.
 */
async function craftedWorker (chunked: boolean): Promise<{ url: string, close: () => Promise<void> }> {
  const body = '{"id":"x","object":"chat.completion","choices":[]}'
  const fields = 'Content-Type: application/json\r\nX-Served-By: crafted\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nX-Odd:  spaced \t\r\nX-Latin: caf\xe9\r\n' +
    'Connection: keep-alive\r\nKeep-Alive: timeout=30\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nX-Request-Id: from-worker\r\nTrailer: x-t\r\nProxy-Authenticate: Basic\r\n'
  const answer = chunked
    ? `HTTP/1.1 200 OK\r\n${fields}Transfer-Encoding: chunked\r\n\r\n${(10).toString(16)}\r\n${body.slice(0, 10)}\r\n${(body.length - 10).toString(16)}\r\n${body.slice(10)}\r\n0\r\n\r\n`
    : `HTTP/1.1 200 OK\r\n${fields}Content-Length: ${body.length}\r\n\r\n${body}`
  const sockets = new Set<Socket>()
  const server: Server = createServer(socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    let seen = ''
    socket.on('data', (d: Buffer) => {
      seen += d.toString('latin1')
      // One answer per whole request (head + Content-Length body).
      for (;;) {
        const end = seen.indexOf('\r\n\r\n')
        if (end < 0) return
        const n = Number(/content-length: *(\d+)/i.exec(seen.slice(0, end))?.[1] ?? 0)
        if (seen.length < end + 4 + n) return
        seen = seen.slice(end + 4 + n)
        socket.write(Buffer.from(answer, 'latin1'))
      }
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

/** One raw request; the answer's head as [lowercase name, value] lines and its body (chunked or not). */
async function ask (url: string, request: string): Promise<{ status: number, fields: string[], body: string }> {
  const u = new URL(url)
  const socket = connect(Number(u.port), u.hostname)
  let text = ''
  return await new Promise((resolve, reject) => {
    socket.on('error', reject)
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) return
      const lines = text.slice(0, end).split('\r\n')
      const fields = lines.slice(1).map(l => { const i = l.indexOf(':'); return `${l.slice(0, i).toLowerCase()}: ${l.slice(i + 1).replace(/^[ \t]+|[ \t]+$/g, '')}` })
      const rest = text.slice(end + 4)
      let body: string | null = null
      const length = fields.find(f => f.startsWith('content-length: '))
      if (length !== undefined) {
        const n = Number(length.slice(16))
        if (rest.length >= n) body = rest.slice(0, n)
      } else if (rest.endsWith('0\r\n\r\n')) {
        body = ''
        let at = 0
        for (;;) {
          const eol = rest.indexOf('\r\n', at)
          const size = parseInt(rest.slice(at, eol), 16)
          if (size === 0) break
          body += rest.slice(eol + 2, eol + 2 + size)
          at = eol + 2 + size + 2
        }
      }
      if (body === null) return
      socket.destroy()
      resolve({ status: Number(lines[0]!.split(' ')[1]), fields, body })
    })
    socket.write(request)
  })
}

const doc = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 })
/** Served by the fast server (Content-Length body). */
const fastRequest = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: rid-1\r\nContent-Length: ${doc.length}\r\n\r\n${doc}`
/** Handed to node:http (a chunked body): the ServerResponse path. */
const nodeRequest = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: rid-1\r\nTransfer-Encoding: chunked\r\n\r\n${doc.length.toString(16)}\r\n${doc}\r\n0\r\n\r\n`

for (const chunked of [false, true]) {
  test(`a worker's answer head (${chunked ? 'chunked' : 'Content-Length'}) reaches the client with its end-to-end headers as sent and without hop-by-hop ones, on the fast and node:http paths alike`, { timeout: 15_000 }, async () => {
    const worker = await craftedWorker(chunked)
    const gw = await startGateway(['--worker', `m=${worker.url}`])
    try {
      const fast = await ask(gw.url, fastRequest)
      const slow = await ask(gw.url, nodeRequest)
      for (const r of [fast, slow]) {
        assert.equal(r.status, 200)
        assert.equal(r.body, '{"id":"x","object":"chat.completion","choices":[]}')
        const endToEnd = r.fields.filter(f => /^(content-type|x-served-by|set-cookie|x-odd|x-latin|x-request-id):/.test(f))
        assert.deepEqual(endToEnd, ['content-type: application/json', 'x-served-by: crafted', 'set-cookie: a=1', 'set-cookie: b=2', 'x-odd: spaced', 'x-latin: caf\xe9', 'x-request-id: rid-1'])
        assert.deepEqual(r.fields.filter(f => /^(trailer|proxy-authenticate|date: Thu, 01 Jan 1970)/.test(f)), [], 'hop-by-hop headers and the worker\'s Date stay behind')
        assert.equal(r.fields.filter(f => f.startsWith('date: ')).length, 1, 'one Date, the gateway\'s')
        assert.equal(r.fields.filter(f => f.startsWith('content-length: ') || f.startsWith('transfer-encoding: ')).length, 1, 'one framing header')
        if (!chunked) assert.ok(r.fields.includes('content-length: 50'), 'a Content-Length answer keeps its length')
      }
    } finally {
      await gw.close()
      await worker.close()
    }
  })
}
