// A KV event subscriber written only from DESIGN 4.2 (not from the publisher's code), run against
// the engine's real ZMQ sockets: decodes batches, notices a gap, recovers it through replay, and
// notices an engine restart.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Dealer, Subscriber } from 'zeromq'
import { Unpackr } from 'msgpackr'
import { createMockEngine, KvEventPublisher, LoadPublisher } from '../../src/mocker/index.js'
import type { MockEngine } from '../../src/mocker/index.js'

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' })
const END = 0xffffffffffffffffn

function seq8 (n: bigint): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(n)
  return b
}

class DesignSubscriber {
  readonly blocks = new Set<bigint>()
  readonly replayed: bigint[] = []
  restarts = 0
  gaps = 0
  batches = 0
  private lastApplied = -1n
  private lastLive = -1n
  private readonly sub = new Subscriber()
  private readonly loop: Promise<void>

  constructor (endpoint: string, private readonly replayEndpoint: string) {
    this.sub.connect(endpoint)
    this.sub.subscribe('')
    this.loop = this.run()
  }

  private async run (): Promise<void> {
    try {
      for await (const [, seqFrame, payload] of this.sub) {
        const seq = seqFrame!.readBigUInt64BE(0)
        // Within one publisher the live stream only rises: a drop means a new publisher (restart).
        if (this.lastLive >= 0n && seq <= this.lastLive) {
          this.restarts++
          this.blocks.clear()
          this.lastApplied = -1n
        }
        this.lastLive = seq
        if (seq <= this.lastApplied) continue // already applied through replay
        if (seq > this.lastApplied + 1n) {
          this.gaps++
          await this.replay(this.lastApplied + 1n)
          if (seq <= this.lastApplied) continue
        }
        this.apply(seq, payload!)
      }
    } catch (err) {
      if (!this.sub.closed) throw err
    }
  }

  private async replay (from: bigint): Promise<void> {
    const dealer = new Dealer({ linger: 0, receiveTimeout: 5000 })
    dealer.connect(this.replayEndpoint)
    try {
      await dealer.send(['', seq8(from)])
      for (;;) {
        const [empty, seqFrame, payload] = await dealer.receive()
        assert.equal(empty!.length, 0)
        const seq = seqFrame!.readBigUInt64BE(0)
        if (seq === END) {
          assert.equal(payload!.length, 0)
          return
        }
        if (seq > this.lastApplied) {
          this.replayed.push(seq)
          this.apply(seq, payload!)
        }
      }
    } finally {
      dealer.close()
    }
  }

  private apply (seq: bigint, payload: Buffer): void {
    assert.equal(seq, this.lastApplied + 1n, 'batches are applied in order without holes')
    const decoded = unpackr.unpack(payload) as unknown[]
    assert.ok(decoded.length === 2 || decoded.length === 3)
    assert.equal(typeof decoded[0], 'number')
    for (const e of decoded[1] as Array<Record<string, unknown>>) {
      const type = e.type
      if (type === 'BlockStored') for (const h of e.block_hashes as bigint[]) this.blocks.add(h)
      else if (type === 'BlockRemoved') for (const h of e.block_hashes as bigint[]) this.blocks.delete(h)
      else if (type === 'AllBlocksCleared') this.blocks.clear()
    }
    this.lastApplied = seq
    this.batches++
  }

  get applied (): bigint {
    return this.lastApplied
  }

  async close (): Promise<void> {
    this.sub.close()
    await this.loop
  }
}

async function waitFor (cond: () => boolean, what: string, tick: () => Promise<void>, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await tick()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

let salt = 0
async function traffic (engine: MockEngine): Promise<void> {
  const p = new Uint32Array(40)
  salt++
  for (let i = 0; i < p.length; i++) p[i] = i < 16 ? 7 + i : salt * 100 + i
  await engine.generate({ promptTokens: p, maxTokens: 2, ignoreEos: true })
}

const engineOpts = { speedupRatio: 0, blockSize: 8, numGpuBlocks: 24 } as const

test('a DESIGN 4.2 subscriber follows the engine, recovers a lost batch by replay, and notices a restart', async () => {
  let engine = createMockEngine(engineOpts)
  let pub = await KvEventPublisher.start(engine, { port: 0, replayPort: 0 })
  const endpoint = pub.endpoint
  const replayEndpoint = pub.replayEndpoint!
  const sub = new DesignSubscriber(endpoint, replayEndpoint)
  try {
    // PUB/SUB drops messages until the subscription reaches the publisher (slow joiner); batches
    // missed that way come back through replay, since the subscriber starts from seq 0.
    await waitFor(() => sub.batches > 0, 'first batch', async () => { await traffic(engine) })
    await waitFor(() => sub.applied === BigInt(pub.nextSeq - 1), 'catch up', async () => {})
    assert.deepEqual(sub.blocks, engine.blocks.cachedHashes())

    const gapsBefore = sub.gaps
    const lost = BigInt(pub.nextSeq)
    pub.dropNextBatches(1)
    await traffic(engine) // its batch is never sent
    await traffic(engine)
    await waitFor(() => sub.applied === BigInt(pub.nextSeq - 1), 'recovery after the gap', async () => {})
    assert.equal(sub.gaps, gapsBefore + 1, 'the gap was noticed')
    assert.ok(sub.replayed.includes(lost), 'the lost batch came from replay')
    assert.deepEqual(sub.blocks, engine.blocks.cachedHashes())
    // Enough batches that the restarted engine's sequence starts below it.
    for (let i = 0; i < 10; i++) await traffic(engine)
    await waitFor(() => sub.applied === BigInt(pub.nextSeq - 1), 'catch up', async () => {})

    // Restart: a fresh engine on the same ports, sequence back to 0.
    await pub.close()
    await engine.close()
    engine = createMockEngine(engineOpts)
    // ZMQ releases a closed socket's port asynchronously: retry the bind for a moment.
    for (let attempt = 0; ; attempt++) {
      try {
        pub = await KvEventPublisher.start(engine, { port: Number(new URL(endpoint).port), replayPort: Number(new URL(replayEndpoint).port) })
        break
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 50) throw err
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    await waitFor(() => sub.restarts === 1, 'restart detection', async () => { await traffic(engine) })
    await waitFor(() => sub.applied === BigInt(pub.nextSeq - 1), 'catch up after restart', async () => {})
    assert.ok(sub.applied < 10n, 'the new publisher counts from 0')
    assert.deepEqual(sub.blocks, engine.blocks.cachedHashes())
  } finally {
    await sub.close()
    await pub.close()
    await engine.close()
  }
})

test('the replay socket answers from a given seq and ends with the 0xFF…FF marker', async () => {
  const engine = createMockEngine(engineOpts)
  const pub = await KvEventPublisher.start(engine, { port: 0, replayPort: 0, replayBufferSize: 3 })
  const dealer = new Dealer({ linger: 0, receiveTimeout: 5000 })
  try {
    for (let i = 0; i < 5; i++) await traffic(engine)
    const last = pub.nextSeq - 1
    assert.ok(last >= 4)
    dealer.connect(pub.replayEndpoint!)
    await dealer.send(['', seq8(0n)])
    const seqs: bigint[] = []
    for (;;) {
      const [, s, payload] = await dealer.receive()
      const seq = s!.readBigUInt64BE(0)
      if (seq === END) break
      seqs.push(seq)
      assert.ok(payload!.length > 0)
    }
    assert.deepEqual(seqs, [last - 2, last - 1, last].map(BigInt), 'only the last N batches are kept')
  } finally {
    dealer.close()
    await pub.close()
    await engine.close()
  }
})

test('forward-pass metrics and idle heartbeats are published on the load socket', async () => {
  const engine = createMockEngine({ ...engineOpts, heartbeatMs: 50, workerId: 'w7' })
  const load = await LoadPublisher.start(engine, { port: 0 })
  const sub = new Subscriber({ receiveTimeout: 5000 })
  sub.connect(load.endpoint)
  sub.subscribe('load')
  try {
    const seen: Array<Record<string, unknown>> = []
    const reader = (async () => {
      while (!seen.some((m) => m.idle === false) || !seen.some((m) => m.idle === true)) {
        const [topic, s, payload] = await sub.receive()
        assert.equal(topic!.toString(), 'load')
        assert.equal(s!.length, 8)
        seen.push(unpackr.unpack(payload!) as Record<string, unknown>)
      }
    })()
    const stop = Date.now() + 5000
    while (!seen.some((m) => m.idle === false) && Date.now() < stop) {
      await traffic(engine)
      await new Promise((resolve) => setTimeout(resolve, 30))
    }
    await reader
    const pass = seen.find((m) => m.idle === false)!
    assert.equal(pass.worker_id, 'w7')
    assert.equal(pass.kv_total_blocks, 24)
    assert.ok((pass.scheduled_requests as number) >= 1)
    assert.ok((pass.scheduled_prefill_tokens as number) + (pass.scheduled_decode_tokens as number) >= 1)
    for (const key of ['waiting_requests', 'waiting_tokens', 'running_requests', 'kv_active_blocks', 'kv_usage', 'pass_ms', 'ts']) {
      assert.ok(key in pass, key)
    }
    const beat = seen.find((m) => m.idle === true)!
    assert.equal(beat.scheduled_requests, 0)
  } finally {
    sub.close()
    await load.close()
    await engine.close()
  }
})
