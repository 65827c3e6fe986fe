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

test('serve without any worker and without the embedded fleet exits 2 and says how to add one', async () => {
  const r = await collect(run(['serve', '--mock-workers', '0']))
  assert.equal(r.code, 2)
  assert.match(r.err, /no worker configured/)
  assert.match(r.err, /--worker http:\/\/127\.0\.0\.1:8000/)
})

for (const transport of ['native', 'http'] as const) {
test(`serve with no worker starts the embedded mock fleet, which the official client can use (${transport} transport)`, async () => {
  const p = run(['serve', '--port', '0', '--mock-workers', '2', '--mock-speedup', '0', '--mock-transport', transport])
  try {
    const url = await listening(p)
    const { default: OpenAI } = await import('openai')
    const client = new OpenAI({ baseURL: url + '/v1', apiKey: 'x', maxRetries: 0 })
    const models = await client.models.list()
    assert.deepEqual(models.data.map(m => m.id), ['mock-llm'])
    const r = await client.chat.completions.create({ model: 'mock-llm', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 8 })
    assert.equal(r.usage?.completion_tokens, 8)
    const s = await client.completions.create({ model: 'mock-llm', prompt: 'Hello', max_tokens: 5, stream: true, stream_options: { include_usage: true } })
    let chunks = 0
    let usage = null
    for await (const c of s) { if (c.choices[0]?.text) chunks++; if (c.usage) usage = c.usage }
    assert.equal(chunks, 5)
    assert.equal(usage?.completion_tokens, 5)
    const workers = await (await request(url + '/workers')).body.json() as any
    assert.deepEqual(workers.data.map((w: any) => w.id), ['mock-0', 'mock-1'])
    assert.deepEqual(workers.data.map((w: any) => typeof w.native_url === 'string' && w.native_url.startsWith('swy://')), transport === 'native' ? [true, true] : [false, false])
    const exited = once(p, 'exit')
    p.kill('SIGTERM')
    const [code] = await exited
    assert.equal(code, 0)
  } finally {
    p.kill('SIGKILL')
  }
})
}

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

test('access lines still held in the batch reach stdout when SIGTERM stops the gateway', async () => {
  const up = await startUpstream({ models: ['m'] })
  const p = run(['serve', '--port', '0', '--worker', up.url])
  let out = ''
  p.stdout!.on('data', (d) => { out += d })
  try {
    let url: string | null = null
    for (let i = 0; i < 200 && url === null; i++) {
      url = /"url":"(http:\/\/[^"]+)".*"msg":"switchyard listening"/.exec(out)?.[1] ?? null
      if (url === null) await new Promise(resolve => setTimeout(resolve, 25))
    }
    assert.ok(url !== null, 'the gateway listens')
    const base: string = url
    const ids = ['held-1', 'held-2', 'held-3']
    for (const id of ids) {
      const res = await request(base + '/v1/chat/completions', { method: 'POST', headers: { 'x-request-id': id }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }) })
      assert.equal(res.statusCode, 200)
      await res.body.text()
    }
    // Well inside the 50 ms batch window: the lines are still held when the signal lands.
    const exited = once(p, 'exit')
    p.kill('SIGTERM')
    const [code] = await exited
    assert.equal(code, 0)
    const lines = out.split('\n').filter(l => l.includes('"msg":"request"')).map(l => JSON.parse(l) as { rid: string, status: number })
    assert.deepEqual(lines.map(l => l.rid), ids)
    assert.ok(lines.every(l => l.status === 200))
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

test('serve turns V8 allocation-site pretenuring off, unless node was given the flag', async () => {
  const up = await startUpstream({ models: ['m'] })
  try {
    for (const [nodeArgs, expected] of [[[], 'off'], [['--allocation-site-pretenuring'], 'node flags']] as const) {
      const p = spawn(process.execPath, [...nodeArgs, CLI, 'serve', '--port', '0', '--worker', `m=${up.url}`], { stdio: ['ignore', 'pipe', 'pipe'] })
      try {
        let buf = ''
        let line: { v8_pretenuring?: string } | null = null
        for await (const d of p.stdout!) {
          buf += d
          const l = buf.split('\n').find(x => x.includes('"msg":"switchyard listening"'))
          if (l !== undefined) { line = JSON.parse(l); break }
        }
        assert.equal(line?.v8_pretenuring, expected, `node ${nodeArgs.join(' ')}`)
      } finally {
        p.kill('SIGKILL')
      }
    }
  } finally {
    await up.close()
  }
})
