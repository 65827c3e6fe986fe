import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { COMPLETE, FAILED, NEED_MORE, ResponseParser } from '../../../src/transport/http1/response-parser.js'
import { BufferViews } from '../../../src/shared/buffer-view.js'

/** One read buffer for every piece, as the pool's sockets share one (each read lands at its start). */
const READ = new BufferViews(Buffer.alloc(64 * 1024))

/** Feeds `piece` as the pool does: copied to the read buffer's start, parsed as a view of it with its views. */
function feedRead (p: ResponseParser, piece: Buffer): number {
  piece.copy(READ.base)
  return p.execute(READ.view(0, piece.length), 0, READ)
}

/**
 * Parses `text` fed in two pieces split at `at`, as reads of a shared buffer (body pieces and
 * forwarded runs cut as views of it), in forward-lines mode; what the sink saw.
 */
function parse (text: string, at: number): { status: number, headers: object, lines: string | null, hasLength: boolean, body: string } {
  const seen = { status: 0, headers: {}, lines: null as string | null, hasLength: false, body: '' }
  const p: ResponseParser = new ResponseParser({
    onHead: (status, _msg, headers) => { seen.status = status; seen.headers = headers; seen.lines = p.forwardLines?.toString('latin1') ?? null; seen.hasLength = p.hasLength; return true },
    onBody: (chunk) => { seen.body += chunk.toString('latin1'); return true }
  })
  p.reset(false, true)
  const b = Buffer.from(text, 'latin1')
  const r1 = feedRead(p, b.subarray(0, at))
  assert.equal(r1, at === b.length ? COMPLETE : NEED_MORE)
  if (at < b.length) assert.equal(feedRead(p, b.subarray(at)), COMPLETE)
  return seen
}

const CASES: Array<{ name: string, head: string, lines: string, hasLength: boolean }> = [
  { name: 'hop-by-hop, Date and X-Request-Id left out, the rest as received', head: 'HTTP/1.1 200 OK\r\nDate: x\r\nContent-Type: application/json\r\nConnection: keep-alive\r\nX-Odd:  spaced \t\r\nkeep-alive: timeout=5\r\nX-Request-Id: w\r\nContent-Length: 2', lines: 'Content-Type: application/json\r\nX-Odd:  spaced \t\r\nContent-Length: 2\r\n', hasLength: true },
  { name: 'the last line forwarded gets its CRLF back', head: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Last: v', lines: 'Content-Length: 2\r\nX-Last: v\r\n', hasLength: true },
  { name: 'repeated names kept in order, latin1 bytes as they came', head: 'HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nDate: x\r\nSet-Cookie: b=2\r\nX-Latin: caf\xe9\r\nContent-Length: 2\r\nTrailer: t', lines: 'set-cookie: a=1\r\nSet-Cookie: b=2\r\nX-Latin: caf\xe9\r\nContent-Length: 2\r\n', hasLength: true },
  { name: 'nothing forwarded', head: 'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\nDate: x', lines: 'Content-Length: 2\r\n', hasLength: true },
  { name: 'a chunked answer: Transfer-Encoding left out, no length', head: 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked', lines: 'Content-Type: text/event-stream\r\n', hasLength: false }
]

test('forward-lines mode: the head\'s lines a proxy forwards, at every split of the bytes; no headers object is built', () => {
  for (const c of CASES) {
    const body = c.hasLength ? 'ok' : '2\r\nok\r\n0\r\n\r\n'
    const text = `HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n${c.head}\r\n\r\n${body}`
    for (let at = 1; at <= text.length; at++) {
      const r = parse(text, at)
      assert.equal(r.status, 200, c.name)
      assert.equal(r.lines, c.lines, `${c.name} (split at ${at})`)
      assert.equal(r.hasLength, c.hasLength, c.name)
      assert.deepEqual(r.headers, {}, c.name)
      assert.equal(r.body, 'ok', c.name)
    }
  }
})

test('without forward-lines mode the headers object is built and forwardLines stays null', () => {
  const p: ResponseParser = new ResponseParser({ onHead: (_s, _m, h) => { assert.deepEqual({ ...h }, { 'content-type': 'a', 'content-length': '0' }); return true }, onBody: () => true })
  p.reset(false)
  assert.equal(p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: a\r\nContent-Length: 0\r\n\r\n'), 0), COMPLETE)
  assert.equal(p.forwardLines, null)
})

test('heads longer than the decoded window (2 KiB) parse the same, whole or split near its edge', () => {
  for (const size of [2000, 2040, 2048, 3000, 9000]) {
    const head = `HTTP/1.1 200 OK\r\nX-Big: ${'v'.repeat(size)}\r\nContent-Length: 2`
    const text = `${head}\r\n\r\nok`
    for (const at of [text.length, 2040, 2044, 2046, 2048, 2050, text.length - 3]) {
      if (at < 1 || at > text.length) continue
      const r = parse(text, at)
      assert.equal(r.lines, `X-Big: ${'v'.repeat(size)}\r\nContent-Length: 2\r\n`, `a ${size}-byte field, split at ${at}`)
      assert.equal(r.body, 'ok')
    }
  }
})

/** Names a proxy leaves out of forwarded lines (the parser's NOT_FORWARDED), for the expected lines. */
const LEFT_OUT = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'date', 'x-request-id'])

interface Outcome { result: number, error: string | null, status: number, message: string, keepAlive: boolean, keepAliveMs: number, hasLength: boolean, closeDelimited: boolean, body: string, lines: string | null }

/** Feeds `text` in two pieces split at `at`; in forward-lines mode or building headers. */
function outcome (text: string, at: number, linesOnly: boolean): Outcome {
  const o: Outcome = { result: -1, error: null, status: 0, message: '', keepAlive: false, keepAliveMs: -1, hasLength: false, closeDelimited: false, body: '', lines: null }
  const p: ResponseParser = new ResponseParser({
    onHead: (status, message) => { o.status = status; o.message = message; o.lines = p.forwardLines?.toString('latin1') ?? null; o.hasLength = p.hasLength; o.closeDelimited = p.closeDelimited; return true },
    onBody: (chunk) => { o.body += chunk.toString('latin1'); return true }
  })
  p.reset(false, linesOnly)
  const b = Buffer.from(text, 'latin1')
  let r = p.execute(b.subarray(0, at), 0)
  if (r === NEED_MORE && at < b.length) r = p.execute(b.subarray(at), 0)
  if (r === NEED_MORE && p.closeDelimited && p.finish()) r = COMPLETE
  o.result = r
  o.error = (p.error as { code?: string } | null)?.code ?? null
  o.keepAlive = p.keepAlive
  o.keepAliveMs = p.keepAliveMs
  return o
}

/** The field lines of `head` a proxy forwards, as the test computes them from the text. */
function expectedLines (head: string): string {
  return head.split('\r\n').slice(1).filter(l => l !== '' && !LEFT_OUT.has(l.slice(0, l.indexOf(':')).toLowerCase())).map(l => l + '\r\n').join('')
}

const HEADS: Array<[string, string]> = [
  ['node\'s keep-alive answer', 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nDate: x\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65'],
  ['Connection: close', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close'],
  ['Connection in capitals', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCONNECTION: CLOSE'],
  ['Connection with a list', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive, Upgrade'],
  ['Connection with a list that closes', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: TE, Close'],
  ['HTTP/1.0 with keep-alive in a list', 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive, TE'],
  ['HTTP/1.0 without keep-alive', 'HTTP/1.0 200 OK\r\nContent-Length: 2'],
  ['HTTP/1.0 with keep-alive', 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=3'],
  ['Keep-Alive with max first', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: max=5, timeout=7'],
  ['Keep-Alive in capitals', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: Timeout=9, max=100'],
  ['Keep-Alive without a number', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout='],
  ['Keep-Alive with a list after the number', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=4,max=9'],
  ['Content-Length with spaces and tabs', 'HTTP/1.1 200 OK\r\nContent-Length: \t 2 \t'],
  ['the same Content-Length twice', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2'],
  ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked'],
  ['gzip, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked'],
  ['chunked, gzip (close-delimited)', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip'],
  ['no framing (close-delimited)', 'HTTP/1.1 200 OK\r\nX-A: b'],
  ['a long status text', 'HTTP/1.1 404 Not Found Here\r\nContent-Length: 2'],
  ['no status text', 'HTTP/1.1 200\r\nContent-Length: 2'],
  ['a status text of O', 'HTTP/1.1 200 O\r\nContent-Length: 2'],
  ['204 without a body', 'HTTP/1.1 204 No Content\r\nX-A: b'],
  ['a name like content-length', 'HTTP/1.1 200 OK\r\nContent-Lengths: 9\r\nXontent-length: 7\r\nContent-Length: 2'],
  ['a value with a colon and latin1', 'HTTP/1.1 200 OK\r\nX-Url: http://a:1/\xe9\r\nContent-Length: 2'],
  ['an empty value', 'HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 2'],
  ['malformed: a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 2'],
  ['malformed: a folded line', 'HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 2'],
  ['malformed: a line without a colon', 'HTTP/1.1 200 OK\r\nX-A b\r\nContent-Length: 2'],
  ['malformed: an empty name', 'HTTP/1.1 200 OK\r\n: b\r\nContent-Length: 2'],
  ['malformed: a bare LF in the fields', 'HTTP/1.1 200 OK\r\nX-A: b\nContent-Length: 2'],
  ['malformed: a signed Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: +2'],
  ['malformed: an empty Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: '],
  ['malformed: two Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3'],
  ['malformed: Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked'],
  ['malformed: HTTP/2.0', 'HTTP/2.0 200 OK\r\nContent-Length: 2'],
  ['malformed: not HTTP', 'HTTX/1.1 200 OK\r\nContent-Length: 2'],
  ['malformed: a short status line', 'HTTP/1.1 20\r\nContent-Length: 2'],
  ['malformed: a status of letters', 'HTTP/1.1 2x0 OK\r\nContent-Length: 2'],
  ['malformed: no space after the status', 'HTTP/1.1 200OK\r\nContent-Length: 2'],
  ['malformed: 101 Switching Protocols', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x']
]

test('forward-lines mode (a parse of bytes) agrees with the headers mode on status, framing, keep-alive and refusals, at every split; its lines are the head\'s minus the left-out names', () => {
  for (const [name, head] of HEADS) {
    const framed = /transfer-encoding: .*chunked$/im.test(head) && !/chunked, gzip/.test(head)
    const text = `${head}\r\n\r\n${framed ? '2\r\nok\r\n0\r\n\r\n' : 'ok'}`
    for (let at = 1; at <= text.length; at++) {
      const lines = outcome(text, at, true)
      const object = outcome(text, at, false)
      const { lines: got, ...rest } = lines
      const { lines: none, ...want } = object
      assert.equal(none, null, name)
      assert.deepEqual(rest, want, `${name}, split at ${at}`)
      if (lines.result === COMPLETE) {
        assert.equal(got, expectedLines(head), `${name}: forwarded lines, split at ${at}`)
      } else {
        assert.equal(lines.result, FAILED, `${name}: refused, split at ${at}`)
        assert.ok(lines.error !== null, name)
      }
    }
    const whole = outcome(text, text.length, true)
    assert.equal(whole.result === COMPLETE, !name.startsWith('malformed'), `${name}: ${whole.error ?? 'complete'}`)
  }
})

test('forward-lines mode refuses a head with bare LF line ends at once, not after 16 KiB', () => {
  for (const text of ['HTTP/1.1 200 OK\nContent-Length: 2\n\nok', 'HTTP/1.1 200 OK\r\nContent-Length: 2\n\nok']) {
    const o = outcome(text, text.length, true)
    assert.equal(o.result, FAILED)
    assert.equal(o.error, 'HPE_STRICT')
  }
})

test('a head split over many small reads is parsed once it is whole, in forward-lines mode', () => {
  const text = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nDate: x\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\n\r\nok'
  let lines: string | null = null
  let body = ''
  const p: ResponseParser = new ResponseParser({ onHead: () => { lines = p.forwardLines!.toString('latin1'); return true }, onBody: (c) => { body += c.toString('latin1'); return true } })
  p.reset(false, true)
  const b = Buffer.from(text, 'latin1')
  let r = NEED_MORE
  for (let i = 0; i < b.length; i += 3) r = p.execute(b.subarray(i, Math.min(b.length, i + 3)), 0)
  assert.equal(r, COMPLETE)
  assert.equal(lines, 'content-type: application/json\r\ncontent-length: 2\r\n')
  assert.equal(body, 'ok')
  assert.equal(p.keepAliveMs, 65_000)
})
