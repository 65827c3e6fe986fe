import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseRequestHead } from '../../../src/frontend/http1/request-head.js'

function parse (fields: string[], body = ''): ReturnType<typeof parseRequestHead> {
  const head = 'POST /v1/chat/completions HTTP/1.1\r\n' + fields.map(f => f + '\r\n').join('') + '\r\n'
  return parseRequestHead(head + body, head.length)
}

test('request head: names the parse acts on are told apart from longer, shorter and look-alike names, in any case', () => {
  const r = parse([
    'Host: a',
    'hostname: b',
    'Content-Type-X: c',
    'CoNtEnT-TyPe: application/json',
    'conten: d',
    'X-Request-Idx: e',
    'x-request-id: rid-1',
    'content-length: 2',
    'x-note: has: colons: in it',
    'Keep-Alive: timeout=5',
    'te: trailers',
    'tee: f'
  ], '{}')
  assert.ok(r !== null)
  assert.equal(r.contentType, 'application/json')
  assert.equal(r.requestId, 'rid-1')
  assert.equal(r.contentLength, 2)
  assert.equal(r.forward, 'hostname: b\r\nContent-Type-X: c\r\nconten: d\r\nX-Request-Idx: e\r\nx-note: has: colons: in it\r\ntee: f\r\n')
})

test('request head: hot values lose their OWS and repeats join as node joins them; the body after the head is not read as fields', () => {
  const r = parse(['host: h', 'x-priority:  high \t', 'X-Session-Id: s1', 'x-session-id: s2', 'authorization: Bearer k', 'Authorization: Bearer other', 'content-length: 30'], 'content-length: 99\r\nhost: x\r\n\r\n')
  assert.ok(r !== null)
  assert.equal(r.priority, 'high')
  assert.equal(r.sessionId, 's1, s2')
  assert.equal(r.authorization, 'Bearer k')
  assert.equal(r.contentLength, 30)
  // Priority and session headers are read and still passed on; authorization is the proxy's to set.
  assert.equal(r.forward, 'x-priority:  high \t\r\nX-Session-Id: s1\r\nx-session-id: s2\r\n')
})

test('request head: framing the fast path does not serve is refused (null): no host, repeated or signed lengths, transfer-encoding, upgrade', () => {
  assert.equal(parse(['content-length: 0']), null)
  assert.equal(parse(['host: a', 'content-length: 1', 'Content-Length: 1'], 'x'), null)
  assert.equal(parse(['host: a', 'content-length: +1'], 'x'), null)
  assert.equal(parse(['host: a', 'Transfer-Encoding: chunked']), null)
  assert.equal(parse(['host: a', 'connection: Upgrade', 'upgrade: websocket']), null)
  assert.equal(parse(['host: a', 'bad name: x']), null)
  assert.ok(parse(['host: a', 'connection: close'])!.close)
})
