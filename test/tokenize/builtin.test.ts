import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { BuiltinTokenizer, builtinTokenizer, loadTokenizer } from '../../src/tokenize/index.js'

const tok = new BuiltinTokenizer()

function startsWith (a: Uint32Array, prefix: Uint32Array): boolean {
  if (prefix.length > a.length) return false
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false
  return true
}

const textArb = fc.string({ unit: fc.constantFrom('a', 'b', 'Z', ' ', ' ', '\n', '.', 'é', '<', '|', '<|im_end|>', 'the', 'word'), maxLength: 80 })

test('texts sharing a prefix that ends before whitespace share its tokens', () => {
  fc.assert(fc.property(textArb, textArb, textArb, fc.constantFrom(' ', '\n', '\t'), (prefix, a, b, ws) => {
    const p = tok.encode(prefix)
    assert.ok(startsWith(tok.encode(prefix + ws + a), p))
    assert.ok(startsWith(tok.encode(prefix + ws + b), p))
  }), { numRuns: 500 })
})

test('long shared prompts share nearly all their tokens', () => {
  const system = 'You are a helpful assistant. '.repeat(200)
  const a = tok.encode(system + 'What is the capital of France?')
  const b = tok.encode(system + 'Tell me a joke.')
  let common = 0
  while (common < a.length && a[common] === b[common]) common++
  assert.ok(common >= tok.encode(system.trimEnd()).length)
})

test('decode then encode returns sampled ids exactly', () => {
  fc.assert(fc.property(fc.nat({ max: 4000 }), fc.nat(), (count, seed) => {
    const ids = tok.sampleIds(count, seed)
    assert.deepEqual(tok.encode(tok.decode(ids)), ids)
  }), { numRuns: 100 })
})

test('round trip holds for mixed special, whitespace and word ids', () => {
  const idArb = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 6), fc.integer({ min: tok.firstWordId, max: tok.vocabSize - 1 }))
  fc.assert(fc.property(fc.array(idArb, { maxLength: 200 }), (ids) => {
    const arr = Uint32Array.from(ids)
    assert.deepEqual(tok.encode(tok.decode(arr)), arr)
  }), { numRuns: 300 })
})

test('sampled ids are deterministic per seed and spread over the vocabulary', () => {
  assert.deepEqual(tok.sampleIds(50, 7), tok.sampleIds(50, 7))
  assert.notDeepEqual(tok.sampleIds(50, 7), tok.sampleIds(50, 8))
  const ids = tok.sampleIds(10000, 1)
  assert.ok(ids.every((id) => id >= tok.firstWordId && id < tok.vocabSize))
  assert.ok(new Set(ids).size > 5000)
})

test('encoding is deterministic across instances and ids stay in the vocabulary', () => {
  const other = new BuiltinTokenizer()
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (text) => {
    const a = tok.encode(text)
    assert.deepEqual(other.encode(text), a)
    assert.ok(a.every((id) => id < tok.vocabSize))
  }), { numRuns: 200 })
})

test('common words are single tokens and special tokens are recognised', () => {
  assert.equal(tok.encode(' the').length, 1)
  assert.equal(tok.decode(tok.encode(' the water')), ' the water')
  const ids = tok.encode('<|im_start|>user\nhi<|im_end|>\n')
  assert.equal(ids[0], 1)
  assert.ok(ids.includes(2))
  assert.equal(tok.eosTokenId, 0)
})

test('chat template tags roles and ends with the assistant turn', () => {
  const text = tok.applyChatTemplate([
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'text', text: 'Hello' }, { type: 'text', text: 'there' }] }
  ])
  assert.equal(text, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello\nthere<|im_end|>\n<|im_start|>assistant\n')
})

test('encodes about a million characters in well under a second', () => {
  const text = 'The quick brown fox jumps over the lazy dog. '.repeat(22000)
  const t0 = performance.now()
  const ids = tok.encode(text)
  const ms = performance.now() - t0
  assert.ok(ids.length > 190000)
  assert.ok(ms < 1000, `took ${ms} ms`)
})

test('loadTokenizer without a directory gives the shared built-in tokenizer', async () => {
  assert.equal(await loadTokenizer(), builtinTokenizer())
  assert.equal(await loadTokenizer(null), builtinTokenizer())
})
