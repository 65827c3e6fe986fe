import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createMockEngine, decodeMs, prefillMs } from '../../src/mocker/index.js'
import type { GenerateResult } from '../../src/mocker/index.js'

function ids (n: number, salt: number): Uint32Array {
  const p = new Uint32Array(n)
  for (let i = 0; i < n; i++) p[i] = 1000 + ((i * 7919 + salt * 104729) % 30000)
  return p
}

function close (actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual} vs ${expected}`)
}

const gaps = (r: GenerateResult): number[] => r.tokenTimesMs.slice(1).map((t, i) => t - r.tokenTimesMs[i]!)

test('formulas are Dynamo\'s fit', () => {
  close(prefillMs(0), 0, 'no prefill')
  close(prefillMs(1000), 4.209989e-7 * 1e6 + 1.518344e-2 * 1000 + 16.50142, 'prefill 1000')
  close(decodeMs(0), 5.74, 'decode at u=0')
  close(decodeMs(0.5), -25.74 * 0.25 + 54.01 * 0.5 + 5.74, 'decode at u=0.5')
})

test('a lone request\'s TTFT and decode steps match the formulas (virtual clock)', async () => {
  const engine = createMockEngine({ clock: 'virtual', blockSize: 64, numGpuBlocks: 100 })
  const P = 1000
  const r = await engine.generate({ promptTokens: ids(P, 1), maxTokens: 6, ignoreEos: true })
  close(r.tokenTimesMs[0]! - r.arrivalMs, prefillMs(P), 'TTFT')
  gaps(r).forEach((gap, i) => {
    // Decode step k computes token P+k-1 and needs blocks for P+k tokens.
    const k = i + 1
    close(gap, decodeMs(Math.ceil((P + k) / 64) / 100), `decode step ${k}`)
  })
  assert.equal(r.tokenIds.length, 6)
  await engine.close()
})

test('the speed-up ratio divides every pass', async () => {
  const engine = createMockEngine({ clock: 'virtual', blockSize: 64, numGpuBlocks: 100, speedupRatio: 4 })
  const r = await engine.generate({ promptTokens: ids(500, 2), maxTokens: 3, ignoreEos: true })
  close(r.tokenTimesMs[0]! - r.arrivalMs, prefillMs(500) / 4, 'TTFT')
  close(gaps(r)[0]!, decodeMs(Math.ceil(501 / 64) / 100) / 4, 'decode')
  await engine.close()
})

test('a prompt longer than the token budget is prefilled in chunks', async () => {
  const engine = createMockEngine({ clock: 'virtual' })
  const r = await engine.generate({ promptTokens: ids(10000, 3), maxTokens: 1 })
  close(r.tokenTimesMs[0]! - r.arrivalMs, prefillMs(8192) + prefillMs(10000 - 8192), 'TTFT over two passes')
  await engine.close()
})

test('a pass with prefill and decode work takes the sum of both', async () => {
  const engine = createMockEngine({ clock: 'virtual', blockSize: 64, numGpuBlocks: 100 })
  let second: Promise<GenerateResult> | null = null
  const first = engine.generate({ promptTokens: ids(300, 4), maxTokens: 3, ignoreEos: true }, {
    onText: () => { second ??= engine.generate({ promptTokens: ids(200, 5), maxTokens: 1, ignoreEos: true }) }
  })
  const a = await first
  const b = await second!
  const usage = (Math.ceil(301 / 64) + Math.ceil(200 / 64)) / 100
  close(gaps(a)[0]!, prefillMs(200) + decodeMs(usage), 'mixed pass')
  close(b.tokenTimesMs[0]! - b.arrivalMs, prefillMs(200) + decodeMs(usage), 'newcomer TTFT includes the decode work')
  await engine.close()
})

test('sharing k full blocks reports k × block_size cached tokens and a TTFT shorter by the formula', async () => {
  const engine = createMockEngine({ clock: 'virtual', blockSize: 64 })
  const P = 1000
  const a = ids(P, 6)
  const first = await engine.generate({ promptTokens: a, maxTokens: 2, ignoreEos: true })
  assert.equal(first.usage.cachedTokens, 0)
  const k = 10
  const b = ids(P, 7)
  b.set(a.subarray(0, k * 64 + 30))
  const second = await engine.generate({ promptTokens: b, maxTokens: 2, ignoreEos: true })
  assert.equal(second.usage.cachedTokens, k * 64)
  close(first.tokenTimesMs[0]! - first.arrivalMs, prefillMs(P), 'cold TTFT')
  close(second.tokenTimesMs[0]! - second.arrivalMs, prefillMs(P - k * 64), 'warm TTFT')
  // An identical prompt hits every full block but still computes its last token.
  const third = await engine.generate({ promptTokens: ids(1024, 6).fill(5, 1000), maxTokens: 1 })
  const fourth = await engine.generate({ promptTokens: ids(1024, 6).fill(5, 1000), maxTokens: 1 })
  assert.equal(third.usage.cachedTokens, 15 * 64)
  assert.equal(fourth.usage.cachedTokens, 15 * 64, 'a full hit leaves the last block to compute')
  close(fourth.tokenTimesMs[0]! - fourth.arrivalMs, prefillMs(64), 'last block recomputed')
  await engine.close()
})

test('runs are deterministic for a seed and a virtual clock', async () => {
  const run = async (seed: number): Promise<unknown> => {
    const engine = createMockEngine({ clock: 'virtual', seed, blockSize: 16, numGpuBlocks: 64, maxNumSeqs: 3 })
    const results = await Promise.all(Array.from({ length: 8 }, async (_, i) =>
      await engine.generate({ promptTokens: ids(50 + i * 30, i % 3), maxTokens: 20, stop: i === 2 ? [' the'] : null })))
    await engine.close()
    return results.map((r) => [r.text, r.tokenIds, r.tokenTimesMs, r.finishReason, r.usage])
  }
  assert.deepEqual(await run(1), await run(1))
  assert.notDeepEqual(await run(1), await run(2))
})

test('with EOS allowed, some answers end early with "stop"; ignore_eos always runs to max_tokens', async () => {
  const engine = createMockEngine({ clock: 'virtual', eosProbability: 0.05 })
  const free = await Promise.all(Array.from({ length: 40 }, async (_, i) => await engine.generate({ promptTokens: ids(20, i), maxTokens: 50 })))
  assert.ok(free.some((r) => r.finishReason === 'stop' && r.usage.completionTokens < 50))
  const forced = await Promise.all(Array.from({ length: 20 }, async (_, i) =>
    await engine.generate({ promptTokens: ids(20, i), maxTokens: 50, ignoreEos: true })))
  assert.ok(forced.every((r) => r.finishReason === 'length' && r.usage.completionTokens === 50))
  const min = await Promise.all(Array.from({ length: 20 }, async (_, i) =>
    await engine.generate({ promptTokens: ids(20, i), maxTokens: 50, minTokens: 30 })))
  assert.ok(min.every((r) => r.usage.completionTokens >= 30))
  await engine.close()
})

test('stop strings end the answer before the stop text, even across tokens', async () => {
  const engine = createMockEngine({ clock: 'virtual' })
  const base = await engine.generate({ promptTokens: ids(30, 9), maxTokens: 40, ignoreEos: true })
  const words = base.text.split(' ')
  const stop = ` ${words[5]} ${words[6]!.slice(0, 2)}`
  const cut = base.text.indexOf(stop)
  const r = await engine.generate({ promptTokens: ids(30, 9), maxTokens: 40, ignoreEos: true, stop: [stop] })
  assert.equal(r.finishReason, 'stop')
  assert.equal(r.text, base.text.slice(0, cut))
  await engine.close()
})

test('real clock: passes follow the modeled time; speed-up 0 runs flat out', async () => {
  const engine = createMockEngine({ speedupRatio: 20, blockSize: 64, numGpuBlocks: 1000 })
  const t0 = performance.now()
  const r = await engine.generate({ promptTokens: ids(100, 1), maxTokens: 40, ignoreEos: true })
  const elapsed = performance.now() - t0
  let modeled = prefillMs(100) / 20
  for (let k = 1; k < 40; k++) modeled += decodeMs(Math.ceil((100 + k) / 64) / 1000) / 20
  assert.ok(elapsed >= modeled * 0.9, `elapsed ${elapsed} ms, modeled ${modeled} ms`)
  assert.ok(elapsed < modeled * 3 + 100, `elapsed ${elapsed} ms, modeled ${modeled} ms`)
  assert.equal(r.tokenIds.length, 40)
  await engine.close()

  const fast = createMockEngine({ speedupRatio: 0 })
  const t1 = performance.now()
  await fast.generate({ promptTokens: ids(100, 1), maxTokens: 2000, ignoreEos: true })
  assert.ok(performance.now() - t1 < 3000)
  await fast.close()
})

test('runUntil replays timed arrivals on the virtual clock', async () => {
  const engine = createMockEngine({ clock: 'virtual', blockSize: 64, numGpuBlocks: 100 })
  await engine.runUntil(50)
  assert.equal(engine.clock.now(), 50, 'an idle clock jumps to the target')
  const a = engine.generate({ promptTokens: ids(500, 1), maxTokens: 30, ignoreEos: true })
  await engine.runUntil(100)
  const at = engine.clock.now()
  assert.ok(at >= 100 && at < 100 + 40, `paused at ${at}`)
  const b = engine.generate({ promptTokens: ids(200, 2), maxTokens: 5, ignoreEos: true })
  await engine.runUntil(Infinity)
  const [ra, rb] = await Promise.all([a, b])
  assert.equal(ra.arrivalMs, 50)
  assert.equal(rb.arrivalMs, at)
  assert.ok(rb.finishMs < ra.finishMs, 'the later, shorter request ran alongside the first')
  close(ra.tokenTimesMs[0]! - ra.arrivalMs, prefillMs(500), 'first TTFT')
  await engine.close()
})
