import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { SseParser } from '../../src/bench/sse.js'

function parseAll (chunks: Buffer[]): string[] {
  const out: string[] = []
  const p = new SseParser((d) => out.push(d))
  for (const c of chunks) p.push(c)
  p.end()
  return out
}

const STREAM = ': keep-alive\n\ndata: {"a":1}\n\nevent: message\ndata: {"b":"é ü 😀"}\n\ndata: first\ndata: second\n\r\ndata:nospace\r\n\r\ndata: [DONE]\n\n'
const EXPECTED = ['{"a":1}', '{"b":"é ü 😀"}', 'first\nsecond', 'nospace', '[DONE]']

test('SSE events come out whole: comments and other fields skipped, multi-line data joined, CRLF accepted', () => {
  assert.deepEqual(parseAll([Buffer.from(STREAM)]), EXPECTED)
})

test('SSE events survive any split of the byte stream, including inside multi-byte characters and CRLF pairs', () => {
  const bytes = Buffer.from(STREAM)
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), (cuts) => {
    const points = [...new Set(cuts)].sort((a, b) => a - b)
    const chunks: Buffer[] = []
    let prev = 0
    for (const c of points) { chunks.push(bytes.subarray(prev, c)); prev = c }
    chunks.push(bytes.subarray(prev))
    assert.deepEqual(parseAll(chunks), EXPECTED)
  }), { numRuns: 300 })
  // And byte by byte.
  assert.deepEqual(parseAll([...bytes].map((b) => Buffer.from([b]))), EXPECTED)
})

test('an event without its closing blank line is still delivered at the end of the body', () => {
  assert.deepEqual(parseAll([Buffer.from('data: {"x":1}\n\ndata: [DONE]')]), ['{"x":1}', '[DONE]'])
})
