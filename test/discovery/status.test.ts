// `switchyard status --nats URL` against a real nats-server with one registered mock engine.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { runStatus } from '../../src/cli/status.js'
import { registerFleet, type FleetNats } from '../../src/discovery/index.js'
import { startMockFleet, type MockFleet } from '../../src/mocker/index.js'
import { workerIdFromUrl } from '../../src/registry/worker.js'
import { NatsServer, natsServerBinary, NO_NATS_SERVER } from '../fixtures/nats-server.js'
import { CLI } from './helpers.js'

const skip = natsServerBinary() === null ? NO_NATS_SERVER : false

async function status (argv: string[]): Promise<{ code: number, out: string[], err: string[] }> {
  const out: string[] = []
  const err: string[] = []
  const code = await runStatus(argv, { out: l => out.push(l), err: l => err.push(l), env: {} })
  return { code, out, err }
}

describe('switchyard status', { skip }, () => {
  let nats: NatsServer
  let fleet: MockFleet | null = null
  let reg: FleetNats | null = null

  before(async () => { nats = (await NatsServer.start())! })
  after(async () => {
    await reg?.close()
    await fleet?.close()
    await nats?.stop()
  })

  it('says there is no fleet before anyone used the bucket, and needs --nats', async () => {
    const r = await status(['--nats', nats.url])
    assert.equal(r.code, 0)
    assert.match(r.out.join('\n'), /no fleet: bucket switchyard-workers does not exist/)
    assert.equal((await status([])).code, 2)
    assert.equal((await status(['--nats', nats.url, '--nats-namespace', 'a.b'])).code, 2)
  })

  it('prints the registered engine as a table (worker, models, url, record age)', async () => {
    fleet = await startMockFleet({ numWorkers: 1, port: 0, speedupRatio: 0 })
    reg = await registerFleet(fleet.workers, { servers: nats.url, ttlMs: 5_000 })
    const url = fleet.workers[0]!.url
    const id = workerIdFromUrl(url)
    const r = await status(['--nats', nats.url])
    assert.equal(r.code, 0, r.err.join('\n'))
    assert.match(r.out[0]!, /^WORKER\s+MODELS\s+URL\s+AGE$/)
    assert.equal(r.out.length, 3)
    const cols = r.out[1]!.split(/\s+/)
    assert.deepEqual(cols.slice(0, 3), [id, 'mock-llm', url])
    assert.match(cols[3]!, /^\d+\.\ds$/)
    assert.ok(Number(cols[3]!.slice(0, -1)) < 5)
    assert.equal(r.out[2], '1 worker')

    const j = await status(['--nats', nats.url, '--json', '--load'])
    const doc = JSON.parse(j.out[0]!)
    assert.equal(doc.workers.length, 1)
    assert.equal(doc.workers[0].id, id)
    assert.equal(doc.workers[0].nats_events, true)
    assert.equal(doc.workers[0].block_size, 64)
    // The idle engine's heartbeat reaches the event plane within the wait.
    assert.equal(doc.workers[0].load?.kv_total, 16384)
  })

  it('runs as `switchyard status` from the CLI', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'status', '--nats', nats.url], { timeout: 15_000 })
    assert.match(stdout, /WORKER\s+MODELS\s+URL\s+AGE/)
    assert.match(stdout, /mock-llm/)
    assert.match(stdout, /1 worker/)
  })
})
