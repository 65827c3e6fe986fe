import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseMockerFlags, runMocker, startMockFleet } from '../../src/mocker/index.js'
import { NativeUpstream } from '../../src/transport/native/index.js'
import { chat, openCollect } from '../transport/native/helpers.js'

test('--native-port maps to nativePort and takes part in the port-overlap check', async () => {
  assert.deepEqual(parseMockerFlags(['--native-port', '0']), { nativePort: 0 })
  assert.deepEqual(parseMockerFlags(['--native-port', '9100', '--num-workers', '2']), { nativePort: 9100, numWorkers: 2 })
  assert.throws(() => parseMockerFlags(['--port', '9000', '--native-port', '9001', '--num-workers', '2']), /--port 9000 and --native-port 9001 overlap/)
  assert.throws(() => parseMockerFlags(['--native-port', 'x']), /--native-port must be an integer/)
})

test('a fleet with nativePort serves both transports per worker, with the same output', { timeout: 15_000 }, async () => {
  const fleet = await startMockFleet({ numWorkers: 2, port: 0, nativePort: 0, speedupRatio: 0, heartbeatMs: 0 })
  const ups: NativeUpstream[] = []
  try {
    for (const w of fleet.workers) {
      assert.match(w.nativeUrl!, /^swy:\/\/127\.0\.0\.1:\d+$/)
      assert.equal(w.native?.url, w.nativeUrl)
      const up = new NativeUpstream(w.nativeUrl!)
      ups.push(up)
      const o = await openCollect(up, chat('hello', 6)).done
      assert.equal(o.error, null)
      const res = await fetch(`${w.url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock-llm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 6, ignore_eos: true })
      })
      const json = await res.json() as any
      assert.equal(o.text, json.choices[0].message.content)
    }
  } finally {
    for (const up of ups) await up.close()
    await fleet.close()
  }
  for (const w of fleet.workers) assert.equal(w.native?.stats().connections, 0)
})

test('without nativePort the fleet is HTTP only', { timeout: 10_000 }, async () => {
  const fleet = await startMockFleet({ port: 0, heartbeatMs: 0 })
  try {
    assert.equal(fleet.workers[0]!.nativeUrl, null)
    assert.equal(fleet.workers[0]!.native, null)
  } finally {
    await fleet.close()
  }
})

test('`switchyard mocker --native-port 0` logs each worker\'s swy:// address', { timeout: 10_000 }, async () => {
  const lines: string[] = []
  const m = await runMocker(['--native-port', '0', '--port', '0'], { log: (l) => lines.push(l) })
  try {
    assert.ok(lines.some((l) => /worker 0: http:\/\/\S+ \(model mock-llm\), native swy:\/\/127\.0\.0\.1:\d+/.test(l)), lines.join('\n'))
  } finally {
    await m.close()
  }
})
