import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { connect, type Socket } from 'node:net'
import { request } from 'undici'
import { readBody } from '../../src/frontend/body.js'
import { headerLookup, upstreamHeaderBlock } from '../../src/frontend/headers.js'
import { headerPairs } from '../../src/transport/http.js'
import { answerClientError, hotHeader, Http1Request, Http1Response, Http1Server, sharesReads, type HttpReq, type HttpRes } from '../../src/frontend/http1/server.js'

/** Echoes what the handler saw: which path served it, method, url, a header, the body. */
async function echo (req: HttpReq, res: HttpRes): Promise<void> {
  let body: Buffer
  try {
    body = await readBody(req, 1024)
  } catch (err) {
    res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' })
    res.end((err as Error).message)
    return
  }
  if (req.url === '/later') {
    // Answered after other connections' reads have landed in the server's shared read buffer.
    await new Promise(resolve => setTimeout(resolve, 30))
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end(body)
    return
  }
  if (req.url === '/stream') {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (let i = 0; i < 3; i++) res.write(`data: ${i}\n\n`)
    res.end('data: [DONE]\n\n')
    return
  }
  if (req.url === '/hang') {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: started\n\n')
    res.on('close', () => { closedUnderway.push(res.writableEnded) })
    return
  }
  if (req.url === '/listeners') {
    const calls: string[] = []
    const b = (): void => { calls.push('b') }
    res.once('close', () => { calls.push('a') })
    res.on('close', b)
    res.on('close', () => { calls.push('c') })
    res.off('close', b)
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('ok')
    // A second 'close': the once-listener is gone, the other stays.
    if (res instanceof Http1Response) res.emit('close')
    listenerCalls.push(calls.join(','))
    return
  }
  if (req.url === '/headers') {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ fast: req instanceof Http1Request, headers: req.headers, raw: req.rawHeaders, hot: [hotHeader(req, 'x-request-id'), hotHeader(req, 'x-priority'), hotHeader(req, 'authorization')], lookup: LOOKED_UP.map(n => headerLookup(req).get(n) ?? null), upstream: upstreamHeaderBlock(req, 'rid', false, null, false) }))
    return
  }
  const doc = JSON.stringify({ fast: req instanceof Http1Request, method: req.method, url: req.url, x: req.headers['x-test'] ?? null, body: body.toString() })
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(doc)
}

const closedUnderway: boolean[] = []
const listenerCalls: string[] = []
const LOOKED_UP = ['x-session-id', 'x-request-id', 'x-priority', 'authorization', 'content-type', 'x-multi', 'user-agent', 'set-cookie', 'x-empty', 'x-latin', 'host', 'missing']

async function withServer (fn: (port: number, server: Http1Server) => Promise<void>, opts: { keepAliveTimeout?: number, headersTimeout?: number } = {}): Promise<void> {
  const handler = (req: HttpReq, res: HttpRes): void => { void echo(req, res) }
  const fallback = createServer({ requestTimeout: 0 }, handler)
  fallback.on('clientError', answerClientError)
  const server = new Http1Server(handler, fallback, { bodyLimit: 1024, keepAliveTimeout: opts.keepAliveTimeout ?? 5000, headersTimeout: opts.headersTimeout ?? 5000 })
  await server.listen(0, '127.0.0.1')
  try {
    await fn(server.address().port, server)
  } finally {
    server.closeAllConnections()
    await server.close()
  }
}

/** Raw client: writes `parts` (with a pause between them) and reads until `done(text)` or the socket closes. */
async function raw (port: number, parts: Array<string | Buffer>, done: (text: string) => boolean = () => false, pauseMs = 0): Promise<{ text: string, closed: boolean }> {
  const socket: Socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  let text = ''
  let closed = false
  const finished = new Promise<void>(resolve => {
    socket.on('data', (d: Buffer) => { text += d.toString('latin1'); if (done(text)) resolve() })
    socket.on('close', () => { closed = true; resolve() })
    socket.on('error', () => {})
  })
  for (const p of parts) {
    socket.write(p)
    if (pauseMs > 0) await new Promise(resolve => setTimeout(resolve, pauseMs))
  }
  await finished
  socket.destroy()
  return { text, closed }
}

/** Splits a stream of HTTP/1.1 responses (Content-Length or chunked) into their bodies. */
function bodies (text: string): Array<{ status: number, headers: Record<string, string>, body: string }> {
  const out: Array<{ status: number, headers: Record<string, string>, body: string }> = []
  let at = 0
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at)
    if (end < 0) break
    const lines = text.slice(at, end).split('\r\n')
    const status = Number(lines[0]!.split(' ')[1])
    const headers: Record<string, string> = {}
    for (const l of lines.slice(1)) { const i = l.indexOf(':'); headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim() }
    at = end + 4
    if (status === 100) continue
    let body = ''
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length'])
      if (text.length < at + n) break // not all here yet
      body = text.slice(at, at + n)
      at += n
    } else if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const eol = text.indexOf('\r\n', at)
        if (eol < 0) return out // not all here yet
        const size = parseInt(text.slice(at, eol), 16)
        at = eol + 2
        if (size === 0) { at += 2; break }
        if (text.length < at + size + 2) return out
        body += text.slice(at, at + size)
        at += size + 2
      }
    }
    out.push({ status, headers, body: Buffer.from(body, 'latin1').toString() })
  }
  return out
}

const countResponses = (n: number) => (t: string): boolean => bodies(t).length >= n

const post = (path: string, body: string, extra = ''): string =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`

test('http1: keep-alive serves several requests on one connection, fast path, with Date and keep-alive headers', { timeout: 10_000 }, async () => {
  await withServer(async (port) => {
    const { text } = await raw(port, [post('/a', '{"n":1}', 'X-Test: one\r\n')], countResponses(1))
    const [r] = bodies(text)
    assert.equal(r!.status, 200)
    assert.deepEqual(JSON.parse(r!.body), { fast: true, method: 'POST', url: '/a', x: 'one', body: '{"n":1}' })
    assert.ok(r!.headers.date !== undefined)
    assert.equal(r!.headers.connection, 'keep-alive')
    assert.equal(r!.headers['content-length'], String(Buffer.byteLength(r!.body)))
    // The same connection, three times in turn (undici keeps one socket alive).
    for (let i = 0; i < 3; i++) {
      const res = await request(`http://127.0.0.1:${port}/k${i}`, { method: 'POST', body: `b${i}` })
      assert.deepEqual(await res.body.json(), { fast: true, method: 'POST', url: `/k${i}`, x: null, body: `b${i}` })
    }
  })
})

test('http1: pipelined requests in one write are answered in order', { timeout: 10_000 }, async () => {
  await withServer(async (port) => {
    const { text } = await raw(port, [post('/1', 'a') + post('/2', 'bb') + 'GET /3 HTTP/1.1\r\nHost: x\r\n\r\n'], t => bodies(t).length === 3)
    assert.deepEqual(bodies(text).map(r => JSON.parse(r.body).url), ['/1', '/2', '/3'])
    assert.deepEqual(bodies(text).map(r => JSON.parse(r.body).body), ['a', 'bb', ''])
  })
})

test('http1: heads of 4-16 KiB, alone or pipelined behind another request, are served by the fast path', { timeout: 10_000 }, async () => {
  await withServer(async (port) => {
    for (const size of [4090, 4096, 6000, 15_000]) {
      const big = post('/big-head', 'b', `X-Test: ${'h'.repeat(size)}\r\n`)
      const { text } = await raw(port, [post('/small', 'a') + big], t => bodies(t).length === 2)
      assert.deepEqual(bodies(text).map(r => [JSON.parse(r.body).fast, JSON.parse(r.body).url, JSON.parse(r.body).x?.length ?? 0]), [[true, '/small', 0], [true, '/big-head', size]], `a ${size}-byte field`)
    }
  })
})

test('http1: heads and bodies split at every byte boundary, and random splits of pipelined requests, parse the same', { timeout: 30_000 }, async () => {
  await withServer(async (port) => {
    const msg = post('/split', '{"text":"héllo"}', 'X-Test: s\r\n')
    const bytes = Buffer.from(msg)
    for (let cut = 1; cut < bytes.length; cut += 7) {
      const { text } = await raw(port, [bytes.subarray(0, cut), bytes.subarray(cut)], countResponses(1), 5)
      assert.deepEqual(JSON.parse(bodies(text)[0]!.body), { fast: true, method: 'POST', url: '/split', x: 's', body: '{"text":"héllo"}' }, `split at ${cut}`)
    }
    for (let round = 0; round < 10; round++) {
      const n = 1 + Math.floor(Math.random() * 4)
      const sent = Array.from({ length: n }, (_, i) => `r${round}-${i}-${'x'.repeat(Math.floor(Math.random() * 300))}`)
      const all = Buffer.from(sent.map((b, i) => post(`/${i}`, b)).join(''))
      const parts: Buffer[] = []
      for (let at = 0; at < all.length;) { const k = 1 + Math.floor(Math.random() * 200); parts.push(all.subarray(at, at + k)); at += k }
      const { text } = await raw(port, parts, t => bodies(t).length === n, 1)
      assert.deepEqual(bodies(text).map(r => JSON.parse(r.body).body), sent)
    }
  })
})

test('http1: what a connection keeps of its reads (a body answered later, a split head, pipelined bytes) is not overwritten by other connections\' reads', { timeout: 15_000 }, async () => {
  await withServer(async (port) => {
    const mine = (c: string): string => c.repeat(40)
    const runs = await Promise.all(['a', 'b', 'c', 'd'].map(c => {
      const req = post('/later', `{"v":"${mine(c)}"}`)
      // The head in two parts, then the body, then a pipelined second request, with pauses between.
      return raw(port, [req.slice(0, 20), req.slice(20, req.length - 5), req.slice(req.length - 5) + post('/later', mine(c))], countResponses(2), 5)
    }))
    ;['a', 'b', 'c', 'd'].forEach((c, i) => {
      assert.deepEqual(bodies(runs[i]!.text).map(r => r.body), [`{"v":"${mine(c)}"}`, mine(c)], `connection ${c} got its own bytes back`)
    })
    // The node this suite runs on has the hooks: the shared buffer was in play above.
    assert.ok(sharesReads(), 'accepted sockets read into the shared buffer')
  })
})

test('http1: a client that half-closes its side is disconnected', { timeout: 10_000 }, async () => {
  await withServer(async (port) => {
    const socket = connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    socket.on('data', () => {})
    socket.end(post('/x', '{}'))
    await new Promise<void>(resolve => { socket.on('close', () => { resolve() }) })
  })
})

test('http1: odd requests go to node:http with the bytes already read: chunked body, Expect: 100-continue, HTTP/1.0', { timeout: 10_000 }, async () => {
  await withServer(async (port) => {
    const chunked = 'POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'
    let { text } = await raw(port, [chunked], countResponses(1))
    assert.deepEqual(JSON.parse(bodies(text)[0]!.body), { fast: false, method: 'POST', url: '/c', x: null, body: 'abcde' })
    // Expect: node:http answers 100 Continue before the body is sent.
    const sock = connect(port, '127.0.0.1')
    let got = ''
    sock.on('data', (d: Buffer) => { got += d.toString() })
    sock.write('POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n')
    for (let i = 0; i < 100 && !got.includes('100 Continue'); i++) await new Promise(resolve => setTimeout(resolve, 10))
    assert.match(got, /^HTTP\/1\.1 100 Continue/)
    sock.write('body')
    for (let i = 0; i < 100 && !got.includes('}'); i++) await new Promise(resolve => setTimeout(resolve, 10))
    sock.destroy()
    assert.deepEqual(JSON.parse(bodies(got)[0]!.body), { fast: false, method: 'POST', url: '/e', x: null, body: 'body' })
    ;({ text } = await raw(port, ['GET /old HTTP/1.0\r\n\r\n']))
    assert.match(text, /^HTTP\/1\.1 200/)
    assert.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).url, '/old')
    // A fast request first, then a chunked one on the same connection: handed over mid-connection.
    ;({ text } = await raw(port, [post('/first', 'x') + chunked], t => bodies(t).length === 2))
    assert.deepEqual(bodies(text).map(r => JSON.parse(r.body).fast), [true, false])
  })
})

test('http1: malformed, ambiguous and oversized heads get node:http\'s 400 / 431, and the server keeps serving', { timeout: 10_000 }, async () => {
  await withServer(async (port) => {
    const cases: Array<[string, number]> = [
      ['GARBAGE\r\n\r\n', 400],
      ['POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
      ['POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400],
      ['POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n', 400],
      ['GET /x HTTP/1.1\r\nHost: x\r\n folded: value\r\n\r\n', 400],
      // A bad field line just before the blank line, with a body behind it in the same read that reads as fields.
      ['POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\nBad Name: v\r\n\r\nX-Fine: ok\r\n\r\n', 400],
      ['POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\nX-Ctl: \x01\r\n\r\nX-Fine: ok\r\n\r\n', 400],
      [`GET /x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431]
    ]
    for (const [req, status] of cases) {
      const { text } = await raw(port, [req])
      assert.equal(Number(text.split(' ')[1]), status, JSON.stringify(req.slice(0, 60)))
    }
    const res = await request(`http://127.0.0.1:${port}/after`, { method: 'POST', body: 'ok' })
    assert.equal(res.statusCode, 200)
    await res.body.dump()
  })
})

test('http1: a streamed (chunked) answer, and a body over the limit answered without being read, then the connection closes', { timeout: 10_000 }, async () => {
  await withServer(async (port) => {
    const res = await request(`http://127.0.0.1:${port}/stream`, { method: 'POST', body: '' })
    assert.equal(res.headers['transfer-encoding'], 'chunked')
    assert.equal(await res.body.text(), 'data: 0\n\ndata: 1\n\ndata: 2\n\ndata: [DONE]\n\n')
    const { text, closed } = await raw(port, [`POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n${'z'.repeat(100)}`])
    assert.equal(bodies(text)[0]!.status, 413)
    assert.equal(closed, true)
  })
})

test('http1: a client that goes away mid-answer closes the response (its "close" fires before it ended)', { timeout: 10_000 }, async () => {
  await withServer(async (port) => {
    closedUnderway.length = 0
    await raw(port, [post('/hang', '')], t => t.includes('started'))
    for (let i = 0; i < 100 && closedUnderway.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
    assert.deepEqual(closedUnderway, [false])
  })
})

test('http1: a response\'s listeners: once fires once, off removes one, the rest fire on every "close"', { timeout: 10_000 }, async () => {
  await withServer(async (port) => {
    const r = await request(`http://127.0.0.1:${port}/listeners`)
    assert.equal(await r.body.text(), 'ok')
    assert.deepEqual(listenerCalls, ['a,c,c'])
  })
})

test('http1: idle keep-alive connections close after the keep-alive timeout; close() ends idle ones at once', { timeout: 10_000 }, async () => {
  await withServer(async (port, server) => {
    const t0 = Date.now()
    const { closed } = await raw(port, [post('/idle', '')])
    assert.equal(closed, true)
    const ms = Date.now() - t0
    assert.ok(ms >= 250 && ms < 3000, `closed after ${ms} ms`)
    const sock = connect(port, '127.0.0.1')
    const gone = new Promise<void>(resolve => sock.on('close', () => resolve()))
    sock.on('data', () => {})
    sock.write(post('/x', ''))
    await new Promise(resolve => setTimeout(resolve, 100))
    await server.close()
    await gone
  }, { keepAliveTimeout: 300 })
})

test('http1: the gateway\'s --keep-alive-timeout reaches clients (Keep-Alive: timeout=) and closes idle connections', { timeout: 15_000 }, async () => {
  const { startGateway } = await import('../fixtures/gateway.js')
  const gw = await startGateway(['--worker', 'm=http://127.0.0.1:9', '--keep-alive-timeout', '1s'])
  try {
    const port = Number(new URL(gw.url).port)
    const t0 = Date.now()
    const { text, closed } = await raw(port, ['GET /health HTTP/1.1\r\nHost: x\r\n\r\n'])
    assert.equal(closed, true)
    const [r] = bodies(text)
    assert.equal(r!.status, 200)
    assert.equal(r!.headers['keep-alive'], 'timeout=1')
    const ms = Date.now() - t0
    assert.ok(ms >= 900 && ms < 4000, `closed after ${ms} ms`)
  } finally {
    await gw.close(0)
  }
})

test('http1: the fast path\'s headers read as node:http\'s do (case, repeats, set-cookie, first-wins names, OWS) and the hot ones match', { timeout: 10_000 }, async () => {
  await withServer(async (port) => {
    const fields = 'Host: x\r\nX-Request-Id: a\r\nx-request-id: b\r\nAuthorization: Bearer one\r\nauthorization: Bearer two\r\nSet-Cookie: c=1\r\nset-cookie: d=2\r\nX-Priority:high\r\nX-Multi: 1\r\nx-multi:  2 \t\r\nUser-Agent: u1\r\nUser-Agent: u2\r\nX-Empty:\r\nX-Latin: caf\xe9\r\n' +
      'Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: p\r\nContent-Type: text/plain\r\ncontent-type: application/json\r\nX-Session-Id: s1\r\nx-session-id: s2\r\n\r\n'
    const fast = await raw(port, [Buffer.from('GET /headers HTTP/1.1\r\n' + fields, 'latin1')], countResponses(1))
    const slow = await raw(port, [Buffer.from('GET /headers HTTP/1.0\r\n' + fields, 'latin1')])
    const a = JSON.parse(bodies(fast.text)[0]!.body)
    const b = JSON.parse(Buffer.from(slow.text.slice(slow.text.indexOf('\r\n\r\n') + 4), 'latin1').toString())
    assert.equal(a.fast, true)
    assert.equal(b.fast, false)
    assert.deepEqual(a.headers, b.headers)
    assert.deepEqual(a.raw, b.raw)
    assert.deepEqual(a.hot, b.hot)
    assert.deepEqual(a.hot, ['a, b', 'high', 'Bearer one'])
    // Policies' header lookups see what node's header object has.
    assert.deepEqual(a.lookup, b.lookup)
    assert.deepEqual(a.lookup.slice(0, 5), ['s1, s2', 'a, b', 'high', 'Bearer one', 'text/plain'])
    // The same headers go upstream either way (the fast path's bytes as sent, node's values trimmed).
    const norm = (block: string): string[] => {
      const p = headerPairs(block)
      const out: string[] = []
      for (let i = 0; i < p.length; i += 2) out.push(`${p[i]!.toLowerCase()}: ${p[i + 1]!}`)
      return out.sort()
    }
    assert.deepEqual(norm(a.upstream), norm(b.upstream))
    assert.deepEqual(norm(a.upstream).filter(l => /^(host|connection|keep-alive|te|proxy-|content-length)/.test(l)), [])
    assert.deepEqual(norm(a.upstream).filter(l => /^(authorization|content-type|x-request-id|x-session-id)/.test(l)), ['authorization: Bearer one', 'content-type: text/plain', 'x-request-id: rid', 'x-session-id: s1', 'x-session-id: s2'])
    assert.ok(a.upstream.includes('x-multi:  2 \t\r\n'), 'the fast path forwards field lines byte for byte')
  })
})

test('http1: a head or a body that stops arriving is cut after the headers timeout', { timeout: 10_000 }, async () => {
  await withServer(async (port) => {
    for (const partial of ['POST /slow HTTP/1.1\r\nHost: x\r\nContent-Le', post('/slow', 'abcdef').slice(0, -3)]) {
      const t0 = Date.now()
      const { text, closed } = await raw(port, [partial])
      const ms = Date.now() - t0
      assert.equal(closed, true)
      assert.equal(text, '', 'nothing is answered to a request that never arrived whole')
      assert.ok(ms >= 250 && ms < 3000, `closed after ${ms} ms`)
    }
  }, { headersTimeout: 300 })
})
