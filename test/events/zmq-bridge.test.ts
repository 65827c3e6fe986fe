// The registrar's ZMQ → NATS KV bridge, with real parts only: a real nats-server, mock engines
// publishing vLLM-format KV events on real ZMQ sockets, `switchyard register` as a child process,
// and the gateways' own NatsKvSubscriber feeding a KvIndex.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { runStatus } from '../../src/cli/status.js'
import { connectNats, NatsKvSubscriber, subjectFor, ZmqNatsBridge, type NatsHandle } from '../../src/events/index.js'
import { InProcessKvEventSource, KvIndex } from '../../src/kv/index.js'
import { createMockEngine, KvEventPublisher, startMockFleet, type MockEngine, type MockFleet } from '../../src/mocker/index.js'
import { workerIdFromUrl } from '../../src/registry/worker.js'
import { CLI, until } from '../discovery/helpers.js'
import { NatsServer, natsServerBinary, NO_NATS_SERVER } from '../fixtures/nats-server.js'

const skip = natsServerBinary() === null ? NO_NATS_SERVER : false
const BS = 8
const engineOpts = { speedupRatio: 0, blockSize: BS, numGpuBlocks: 64 } as const

let salt = 0
/** Prompts sharing one of three prefixes, then their own tokens; enough of them evict blocks. */
async function traffic (engine: MockEngine, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    salt++
    const p: number[] = []
    for (let j = 0; j < 2 * BS + 3; j++) p.push(1000 * (salt % 3) + j)
    for (let j = 0; j < 3 * BS; j++) p.push(100_000 + salt * 100 + j)
    await engine.generate({ promptTokens: p, maxTokens: 2, ignoreEos: true })
  }
}

/** A gateway's view of one worker's KV events through NATS (what startDistributed wires). */
class GatewayView {
  readonly index = new KvIndex({ blockSize: BS })
  readonly sub: NatsKvSubscriber
  readonly src: InProcessKvEventSource

  constructor (nats: NatsHandle, workerId: string) {
    this.sub = new NatsKvSubscriber(nats.nc, { namespace: 'default', snapshotTimeoutMs: 2_000, retryMs: 200, onWarn: () => {} })
    this.src = new InProcessKvEventSource(this.index, this.sub.engineFor(workerId), { workerId })
  }

  hashes (): Set<bigint> {
    return new Set(this.index.engineHashes(this.src.slot))
  }

  async close (): Promise<void> {
    await this.src.close()
    await this.sub.close()
  }
}

function sameSet (a: Set<bigint>, b: Set<bigint>): boolean {
  if (a.size !== b.size) return false
  for (const x of a) if (!b.has(x)) return false
  return true
}

async function stopChild (p: ChildProcess | null): Promise<void> {
  if (p === null || p.exitCode !== null || p.signalCode !== null) return
  const gone = new Promise<void>(resolve => p.once('exit', () => resolve()))
  p.kill('SIGTERM')
  const t = setTimeout(() => p.kill('SIGKILL'), 5_000)
  await gone
  clearTimeout(t)
}

async function records (url: string): Promise<Array<Record<string, unknown>>> {
  const out: string[] = []
  const code = await runStatus(['--nats', url, '--json'], { out: l => out.push(l), err: () => {}, env: {} })
  assert.equal(code, 0)
  return JSON.parse(out.join('\n')).workers
}

describe('switchyard register bridges ZMQ KV events onto NATS', { skip, timeout: 60_000 }, () => {
  let nats: NatsServer
  let fleet: MockFleet
  let client: NatsHandle
  const children: ChildProcess[] = []
  const views: GatewayView[] = []

  const register = async (args: string[]): Promise<{ proc: ChildProcess, out: () => string }> => {
    let out = ''
    const proc = spawn(process.execPath, [CLI, 'register', '--nats', nats.url, '--ttl', '3000', '--probe-interval', '200', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(proc)
    proc.stderr!.on('data', (b: Buffer) => { out += b.toString() })
    await until('the sidecar registered the engine', 15_000, () => out.includes('registered on'))
    return { proc, out: () => out }
  }

  before(async () => {
    nats = (await NatsServer.start())!
    fleet = await startMockFleet({ numWorkers: 2, port: 0, kvEventsPort: 0, model: 'vllm-model', ...engineOpts })
    client = await connectNats({ servers: nats.url, name: 'zmq-bridge-test' })
  })

  after(async () => {
    await Promise.all(views.map(async (v) => { await v.close() }))
    await Promise.all(children.map(stopChild))
    await client?.close()
    await fleet?.close()
    await nats?.stop()
  })

  it('republishes the engine\'s events: a subscriber\'s index holds exactly the engine\'s cache; a late subscriber gets it by snapshot', { timeout: 20_000 }, async () => {
    const w = fleet.workers[0]!
    const id = workerIdFromUrl(w.url)
    const early = new GatewayView(client, id)
    views.push(early)
    const { proc, out } = await register(['--url', w.url, '--kv-events', w.kvEvents!.endpoint, '--kv-replay', w.kvEvents!.replayEndpoint!, '--block-size', String(BS)])
    assert.match(out(), /bridged to NATS namespace default/)
    const rec = (await records(nats.url)).find(r => r.id === id)!
    assert.equal(rec.nats_events, true)
    assert.equal(rec.kv_events, w.kvEvents!.endpoint, 'the ZMQ endpoints stay in the record for information')

    await traffic(w.engine, 20)
    assert.ok(w.engine.blocks.evictions > 0, 'removals travel too')
    await until('the early subscriber to match the engine', 10_000, () => sameSet(early.hashes(), w.engine.blocks.cachedHashes()))
    assert.ok(early.index.blockCount(early.src.slot) > 0)
    assert.equal(early.index.blockCount(early.src.slot), w.engine.blocks.cachedBlocks)

    // Started after all of it: only the bridge's snapshot can tell it what the engine holds.
    const late = new GatewayView(client, id)
    views.push(late)
    await until('the late subscriber to match the engine', 10_000, () => sameSet(late.hashes(), w.engine.blocks.cachedHashes()))
    assert.ok(late.sub.stream(id)!.counters.snapshots >= 1)
    await traffic(w.engine, 3)
    await until('both to follow the live stream', 10_000, () => sameSet(late.hashes(), w.engine.blocks.cachedHashes()) && sameSet(early.hashes(), late.hashes()))

    // SIGTERM closes the bridge and the registration, then NATS, and exits cleanly.
    const code = await new Promise<number | null>(resolve => { proc.once('exit', resolve); proc.kill('SIGTERM') })
    assert.equal(code, 0, out())
  })

  it('--kv-direct registers the ZMQ endpoints for gateways to follow, and publishes nothing on NATS', { timeout: 20_000 }, async () => {
    const w = fleet.workers[1]!
    const id = workerIdFromUrl(w.url)
    let kvMessages = 0
    const spy = client.nc.subscribe(subjectFor('default', 'kv', id), { callback: (err) => { if (err === null) kvMessages++ } })
    try {
      const { out } = await register(['--url', w.url, '--kv-events', w.kvEvents!.endpoint, '--kv-replay', w.kvEvents!.replayEndpoint!, '--kv-direct'])
      assert.match(out(), /follow KV events at tcp:/)
      const rec = (await records(nats.url)).find(r => r.id === id)!
      assert.equal(rec.nats_events, false)
      assert.equal(rec.kv_events, w.kvEvents!.endpoint)
      assert.equal(rec.kv_replay, w.kvEvents!.replayEndpoint)
      await traffic(w.engine, 3)
      await new Promise(resolve => setTimeout(resolve, 300))
      assert.equal(kvMessages, 0)
    } finally {
      spy.unsubscribe()
    }
  })

  it('rejects a bad --nats-namespace', { timeout: 10_000 }, async () => {
    const p = spawn(process.execPath, [CLI, 'register', '--nats', nats.url, '--url', 'http://127.0.0.1:1', '--kv-events', 'tcp://127.0.0.1:1', '--nats-namespace', 'a.b'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    p.stderr!.on('data', (b: Buffer) => { err += b.toString() })
    const code = await new Promise<number | null>(resolve => p.once('exit', resolve))
    assert.equal(code, 2)
    assert.match(err, /namespace/)
  })
})

describe('ZmqNatsBridge', { skip, timeout: 40_000 }, () => {
  it('an engine restart on the ZMQ side clears the worker for subscribers, which then follow the new engine', { timeout: 20_000 }, async () => {
    const nats = (await NatsServer.start())!
    const client = await connectNats({ servers: nats.url })
    let engine = createMockEngine(engineOpts)
    let pub = await KvEventPublisher.start(engine, { port: 0, replayPort: 0 })
    const { endpoint, replayEndpoint } = { endpoint: pub.endpoint, replayEndpoint: pub.replayEndpoint! }
    const bridge = new ZmqNatsBridge(client.nc, { namespace: 'default', workerId: 'w', endpoint, replayEndpoint, blockSize: BS })
    const view = new GatewayView(client, 'w')
    try {
      await until('the bridge to follow the engine', 10_000, async () => { await traffic(engine, 1); return bridge.lastSeq >= 0 })
      await traffic(engine, 10)
      await until('the subscriber to match the first engine', 10_000, () => sameSet(view.hashes(), engine.blocks.cachedHashes()))
      const firstBlocks = view.hashes().size
      assert.ok(firstBlocks > 0)

      await pub.close()
      await engine.close()
      engine = createMockEngine(engineOpts)
      pub = await bindAgain(engine, endpoint, replayEndpoint)
      // Until the new publisher's first batch the bridge cannot tell the engine restarted.
      await until('restart detected', 10_000, async () => { await traffic(engine, 1); return bridge.counters.restarts === 1 })
      await traffic(engine, 3)
      await until('the subscriber to match the new engine', 10_000, () => sameSet(view.hashes(), engine.blocks.cachedHashes()))
      assert.equal(bridge.counters.restarts, 1)
      assert.ok(bridge.counters.clears === 0, 'the clear came from the restart, not from the engine')
      assert.equal(bridge.blocks, engine.blocks.cachedHashes().size, 'the snapshot mirror follows the new engine')
      assert.equal(bridge.counters.decodeErrors, 0)
      assert.ok(bridge.published > 0)
    } finally {
      await view.close()
      await bridge.close()
      await pub.close()
      await engine.close()
      await client.close()
      await nats.stop()
    }
  })

  it('rejects unknown options and a bad namespace', async () => {
    const nats = (await NatsServer.start())!
    const client = await connectNats({ servers: nats.url })
    try {
      assert.throws(() => new ZmqNatsBridge(client.nc, { namespace: 'default', workerId: 'w', endpoint: 'tcp://127.0.0.1:1', replayTimeout: 5 } as never), /replayTimeout/)
      assert.throws(() => new ZmqNatsBridge(client.nc, { namespace: 'a.b', workerId: 'w', endpoint: 'tcp://127.0.0.1:1' }), /namespace/)
      assert.throws(() => new ZmqNatsBridge(client.nc, { namespace: 'default', workerId: 'w', endpoint: 'localhost:5557' }), /endpoint/)
    } finally {
      await client.close()
      await nats.stop()
    }
  })
})

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
