import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseAzure, parseMooncake, readTrace } from '../../src/bench/trace-file.js'

test('Mooncake JSONL records keep times, lengths and hash ids; a zero output length is asked for as 1', () => {
  const r = parseMooncake('{"timestamp": 0, "input_length": 6758, "output_length": 500, "hash_ids": [0, 1]}\n\n{"timestamp": 3000, "input_length": 10, "output_length": 0, "hash_ids": [2]}\n')
  assert.deepEqual(r, [
    { timestampMs: 0, inputLength: 6758, outputLength: 500, hashIds: [0, 1] },
    { timestampMs: 3000, inputLength: 10, outputLength: 1, hashIds: [2] }
  ])
})

test('Azure CSV times become ms from the first row, with the 7-digit fraction', () => {
  const r = parseAzure('TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:17:04.0319600,3180,8')
  assert.equal(r.length, 2)
  assert.equal(r[0]!.timestampMs, 0)
  assert.ok(Math.abs(r[1]!.timestampMs - 52) < 1e-6)
  assert.deepEqual([r[1]!.inputLength, r[1]!.outputLength, r[1]!.hashIds], [3180, 8, null])
})

test('a malformed trace line is a SWY_ERR_BENCH_TRACE error naming the file and line', async () => {
  assert.throws(() => parseMooncake('{"timestamp": 0, "input_length": 5, "output_length": 1}\n{"timestamp": 1, "input_length": -5, "output_length": 1}', 't.jsonl'),
    (e: any) => e.code === 'SWY_ERR_BENCH_TRACE' && /t\.jsonl:2: input_length/.test(e.message))
  assert.throws(() => parseAzure('a,b\n1,2', 'x.csv'), (e: any) => e.code === 'SWY_ERR_BENCH_TRACE' && /x\.csv:1/.test(e.message))
  const dir = await mkdtemp(join(tmpdir(), 'swy-trace-'))
  try {
    await assert.rejects(readTrace(join(dir, 'missing.jsonl'), 'auto'), (e: any) => e.code === 'SWY_ERR_BENCH_TRACE')
    const p = join(dir, 'unsorted.jsonl')
    await writeFile(p, '{"timestamp": 50, "input_length": 5, "output_length": 1}\n{"timestamp": 10, "input_length": 6, "output_length": 1}\n')
    assert.deepEqual((await readTrace(p, 'auto')).map((r) => r.inputLength), [6, 5], 'sorted by arrival')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

const SHARED = '/work/shared/traces'
test('the public traces parse whole', { skip: existsSync(SHARED) ? false : `${SHARED} is not on this machine` }, async () => {
  const conv = await readTrace(join(SHARED, 'conversation_trace.jsonl'), 'auto')
  assert.equal(conv.length, 12031)
  assert.ok(conv.every((r) => r.hashIds !== null && r.hashIds.length === Math.ceil(r.inputLength / 512)))
  const azure = await readTrace(join(SHARED, 'AzureLLMInferenceTrace_code.csv'), 'auto')
  assert.equal(azure.length, 8819)
  const span = azure[azure.length - 1]!.timestampMs / 1000
  assert.ok(span > 3400 && span < 3500, `span ${span} s`)
})
