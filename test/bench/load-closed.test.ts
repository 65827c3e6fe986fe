import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runLoad } from '../../src/bench/load.js'
import { runBench } from '../../src/bench/cli.js'
import { FixtureServer } from './fixture-server.js'

test('a closed loop keeps exactly N requests in flight, never more', async () => {
  const server = new FixtureServer({ firstTokenDelayMs: 5, tokenDelayMs: 2 })
  const url = await server.listen()
  try {
    const r = await runLoad({ url, model: 'm', stream: true, concurrency: 6, numRequests: 60, isl: 32, osl: 8 })
    assert.equal(server.maxInflight, 6)
    assert.equal(server.arrivals.length, 60)
    assert.equal(r.summary.requests.ok, 60)
    assert.equal(r.mode, 'closed')
    const peak = Math.max(...r.timeline.inflight)
    assert.ok(peak <= 6.01, `in-flight bins ≤ 6, got ${peak}`)
  } finally {
    await server.close()
  }
})

test('completions prompts are exactly --isl tokens; chat prompts add only the template; usage is reported', async () => {
  const server = new FixtureServer({ cached: (n) => Math.floor(n / 4) })
  const url = await server.listen()
  try {
    const comp = await runLoad({ url, model: 'm', endpoint: 'completions', stream: true, concurrency: 4, numRequests: 20, isl: { mean: 300, stddev: 40 }, osl: 5, ignoreEos: true })
    const lengths = new Set<number>()
    for (const a of server.arrivals) {
      assert.equal(a.path, '/v1/completions')
      assert.equal(a.body.ignore_eos, true)
      assert.deepEqual(a.body.stream_options, { include_usage: true })
      assert.equal(a.body.max_tokens, 5)
    }
    for (const rec of comp.records) {
      // The fixture counts prompt_tokens by encoding the received prompt with the built-in tokenizer.
      assert.equal(rec.promptTokens, rec.inputTokens, 'server-side count equals the client\'s exact count')
      lengths.add(rec.inputTokens)
      assert.equal(rec.outputTokens, 5)
      assert.equal(rec.outputTokensFrom, 'usage')
    }
    assert.ok(lengths.size > 3, 'stddev > 0 varies the lengths')
    assert.ok(Math.abs(comp.summary.tokens.cachedRatio! - 0.25) < 0.01)

    server.arrivals.length = 0
    const chat = await runLoad({ url, model: 'm', endpoint: 'chat', stream: false, concurrency: 2, numRequests: 6, isl: 200, osl: 3 })
    for (const a of server.arrivals) {
      assert.equal(a.body.messages.length, 1)
      assert.equal(a.body.stream, false)
      assert.equal(a.body.stream_options, undefined)
    }
    for (const rec of chat.records) {
      assert.equal(rec.inputTokens, 200)
      assert.ok(rec.promptTokens! > 200 && rec.promptTokens! < 215, `template adds a few tokens: ${rec.promptTokens}`)
      assert.equal(rec.ttftMs, null, 'no TTFT without streaming')
      assert.equal(rec.outputTokens, 3)
    }
  } finally {
    await server.close()
  }
})

test('--output holds every request record and the report file is written', async () => {
  const server = new FixtureServer({ workerCounts: { w1: 10, w2: 3 } })
  const url = await server.listen()
  const dir = await mkdtemp(join(tmpdir(), 'swy-bench-'))
  let stdout = ''
  try {
    // The fixture's counters move during the run, as a gateway's would.
    const timer = setInterval(() => { server.opts.workerCounts!.w1! += 1 }, 5)
    const code = await runBench(['--url', url, '--model', 'm', '--stream', '--concurrency', '3', '--num-requests', '25', '--isl', '16', '--osl', '4',
      '--priority-mix', '1,1,1', '--output', join(dir, 'out', 'r.json'), '--report', join(dir, 'r.html'), '--quiet'],
    { stdout: { write: (s: string) => { stdout += s; return true } }, stderr: { write: () => true }, signals: false })
    clearInterval(timer)
    assert.equal(code, 0)
    const r = JSON.parse(await readFile(join(dir, 'out', 'r.json'), 'utf8'))
    assert.equal(r.records.length, 25)
    assert.deepEqual(r.records.map((x: any) => x.index), Array.from({ length: 25 }, (_, i) => i))
    for (const rec of r.records) {
      assert.equal(typeof rec.ttftMs, 'number')
      assert.equal(typeof rec.e2eMs, 'number')
      assert.ok(['high', 'medium', 'low'].includes(rec.priority))
    }
    assert.deepEqual(r.priorityValues, { high: 0, medium: 1, low: 2 })
    for (const a of server.arrivals) assert.equal(a.body.priority, { high: 0, medium: 1, low: 2 }[a.headers['x-priority'] as string])
    assert.ok(r.workers.delta.w1 > 0 && r.workers.delta.w2 === 0, JSON.stringify(r.workers))
    assert.ok((await readFile(join(dir, 'r.html'), 'utf8')).startsWith('<!doctype html>'))
    assert.match(stdout, /TTFT \(ms\)/)
    assert.match(stdout, /Requests per worker/)
  } finally {
    await server.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('the null server (the ceiling yardstick) answers streams and JSON that the generator counts right', async () => {
  const { NullServer } = await import('../../src/bench/null-server.js')
  const server = new NullServer()
  const url = await server.listen()
  try {
    for (const endpoint of ['chat', 'completions'] as const) {
      for (const stream of [true, false]) {
        const r = await runLoad({ url, model: 'm', endpoint, stream, concurrency: 8, numRequests: 40, osl: 7 })
        assert.equal(r.summary.requests.ok, 40, `${endpoint} stream=${String(stream)}`)
        assert.ok(r.records.every((x) => x.outputTokens === 7 && x.outputTokensFrom === 'usage' && x.contentChunks === (stream ? 7 : 0)))
      }
    }
  } finally {
    await server.close()
  }
})
