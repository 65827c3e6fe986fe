import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'undici'
import { startUpstream } from '../fixtures/openai-upstream.js'

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname

function run (args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
}

async function collect (p: ChildProcess): Promise<{ code: number | null, out: string, err: string }> {
  let out = ''
  let err = ''
  p.stdout!.on('data', d => { out += d })
  p.stderr!.on('data', d => { err += d })
  const [code] = await once(p, 'exit')
  return { code, out, err }
}

/** Waits for the JSON log line saying the gateway listens and returns its URL. */
async function listening (p: ChildProcess): Promise<string> {
  let buf = ''
  for await (const d of p.stdout!) {
    buf += d
    const m = /"url":"(http:\/\/[^"]+)".*"msg":"switchyard listening"/.exec(buf)
    if (m) return m[1]!
  }
  throw new Error('gateway exited before listening')
}

test('serve without any worker exits 2 and says how to add one', async () => {
  const r = await collect(run(['serve']))
  assert.equal(r.code, 2)
  assert.match(r.err, /no worker configured/)
  assert.match(r.err, /--worker http:\/\/127\.0\.0\.1:8000/)
})

test('serve with bad settings exits 2 naming them', async () => {
  const r = await collect(run(['serve', '--port', 'x', '--worker', 'http://127.0.0.1:1'], { SWITCHYARD_POLICY: 'nope' }))
  assert.equal(r.code, 2)
  assert.match(r.err, /--port must be an integer/)
  assert.match(r.err, /SWITCHYARD_POLICY must be one of/)
})

test('an unknown subcommand exits 2', async () => {
  const r = await collect(run(['serv']))
  assert.equal(r.code, 2)
  assert.match(r.err, /unknown command 'serv'/)
})

test('SIGTERM stops accepting, lets an in-flight stream finish, and exits 0', async () => {
  const up = await startUpstream({ models: ['m'], tokens: 40, tokenDelayMs: 10 })
  const p = run(['serve', '--port', '0', '--worker', up.url, '--shutdown-grace', '10s'])
  try {
    const url = await listening(p)
    const res = await request(url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true }) })
    assert.equal(res.statusCode, 200)
    const exited = once(p, 'exit')
    p.kill('SIGTERM')
    const text = await res.body.text()
    assert.equal((text.match(/"content"/g) ?? []).length, 40, 'the in-flight stream was cut')
    assert.ok(text.endsWith('data: [DONE]\n\n'))
    const [code] = await exited
    assert.equal(code, 0)
  } finally {
    p.kill('SIGKILL')
    await up.close()
  }
})

test('SIGTERM aborts what is still running when the grace period ends, and exits 0', async () => {
  const up = await startUpstream({ models: ['m'], tokens: 1000, tokenDelayMs: 10 })
  const p = run(['serve', '--port', '0', '--worker', up.url, '--shutdown-grace', '200ms'])
  try {
    const url = await listening(p)
    const res = await request(url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true }) })
    const exited = once(p, 'exit')
    const t0 = performance.now()
    p.kill('SIGTERM')
    await res.body.text().catch(() => '')
    const [code] = await exited
    assert.equal(code, 0)
    assert.ok(performance.now() - t0 < 3000)
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.notEqual(up.received[0]!.abortedAt, null, 'the upstream request was not aborted')
  } finally {
    p.kill('SIGKILL')
    await up.close()
  }
})
