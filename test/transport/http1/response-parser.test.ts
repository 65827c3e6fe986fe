import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { COMPLETE, NEED_MORE, ResponseParser } from '../../../src/transport/http1/response-parser.js'

/** Parses `text` fed in two pieces split at `at`, in forward-lines mode; what the sink saw. */
function parse (text: string, at: number): { status: number, headers: object, lines: string | null, hasLength: boolean, body: string } {
  const seen = { status: 0, headers: {}, lines: null as string | null, hasLength: false, body: '' }
  const p: ResponseParser = new ResponseParser({
    onHead: (status, _msg, headers) => { seen.status = status; seen.headers = headers; seen.lines = p.forwardLines?.toString('latin1') ?? null; seen.hasLength = p.hasLength; return true },
    onBody: (chunk) => { seen.body += chunk.toString('latin1'); return true }
  })
  p.reset(false, true)
  const b = Buffer.from(text, 'latin1')
  const r1 = p.execute(b.subarray(0, at), 0)
  assert.equal(r1, at === b.length ? COMPLETE : NEED_MORE)
  if (at < b.length) assert.equal(p.execute(b.subarray(at), 0), COMPLETE)
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
