import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { request } from 'undici'
import { loadServeConfig } from '../../src/config/serve.js'
import { Gateway } from '../../src/frontend/gateway.js'
import { startMockFleet } from '../../src/mocker/index.js'
import { builtinTokenizer } from '../../src/tokenize/index.js'

const BLOCK = 64

/** P shared prefixes of 8 blocks, Q suffixes each, in a seeded random order. */
function workload (prefixes: number, suffixes: number): Uint32Array[] {
  const tok = builtinTokenizer()
  const out: Uint32Array[] = []
  const heads = Array.from({ length: prefixes }, (_, p) => tok.sampleIds(8 * BLOCK, 1000 + p))
  for (let q = 0; q < suffixes; q++) {
    for (let p = 0; p < prefixes; p++) {
      const tail = tok.sampleIds(2 * BLOCK + 7, 50_000 + p * 100 + q)
      const ids = new Uint32Array(heads[p]!.length + tail.length)
      ids.set(heads[p]!)
      ids.set(tail, heads[p]!.length)
      out.push(ids)
    }
  }
  // A seeded shuffle: in a fixed interleave round robin would map each prefix to one worker by luck.
  let x = 12345
  for (let i = out.length - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff
    const j = x % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/** Cached tokens an infinite global prefix cache would give: each request's longest full-block match with any earlier one. */
function idealCached (prompts: Uint32Array[]): number {
  let total = 0
  for (let i = 0; i < prompts.length; i++) {
    let best = 0
    for (let j = 0; j < i; j++) {
      const a = prompts[i]!
      const b = prompts[j]!
      let k = 0
      while (k < a.length && k < b.length && a[k] === b[k]) k++
      best = Math.max(best, Math.floor(k / BLOCK) * BLOCK)
    }
    // The engine never serves the last token from cache (it must compute it): cap at whole blocks below the length.
    total += Math.min(best, Math.floor((prompts[i]!.length - 1) / BLOCK) * BLOCK)
  }
  return total
}

async function run (policy: string, prompts: Uint32Array[]): Promise<{ cached: number, perWorker: Map<string, number> }> {
  const fleet = await startMockFleet({ numWorkers: 4, port: 0, speedupRatio: 0, model: 'mock-llm' })
  const specs = fleet.workers.map(w => `mock-llm=${w.url}`)
  const { config } = loadServeConfig(['--port', '0', '--policy', policy, ...specs.flatMap(s => ['--worker', s])], {})
  config.workers.forEach((w, i) => { w.id = `mock-${i}` })
  const engines = new Map(fleet.workers.map(w => [`mock-${w.index}`, w.engine]))
  const gw = new Gateway(config, { logger: pino({ level: 'silent' }), engines })
  await gw.start()
  const tok = builtinTokenizer()
  let cached = 0
  const perWorker = new Map<string, number>()
  try {
    for (let i = 0; i < prompts.length; i += 4) {
      // Four at a time, so load and cache affinity both matter.
      await Promise.all(prompts.slice(i, i + 4).map(async ids => {
        const res = await request(gw.url + '/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'mock-llm', prompt: tok.decode(ids), max_tokens: 4, ignore_eos: true }) })
        const doc = await res.body.json() as any
        assert.equal(res.statusCode, 200, JSON.stringify(doc))
        assert.equal(doc.usage.prompt_tokens, ids.length, 'the gateway and the engine tokenize alike')
        cached += doc.usage.prompt_tokens_details.cached_tokens
      }))
    }
    for (const w of gw.ctx.registry.snapshot.workers) perWorker.set(w.id, w.totalRequests)
  } finally {
    await gw.close(0)
    await fleet.close()
  }
  return { cached, perWorker }
}

test('kv routing on engine events reaches at least 90% of an infinite global cache on a shared-prefix workload, far above round robin', async () => {
  const prompts = workload(8, 6)
  const ideal = idealCached(prompts)
  const kv = await run('kv', prompts)
  const rr = await run('round_robin', prompts)
  assert.ok(kv.cached >= 0.9 * ideal, `kv cached ${kv.cached} of an ideal ${ideal} tokens`)
  assert.ok(kv.cached > rr.cached, `kv ${kv.cached} vs round robin ${rr.cached}`)
  const counts = [...kv.perWorker.values()]
  assert.ok(Math.min(...counts) > 0, `kv left a worker idle: ${counts.join(', ')}`)
})

test('kv_approx (no events: it records what it routed) also keeps prefixes on their worker', async () => {
  const prompts = workload(4, 5)
  const ideal = idealCached(prompts)
  const approx = await run('kv_approx', prompts)
  const rr = await run('round_robin', prompts)
  // Below kv's figure by design: a prefix counts as cached once routed, before the engine has
  // computed it, so a concurrent twin may land on a worker that is still prefilling it.
  assert.ok(approx.cached >= 0.6 * ideal, `kv_approx cached ${approx.cached} of an ideal ${ideal} tokens`)
  assert.ok(approx.cached > rr.cached, `kv_approx ${approx.cached} vs round robin ${rr.cached}`)
})
