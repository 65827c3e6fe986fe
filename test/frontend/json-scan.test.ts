import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { parseRequest } from '../../src/frontend/validate.js'
import { checkJson, JsonSyntaxError, stringLength, stringValue, valueEnd, skipWs, firstItem, nextItem, memberValue, nameIs, Word } from '../../src/frontend/json-scan.js'

function parses (b: Buffer): boolean {
  try { JSON.parse(b.toString('utf8')); return true } catch { return false }
}

function checks (b: Buffer): boolean {
  try { checkJson(b); return true } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err
    return false
  }
}

const VALID = [
  '{}', '[]', ' {"a" : [1, -0, 0.5, -1.5e+3, 2E-2, 1e5, true, false, null, "x"] } ', '"\\u00e9\\n\\"\\\\\\/\\b\\f\\r\\t"',
  '0', '-0', '123', '{"a":{"b":{"c":[[],[{}]]}}}', '"é ✓ 😀"', '[1,[2,[3]]]', '\t\r\n 7 \t\r\n', '{"":""}', '{"a":1,"a":2}',
  '"\\ud800"', '[' + '['.repeat(5000) + ']'.repeat(5000) + ']'
]
const INVALID = [
  '', ' ', '{', '}', '[', '[1,]', '{"a":1,}', '{,}', '{"a"}', '{"a":}', '{a:1}', "{'a':1}", '01', '-', '1.', '.5', '1e', '1e+', '+1',
  'tru', 'nul', 'True', 'NaN', 'Infinity', '"abc', '"\\x"', '"\\u12"', '"\\u12g4"', '"a\u0001b"', '"tab\there"', '{"a":1} x', '[1] [2]',
  '\uFEFF{}', '{"a":1 "b":2}', '[1 2]', '{"a":1]', '[1}', '"\\', '{"a" 1}', '\u00a0{}', '[' + '['.repeat(5000) + ']'.repeat(4999)
]

test('checkJson accepts exactly what JSON.parse accepts, for a table of edge cases', () => {
  for (const s of [...VALID, ...INVALID]) {
    const b = Buffer.from(s, 'utf8')
    assert.equal(checks(b), parses(b), `checkJson and JSON.parse disagree on ${JSON.stringify(s.slice(0, 40))}`)
  }
  for (const s of VALID) assert.ok(checks(Buffer.from(s)), `valid: ${s.slice(0, 40)}`)
})

test('checkJson names the byte where the document goes wrong', () => {
  assert.throws(() => { checkJson(Buffer.from('{"a":}')) }, (err: unknown) => err instanceof JsonSyntaxError && err.at === 5 && /unexpected '\}'/.test(err.message))
  assert.throws(() => { checkJson(Buffer.from('{"a":1')) }, (err: unknown) => err instanceof JsonSyntaxError && /end of input/.test(err.message))
  assert.throws(() => { checkJson(Buffer.from('"a\u0001"')) }, (err: unknown) => err instanceof JsonSyntaxError && err.at === 2 && /control character/.test(err.message))
})

// A seeded generator of JSON documents and byte-level mutations of them.
function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 0x100000000 }
}

function gen (r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 3 ? 5 : 7))
  switch (k) {
    case 0: return null
    case 1: return r() < 0.5
    case 2: return [0, -1, 1.5, 1e21, -2.5e-7, 123456789, 0.1][Math.floor(r() * 7)]
    case 3: case 4: return ['', 'a', 'é', '😀', '"', '\\', '\n', '\u0000', '\u2028', 'text with spaces'][Math.floor(r() * 10)]
    case 5: return Array.from({ length: Math.floor(r() * 4) }, () => gen(r, depth + 1))
    default: {
      const o: Record<string, unknown> = {}
      for (let i = Math.floor(r() * 4); i > 0; i--) o[['model', 'messages', 'x', 'é', 'a\\b', ''][Math.floor(r() * 6)]!] = gen(r, depth + 1)
      return o
    }
  }
}

const NOISE = [...'{}[],:"\\ \t\n-+.eE0159truefalsn', '\u0001', 'é', '\u00ff']

test('checkJson agrees with JSON.parse on 20,000 generated documents and byte mutations of them', () => {
  const r = rng(0x5eed)
  let accepted = 0
  for (let n = 0; n < 20_000; n++) {
    const text = JSON.stringify(gen(r, 0), null, r() < 0.3 ? 1 : undefined)
    let b = Buffer.from(text, 'utf8')
    if (n % 4 !== 0) {
      // Insert, delete or replace a byte somewhere.
      const at = Math.floor(r() * (b.length + 1))
      const op = Math.floor(r() * 3)
      const noise = Buffer.from(NOISE[Math.floor(r() * NOISE.length)]!, 'utf8')
      b = op === 0 ? Buffer.concat([b.subarray(0, at), noise, b.subarray(at)]) : op === 1 ? Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]) : Buffer.concat([b.subarray(0, at), noise, b.subarray(at + 1)])
    }
    const want = parses(b)
    if (want) accepted++
    assert.equal(checks(b), want, `disagree on ${JSON.stringify(b.toString('utf8'))}`)
  }
  assert.ok(accepted > 5000 && accepted < 20_000, `the mutations must yield both kinds (accepted ${accepted})`)
})

test('the readers walk a valid document by offset: members, values, decoded strings and their lengths', () => {
  const doc = { model: 'mé', 'mod\\el': 1, messages: [{ role: 'user', content: 'a😀"\\b\n\u00e9' }, { role: 'x', content: null }], n: [1, { a: '}' }], e: '' }
  const b = Buffer.from(JSON.stringify(doc, null, 2))
  const seen: Array<[string, unknown]> = []
  for (let m = firstItem(b, skipWs(b, 0)); m !== -1;) {
    const v = memberValue(b, m)
    const end = valueEnd(b, v)
    seen.push([stringValue(b, m), JSON.parse(b.toString('utf8', v, end))])
    if (b[v] === 0x22) {
      const s = JSON.parse(b.toString('utf8', v, end)) as string
      assert.equal(stringValue(b, v), s)
      assert.equal(stringLength(b, v), s.length)
    }
    m = nextItem(b, end)
  }
  assert.deepEqual(Object.fromEntries(seen), doc)
  const content = Buffer.from(JSON.stringify('a😀"\\b\n\u00e9'))
  assert.equal(stringLength(content, 0), 'a😀"\\b\n\u00e9'.length)
  // Names compare as JSON.parse decodes them.
  const esc = Buffer.from('{"mod\\u0065l":1}')
  assert.ok(nameIs(esc, 1, new Word('model')))
  assert.ok(!nameIs(esc, 1, new Word('mode')))
  assert.ok(!nameIs(Buffer.from('{"models":1}'), 1, new Word('model')))
})

test('long documents (checked four bytes at a time) agree with JSON.parse, and their string lengths with String#length, at every alignment', () => {
  const r = rng(0xa11ce)
  const pieces = ['a', 'bc', 'é', '✓', '😀', '\\n', '\\"', '\\\\', '\\u00e9', '\\ud83d\\ude00', ' ', 'xyz0123']
  const bad = ['\u0001', '\u001f', '"', '\\', '\\x', '\t']
  for (let n = 0; n < 400; n++) {
    let inner = ''
    const len = 256 + Math.floor(r() * 700)
    while (inner.length < len) inner += pieces[Math.floor(r() * pieces.length)]
    // Every other document gets one bad byte (or escape) at a random place.
    if (n % 2 === 1) {
      const at = Math.floor(r() * inner.length)
      inner = inner.slice(0, at) + bad[n % bad.length] + inner.slice(at)
    }
    const text = `{"model":"m","prompt":"${inner}","n":[1,2]}`
    // At byte offsets 0-3 of a larger buffer, so the 32-bit words start at every alignment.
    const shift = n % 4
    const outer = Buffer.alloc(Buffer.byteLength(text) + shift + 3, 0x41)
    outer.write(text, shift)
    const b = outer.subarray(shift, shift + Buffer.byteLength(text))
    const want = parses(b)
    assert.equal(checks(b), want, `document ${n}: ${text.slice(0, 80)}...`)
    if (want) {
      const v = (JSON.parse(text) as { prompt: string }).prompt
      const p = parseRequest('completions', b)
      assert.equal(p.promptChars, v.length, `document ${n}: the prompt's length`)
    }
  }
})
