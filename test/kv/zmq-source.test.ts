// KV event ingestion from real mock engines over ZMQ: the index follows the engine's cache, a lost
// batch comes back through replay, and an engine restart (with or without a lower seq) is noticed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BlockHasher, KvIndex, OverlapScores, ZmqKvEventSource, KvOptionError } from '../../src/kv/index.js'
import { createMockEngine, KvEventPublisher, startMockFleet } from '../../src/mocker/index.js'
import type { MockEngine } from '../../src/mocker/index.js'

const BS = 8
const engineOpts = { speedupRatio: 0, blockSize: BS, numGpuBlocks: 32 } as const

async function waitFor (cond: () => boolean, what: string, tick: () => Promise<void> = async () => {}, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await tick()
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Prompts sharing one of three system prefixes, then their own tokens; enough of them to evict. */
let salt = 0
function nextPrompt (): number[] {
  salt++
  const p: number[] = []
  const shared = [0, 2, 4][salt % 3]! * BS + 5
  for (let i = 0; i < shared; i++) p.push(1000 * (salt % 3) + i)
  for (let i = 0; i < 3 * BS; i++) p.push(100_000 + salt * 100 + i)
  return p
}

async function traffic (engine: MockEngine, n = 1): Promise<number[][]> {
  const prompts: number[][] = []
  for (let i = 0; i < n; i++) {
    const p = nextPrompt()
    prompts.push(p)
    await engine.generate({ promptTokens: p, maxTokens: 2, ignoreEos: true })
  }
  return prompts
}

function assertSameView (index: KvIndex, src: ZmqKvEventSource, engine: MockEngine, prompts: number[][]): void {
  assert.deepEqual(new Set(index.engineHashes(src.slot)), engine.blocks.cachedHashes(), 'the index holds exactly the engine cache')
  const hasher = new BlockHasher(BS)
  const scores = new OverlapScores()
  for (const p of prompts) {
    index.lookupTokens(p, scores)
    const seq = hasher.sequenceHashes(p)
    assert.equal(scores.get(src.slot), engine.blocks.countCachedPrefix(seq, seq.length), 'lookup = the engine prefix-cache hit')
  }
}

async function bindAgain (engine: MockEngine, endpoint: string, replayEndpoint: string): Promise<KvEventPublisher> {
  // ZMQ releases a closed socket's port asynchronously: retry the bind for a moment.
  for (let attempt = 0; ; attempt++) {
    try {
      return await KvEventPublisher.start(engine, { port: Number(new URL(endpoint).port), replayPort: Number(new URL(replayEndpoint).port) })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 100) throw err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

test('after shared-prefix traffic the index view of the worker equals the engine block manager cache', async () => {
  const fleet = await startMockFleet({ numWorkers: 2, port: 0, kvEventsPort: 0, ...engineOpts })
  const index = new KvIndex({ blockSize: BS })
  const sources = fleet.workers.map((w) => new ZmqKvEventSource(index, {
    workerId: `w${w.index}`, endpoint: w.kvEvents!.endpoint, replayEndpoint: w.kvEvents!.replayEndpoint
  }))
  try {
    const prompts: number[][] = []
    for (let round = 0; round < 12; round++) {
      for (const w of fleet.workers) prompts.push(...await traffic(w.engine))
    }
    for (const [i, w] of fleet.workers.entries()) {
      await waitFor(() => sources[i]!.lastSeq === w.kvEvents!.nextSeq - 1, `worker ${i} catch-up`)
      assert.ok(w.engine.blocks.evictions > 0, 'the engine evicted blocks, so removals were applied too')
      assertSameView(index, sources[i]!, w.engine, prompts)
      assert.equal(sources[i]!.counters.decodeErrors, 0)
      assert.equal(sources[i]!.blocks, w.engine.blocks.cachedBlocks)
    }
  } finally {
    await Promise.all(sources.map(async (s) => { await s.close() }))
    await fleet.close()
  }
})

test('a lost batch is noticed as a gap and recovered through replay', async () => {
  const engine = createMockEngine(engineOpts)
  const pub = await KvEventPublisher.start(engine, { port: 0, replayPort: 0 })
  const index = new KvIndex({ blockSize: BS })
  const src = new ZmqKvEventSource(index, { workerId: 'w', endpoint: pub.endpoint, replayEndpoint: pub.replayEndpoint })
  try {
    const prompts = await traffic(engine, 2)
    // The subscription may miss the first batches (ZMQ slow joiner): the first batch catches up from 0 through replay.
    await waitFor(() => src.lastSeq === pub.nextSeq - 1, 'first catch-up', async () => { prompts.push(...await traffic(engine)) })
    assert.equal(src.counters.gaps, 0, 'catching up at start is not a gap')
    pub.dropNextBatches(1)
    prompts.push(...await traffic(engine, 3))
    await waitFor(() => src.lastSeq === pub.nextSeq - 1, 'recovery')
    assert.equal(src.counters.gaps, 1)
    assert.ok(src.counters.replays >= 1)
    assert.ok(src.counters.replayedBatches >= 1)
    assert.equal(src.counters.lostBatches, 0)
    assertSameView(index, src, engine, prompts)
  } finally {
    await src.close()
    await pub.close()
    await engine.close()
  }
})

test('an engine restart (seq back to 0) clears the worker, then the index rebuilds from the new engine', async () => {
  let engine = createMockEngine(engineOpts)
  let pub = await KvEventPublisher.start(engine, { port: 0, replayPort: 0 })
  const { endpoint, replayEndpoint } = { endpoint: pub.endpoint, replayEndpoint: pub.replayEndpoint! }
  const index = new KvIndex({ blockSize: BS })
  const src = new ZmqKvEventSource(index, { workerId: 'w', endpoint, replayEndpoint })
  try {
    await waitFor(() => src.lastSeq >= 0 && src.lastSeq === pub.nextSeq - 1, 'first batches', async () => { await traffic(engine) })
    await traffic(engine, 30)
    await waitFor(() => src.lastSeq === pub.nextSeq - 1, 'catch-up')
    const before = src.lastSeq
    assert.ok(before >= 30)
    assert.ok(src.blocks > 0)

    await pub.close()
    await engine.close()
    engine = createMockEngine(engineOpts)
    pub = await bindAgain(engine, endpoint, replayEndpoint)
    const prompts: number[][] = []
    await waitFor(() => src.counters.restarts === 1 && src.lastSeq === pub.nextSeq - 1, 'restart detection and rebuild',
      async () => { prompts.push(...await traffic(engine)) })
    assert.ok(src.lastSeq < before, 'the new engine counts from 0')
    assertSameView(index, src, engine, prompts)
  } finally {
    await src.close()
    await pub.close()
    await engine.close()
  }
})

test('a restart whose new sequence already passed the old one is caught after the disconnect by comparing a replayed batch', async () => {
  let engine = createMockEngine(engineOpts)
  let pub = await KvEventPublisher.start(engine, { port: 0, replayPort: 0 })
  const { endpoint, replayEndpoint } = { endpoint: pub.endpoint, replayEndpoint: pub.replayEndpoint! }
  const index = new KvIndex({ blockSize: BS })
  // A slow reconnect lets the new engine publish past the old sequence before we hear from it.
  const src = new ZmqKvEventSource(index, { workerId: 'w', endpoint, replayEndpoint, reconnectIntervalMs: 1500 })
  try {
    await waitFor(() => src.lastSeq >= 1 && src.lastSeq === pub.nextSeq - 1, 'first batches', async () => { await traffic(engine) })
    const oldLast = src.lastSeq
    await pub.close()
    await engine.close()
    engine = createMockEngine(engineOpts)
    pub = await bindAgain(engine, endpoint, replayEndpoint)
    const prompts = await traffic(engine, oldLast + 4)
    assert.ok(pub.nextSeq - 1 > oldLast + 1)
    await waitFor(() => src.counters.restarts === 1 && src.lastSeq === pub.nextSeq - 1, 'restart detection',
      async () => { prompts.push(...await traffic(engine)) })
    assertSameView(index, src, engine, prompts)
  } finally {
    await src.close()
    await pub.close()
    await engine.close()
  }
})

test('without a replay endpoint a lost batch is counted and the stream goes on; close() is idempotent', async () => {
  const engine = createMockEngine(engineOpts)
  const pub = await KvEventPublisher.start(engine, { port: 0, replayPort: 0 })
  const index = new KvIndex({ blockSize: BS })
  const src = new ZmqKvEventSource(index, { workerId: 'w', endpoint: pub.endpoint })
  try {
    await waitFor(() => src.lastSeq >= 0, 'first batch', async () => { await traffic(engine) })
    await traffic(engine)
    await waitFor(() => src.lastSeq === pub.nextSeq - 1, 'catch-up')
    pub.dropNextBatches(1)
    await traffic(engine, 2)
    await waitFor(() => src.lastSeq === pub.nextSeq - 1, 'next batch')
    assert.equal(src.counters.gaps, 1)
    assert.equal(src.counters.lostBatches, 1)
    assert.equal(src.counters.replays, 0)
  } finally {
    await src.close()
    await src.close()
    await pub.close()
    await engine.close()
  }
})

test('bad source options are refused with the option named', () => {
  const index = new KvIndex({ blockSize: BS })
  assert.throws(() => new ZmqKvEventSource(index, { workerId: 'w', endpoint: 'localhost:5557' }), KvOptionError)
  assert.throws(() => new ZmqKvEventSource(index, { workerId: '', endpoint: 'tcp://127.0.0.1:1' }), /workerId/)
  assert.throws(() => new ZmqKvEventSource(index, { workerId: 'w', endpoint: 'tcp://127.0.0.1:1', replayTimeout: 5 } as never), /replayTimeout/)
})
