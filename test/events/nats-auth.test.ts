// NATS credentials and TLS against a real nats-server: user/password and token in the URL, a .creds
// file in operator mode, TLS and mTLS with a throwaway CA, through connectNats and through the
// `status`, `mocker` and `serve` commands (the flags and the SWITCHYARD_NATS_* fallbacks).
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { runStatus } from '../../src/cli/status.js'
import { loadServeConfig } from '../../src/config/serve.js'
import { registerFleet } from '../../src/discovery/index.js'
import { connectNats, credentialsFromUrls, natsAuthFromFlags, redactNatsUrl, type NatsOptions } from '../../src/events/nats.js'
import { Gateway } from '../../src/frontend/gateway.js'
import { startMockFleet } from '../../src/mocker/index.js'
import { workerIdFromUrl } from '../../src/registry/worker.js'
import { CLI, listedWorkers, MockerProcess, until } from '../discovery/helpers.js'
import { NatsServer, natsServerBinary, NO_NATS_SERVER, operatorMode } from '../fixtures/nats-server.js'

const skip = natsServerBinary() === null ? NO_NATS_SERVER : false

function which (bin: string): boolean {
  try {
    execFileSync('which', [bin], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

interface CliResult { code: number, stdout: string, stderr: string }

/** `switchyard ARGS` as a child process; never rejects (the exit code is part of the result). */
async function cli (args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 15_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

async function status (argv: string[], env: Record<string, string> = {}): Promise<{ code: number, out: string, err: string }> {
  const out: string[] = []
  const err: string[] = []
  const code = await runStatus(argv, { out: l => out.push(l), err: l => err.push(l), env })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

/** Connects, round-trips one request through the server, closes. */
async function roundTrip (servers: string, extra: Omit<NatsOptions, 'servers'> = {}): Promise<void> {
  const nats = await connectNats({ servers, timeoutMs: 3_000, ...extra })
  try {
    const sub = nats.nc.subscribe('swy.echo', { max: 1, callback: (_e, m) => { m.respond(m.data) } })
    const r = await nats.nc.request('swy.echo', 'ping', { timeout: 2_000 })
    assert.equal(r.string(), 'ping')
    sub.unsubscribe()
  } finally {
    await nats.close()
  }
}

describe('credentials in server URLs (unit)', () => {
  it('moves user:pass@ and token@ out of the URLs, percent-decoded', () => {
    assert.deepEqual(credentialsFromUrls(['nats://a%40b:p%3Aw%2Fd@h:4222', 'nats://h2:4222']), { servers: ['nats://h:4222', 'nats://h2:4222'], user: 'a@b', pass: 'p:w/d' })
    assert.deepEqual(credentialsFromUrls(['nats://s3cret@h']), { servers: ['nats://h'], token: 's3cret' })
    assert.deepEqual(credentialsFromUrls(['h:4222']), { servers: ['h:4222'] })
    assert.throws(() => credentialsFromUrls(['nats://a:1@h', 'nats://a:2@h2']), /different credentials/)
    assert.equal(redactNatsUrl('nats://u:p@h:4222,nats://t@h2'), 'nats://***@h:4222,nats://***@h2')
  })

  it('checks the files of the auth flags and names the flag', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swy-auth-'))
    try {
      const f = join(dir, 'f.pem')
      writeFileSync(f, 'x')
      assert.deepEqual(natsAuthFromFlags({}), {})
      assert.deepEqual(natsAuthFromFlags({ creds: '', tlsCa: '', tlsCert: '', tlsKey: '' }), {})
      assert.deepEqual(natsAuthFromFlags({ tlsCa: 'system' }), { tls: {} })
      assert.deepEqual(natsAuthFromFlags({ tlsCa: f, tlsCert: f, tlsKey: f }), { tls: { caFile: f, certFile: f, keyFile: f } })
      assert.throws(() => natsAuthFromFlags({ creds: join(dir, 'nope.creds') }), /--nats-creds .*nope\.creds: no such file/)
      assert.throws(() => natsAuthFromFlags({ creds: f }), /--nats-creds .*: not a NATS \.creds file/)
      assert.throws(() => natsAuthFromFlags({ creds: dir }), /--nats-creds .*: not a regular file/)
      assert.throws(() => natsAuthFromFlags({ tlsCa: join(dir, 'ca.pem') }), /--nats-tls-ca .*ca\.pem: no such file/)
      assert.throws(() => natsAuthFromFlags({ tlsCert: f }), /--nats-tls-cert and --nats-tls-key go together .*only --nats-tls-cert is set/)
      assert.throws(() => natsAuthFromFlags({ tlsCert: f, tlsKey: join(dir, 'k.pem') }), /--nats-tls-key .*k\.pem: no such file/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('NATS user/password and token', { skip }, () => {
  let userPass: NatsServer
  let token: NatsServer
  before(async () => {
    userPass = (await NatsServer.start({ args: ['--user', 'swy', '--pass', 'p@ss:w/rd'] }))!
    token = (await NatsServer.start({ args: ['--auth', 's3cret'] }))!
  })
  after(async () => {
    await userPass?.stop()
    await token?.stop()
  })

  it('connectNats authenticates with user:pass@ from the URL; a wrong or missing password fails with an authorization error', async () => {
    const at = (userinfo: string): string => `nats://${userinfo}@127.0.0.1:${userPass.port}`
    await roundTrip(at('swy:p%40ss%3Aw%2Frd'))
    await roundTrip(userPass.url, { user: 'swy', pass: 'p@ss:w/rd' })
    await assert.rejects(connectNats({ servers: at('swy:wrong'), timeoutMs: 3_000 }), /Authorization Violation/)
    await assert.rejects(connectNats({ servers: userPass.url, timeoutMs: 3_000 }), /Authorization Violation/)
  })

  it('connectNats authenticates with token@ from the URL', async () => {
    await roundTrip(`nats://s3cret@127.0.0.1:${token.port}`)
    await assert.rejects(connectNats({ servers: `nats://nope@127.0.0.1:${token.port}`, timeoutMs: 3_000 }), /Authorization Violation/)
  })

  it('status takes the credentials from the URL and never prints them', async () => {
    const ok = await status(['--nats', `nats://swy:p%40ss%3Aw%2Frd@127.0.0.1:${userPass.port}`])
    assert.equal(ok.code, 0, ok.err)
    assert.match(ok.out, /no fleet/)
    const bad = await status(['--nats', `nats://swy:hunter2@127.0.0.1:${userPass.port}`])
    assert.equal(bad.code, 1)
    assert.match(bad.err, /cannot reach NATS at nats:\/\/\*\*\*@127\.0\.0\.1:\d+: .*Authorization Violation/)
    assert.doesNotMatch(bad.err, /hunter2/)
  })
})

describe('NATS .creds file (operator mode)', { skip }, () => {
  let nats: NatsServer
  let dir: string
  let creds: string
  before(async () => {
    const op = operatorMode()
    dir = mkdtempSync(join(tmpdir(), 'swy-creds-'))
    creds = join(dir, 'user.creds')
    writeFileSync(creds, op.creds, { mode: 0o600 })
    nats = (await NatsServer.start({ config: op.config }))!
  })
  after(async () => {
    await nats?.stop()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it('connectNats, status (flag and SWITCHYARD_NATS_CREDS) and a registered fleet work with the creds file; without it the server refuses', async () => {
    await roundTrip(nats.url, natsAuthFromFlags({ creds }))
    await assert.rejects(connectNats({ servers: nats.url, timeoutMs: 3_000 }), /Authorization Violation/)
    const fleet = await startMockFleet({ numWorkers: 1, port: 0, speedupRatio: 0 })
    const reg = await registerFleet(fleet.workers, { servers: nats.url, ttlMs: 5_000, ...natsAuthFromFlags({ creds }) })
    try {
      const byFlag = await status(['--nats', nats.url, '--nats-creds', creds])
      assert.equal(byFlag.code, 0, byFlag.err)
      assert.match(byFlag.out, new RegExp(`${workerIdFromUrl(fleet.workers[0]!.url)}\\s+mock-llm`))
      const byEnv = await status(['--nats', nats.url], { SWITCHYARD_NATS_CREDS: creds })
      assert.equal(byEnv.code, 0, byEnv.err)
      assert.match(byEnv.out, /1 worker/)
      const none = await status(['--nats', nats.url])
      assert.equal(none.code, 1)
      assert.match(none.err, /Authorization Violation/)
    } finally {
      await reg.close()
      await fleet.close()
    }
  })

  it('a missing creds file is a start-up error naming the flag (status, mocker, register: exit 2)', async () => {
    const missing = join(dir, 'missing.creds')
    const runs = await Promise.all([
      cli(['status', '--nats', nats.url, '--nats-creds', missing]),
      cli(['status', '--nats', nats.url], { SWITCHYARD_NATS_CREDS: missing }),
      cli(['mocker', '--port', '0', '--nats', nats.url, '--nats-creds', missing]),
      cli(['register', '--nats', nats.url, '--url', 'http://127.0.0.1:1', '--model', 'm', '--nats-creds', missing])
    ])
    for (const r of runs) {
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, /--nats-creds .*missing\.creds: no such file/)
    }
  })

  it('serve refuses to start with a missing creds file', async () => {
    const { config } = loadServeConfig(['--port', '0', '--nats', nats.url, '--mock-workers', '0', '--nats-creds', join(dir, 'missing.creds')], {})
    const g = new Gateway(config, { logger: pino({ level: 'silent' }) })
    try {
      await assert.rejects(g.start(), /--nats-creds .*missing\.creds: no such file/)
    } finally {
      await g.close()
    }
  })
})

describe('NATS over TLS and mTLS', { skip: skip !== false ? skip : which('openssl') ? false : 'openssl not found: cannot make the test certificates' }, () => {
  let dir: string
  let tls: NatsServer
  let mtls: NatsServer
  const pem = (name: string): string => join(dir, name)

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'swy-tls-'))
    const ssl = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }) }
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    ssl('req', '-x509', ...ec, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=switchyard test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    const leaf = (name: string, cn: string, ext: string): void => {
      ssl('req', ...ec, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
      writeFileSync(pem(`${name}.ext`), ext)
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`)
    }
    leaf('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
    leaf('client', 'switchyard-test-client', 'extendedKeyUsage=clientAuth\n')
    const serverTls = ['--tls', '--tlscert', pem('server.pem'), '--tlskey', pem('server-key.pem')]
    tls = (await NatsServer.start({ args: serverTls }))!
    mtls = (await NatsServer.start({ args: [...serverTls, '--tlsverify', '--tlscacert', pem('ca.pem')] }))!
  })
  after(async () => {
    await tls?.stop()
    await mtls?.stop()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it('status --nats-tls-ca CA connects; without it the CLI exits non-zero naming the certificate problem', async () => {
    const ok = await cli(['status', '--nats', tls.url, '--nats-tls-ca', pem('ca.pem')])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /no fleet/)
    const env = await status(['--nats', tls.url], { SWITCHYARD_NATS_TLS_CA: pem('ca.pem') })
    assert.equal(env.code, 0, env.err)
    const bad = await cli(['status', '--nats', tls.url])
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+: .*certificate.*--nats-tls-ca/)
  })

  it('a mocker registers over TLS (--nats-tls-ca) and status lists it', async () => {
    const m = await MockerProcess.start(['--port', '0', '--speedup-ratio', '0', '--nats', tls.url, '--nats-tls-ca', pem('ca.pem')])
    try {
      const url = m.urls[0]!
      const r = await cli(['status', '--nats', tls.url, '--nats-tls-ca', pem('ca.pem')])
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, new RegExp(`${workerIdFromUrl(url)}\\s+mock-llm\\s+${url}`))
      assert.match(r.stdout, /1 worker/)
    } finally {
      await m.kill('SIGTERM')
    }
  })

  it('mTLS: status and the mocker present the client certificate; a gateway (nats_tls_cert/nats_tls_key) finds the mocker; no certificate, no connection', async () => {
    const client = ['--nats-tls-ca', pem('ca.pem'), '--nats-tls-cert', pem('client.pem'), '--nats-tls-key', pem('client-key.pem')]
    const m = await MockerProcess.start(['--port', '0', '--speedup-ratio', '0', '--nats', mtls.url, ...client])
    let g: Gateway | null = null
    try {
      const id = workerIdFromUrl(m.urls[0]!)
      const r = await cli(['status', '--nats', mtls.url, ...client])
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, new RegExp(`${id}\\s+mock-llm`))
      const noCert = await cli(['status', '--nats', mtls.url, '--nats-tls-ca', pem('ca.pem')])
      assert.notEqual(noCert.code, 0)
      assert.match(noCert.stderr, /cannot reach NATS .*--nats-tls-cert and --nats-tls-key/)
      const { config } = loadServeConfig(['--port', '0', '--nats', mtls.url, '--mock-workers', '0', '--health-interval', '50ms', ...client], {})
      g = new Gateway(config, { logger: pino({ level: 'silent' }) })
      const gw = await g.start()
      await until('the gateway to list the mocker', 10_000, async () => (await listedWorkers(gw)).includes(id))
    } finally {
      await g?.close()
      await m.kill('SIGTERM')
    }
  })
})
