// The `kv` topic over a real nats-server: attach (snapshot), in-order delivery, gap repair,
// worker restart, and the subject encoding of worker ids.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  BlockMirror, connectNats, fromSubjectToken, NatsKvPublisher, NatsKvSubscriber, subjectFor, subjectToken, workerOfSubject, type NatsHandle
} from '../../src/events/index.js'
import type { InProcessKvEvent } from '../../src/kv/index.js'
import { NatsServer, natsServerBinary, NO_NATS_SERVER } from '../fixtures/nats-server.js'

const skip = natsServerBinary() === null ? NO_NATS_SERVER : false
const WORKER = '127.0.0.1:9000'
const BS = 4

let nextHash = 1n
/** A chain of `n` new blocks under `parent`. */
function stored (n: number, parent: bigint | null = null): InProcessKvEvent & { blockHashes: bigint[] } {
  const blockHashes = Array.from({ length: n }, () => (nextHash++) * 0x9e3779b97f4a7c15n % (1n << 64n))
  return { type: 'BlockStored', blockHashes, parentBlockHash: parent, tokenIds: Array.from({ length: n * BS }, (_v, i) => i), blockSize: BS }
}

async function until (what: string, check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('kv topic over NATS', { skip }, () => {
  let nats: NatsServer
  let pubConn: NatsHandle
  let subConn: NatsHandle

  before(async () => {
    nats = (await NatsServer.start())!
    pubConn = await connectNats({ servers: nats.url })
    subConn = await connectNats({ servers: nats.url })
  })
  after(async () => {
    await pubConn?.close()
    await subConn?.close()
    await nats?.stop()
  })

  it('encodes worker ids into one subject token, reversibly', () => {
    assert.equal(subjectToken('127.0.0.1:8000'), '127%2E0%2E0%2E1:8000')
    assert.equal(fromSubjectToken(subjectToken('a.b*c>d e%f')), 'a.b*c>d e%f')
    const s = subjectFor('ns', 'kv', 'h.x:1')
    assert.equal(s.split('.').length, 4)
    assert.equal(workerOfSubject(s), 'h.x:1')
  })

  it('a subscriber attaching late gets a snapshot, then the stream; a gap is repaired; a restart clears', async () => {
    let pub = new NatsKvPublisher(pubConn.nc, { namespace: 't', workerId: WORKER, snapshotChunkBytes: 64 })
    const a = stored(3)
    pub.publish([a])
    // On the server before the subscriber exists: else it may see seq 1 live and need no snapshot.
    await pubConn.nc.flush()
    const sub = new NatsKvSubscriber(subConn.nc, { namespace: 't', retryMs: 200 })
    try {
      const stream = sub.engineFor(WORKER)
      const seen = new BlockMirror()
      const off = stream.onKvEvents((batch) => { for (const e of batch.events) seen.apply(e) })
      await until('the snapshot', () => seen.size === 3)
      assert.equal(stream.counters.snapshots, 1)

      const b = stored(2, a.blockHashes[2]!)
      pub.publish([b])
      await until('the next batch', () => seen.size === 5)
      assert.equal(stream.counters.gaps, 0)

      // A lost message: the next one reveals the gap, a snapshot repairs it (several chunks).
      pub.dropNext(1)
      pub.publish([stored(4, b.blockHashes[1]!)])
      pub.publish([stored(1)])
      await until('the repair', () => seen.size === 10)
      assert.equal(stream.counters.gaps, 1)
      assert.equal(stream.counters.snapshots, 2)

      pub.publish([{ type: 'BlockRemoved', blockHashes: a.blockHashes.slice(1) }])
      await until('the removal', () => seen.size === 8)

      // The worker restarted: a new publisher starting at seq 1 clears what it had.
      await pub.close()
      pub = new NatsKvPublisher(pubConn.nc, { namespace: 't', workerId: WORKER })
      pub.publish([stored(2)])
      await until('the restart', () => seen.size === 2)
      assert.equal(stream.counters.restarts, 1)
      off()
    } finally {
      await pub.close()
      await sub.close()
    }
  })

  it('a worker that does not answer snapshots is followed from its next event', async () => {
    const sub = new NatsKvSubscriber(subConn.nc, { namespace: 't', snapshotTimeoutMs: 200, retryMs: 100_000 })
    const pub = new NatsKvPublisher(pubConn.nc, { namespace: 't', workerId: 'silent:1' })
    try {
      // Its snapshot subscription is gone (an old worker): attach fails, events still apply.
      await pub.close()
      const stream = sub.engineFor('silent:1')
      const seen = new BlockMirror()
      stream.onKvEvents((batch) => { for (const e of batch.events) seen.apply(e) })
      await until('the failed snapshot', () => stream.counters.snapshotFailures === 1)
      const raw = new NatsKvPublisher(pubConn.nc, { namespace: 't', workerId: 'silent:1' })
      raw.publish([stored(1)])
      raw.publish([stored(2)])
      await until('events', () => seen.size === 3)
      await raw.close()
    } finally {
      await sub.close()
    }
  })
})
