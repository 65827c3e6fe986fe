// `switchyard serve --nats URL --replica-sync false`: the gateway serves through the NATS fleet but
// publishes nothing on the replica sync topic (`switchyard.<ns>.routing.>`). A gateway with the
// default (replica sync on) is the control: the same subscription does see its messages.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { connectNats, type NatsHandle } from '../../src/events/index.js'
import type { Gateway } from '../../src/frontend/gateway.js'
import { NatsServer, natsServerBinary, NO_NATS_SERVER } from '../fixtures/nats-server.js'
import { chat, CLI, listedWorkers, MockerProcess, natsGateway, sleep, until } from './helpers.js'

const skip = natsServerBinary() === null ? NO_NATS_SERVER : false

describe('serve --replica-sync false', { skip }, () => {
  let nats: NatsServer
  let mocker: MockerProcess | null = null
  let watcher: NatsHandle | null = null
  let serve: ChildProcess | null = null
  let control: Gateway | null = null
  const seen: string[] = []

  before(async () => {
    nats = (await NatsServer.start())!
    watcher = await connectNats({ servers: nats.url, name: 'replica-sync-watcher' })
    watcher.nc.subscribe('switchyard.default.routing.>', { callback: (err, msg) => { if (err === null) seen.push(msg.subject) } })
    await watcher.nc.flush()
    mocker = await MockerProcess.start(['--port', '0', '--speedup-ratio', '0', '--nats', nats.url])
  })

  after(async () => {
    await control?.close(1000)
    if (serve !== null && serve.exitCode === null && serve.signalCode === null) {
      const p = serve
      const gone = new Promise<void>(resolve => p.once('exit', () => resolve()))
      p.kill('SIGTERM')
      const t = setTimeout(() => p.kill('SIGKILL'), 5_000)
      await gone
      clearTimeout(t)
    }
    await mocker?.kill()
    await watcher?.close()
    await nats?.stop()
  })

  it('serves a request and publishes nothing on switchyard.default.routing.>', async () => {
    const p = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--nats', nats.url, '--replica-sync', 'false', '--mock-workers', '0', '--health-interval', '50ms', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] })
    serve = p
    let out = ''
    p.stdout?.on('data', (b: Buffer) => { out += b.toString() })
    p.stderr?.on('data', (b: Buffer) => { out += b.toString() })
    const gw = await until('serve to listen', 15_000, () => {
      if (p.exitCode !== null) throw new Error(`serve exited (${p.exitCode}): ${out}`)
      const m = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"switchyard listening"|"msg":"switchyard listening"[^\n]*"url":"(http:\/\/[^"]+)"/.exec(out)
      return m === null ? undefined : (m[1] ?? m[2])!
    })
    const id = new URL(mocker!.urls[0]!).host
    await until('the gateway to list the mocker', 10_000, async () => (await listedWorkers(gw)).includes(id))
    const r = await chat(gw, 'hello without replica sync')
    assert.equal(r.status, 200, JSON.stringify(r.body))
    // Replica sync would have sent the add/done batch at once and a heartbeat every second.
    await sleep(1_500)
    await watcher!.nc.flush()
    assert.deepEqual(seen, [], `routing messages from a gateway with --replica-sync false: ${seen.join(', ')}`)
  })

  it('control: a gateway with replica sync on is heard on the same subscription', async () => {
    control = await natsGateway(nats.url)
    await until('a routing message from the control gateway', 5_000, () => seen.length > 0)
    assert.match(seen[0]!, /^switchyard\.default\.routing\./)
  })
})
