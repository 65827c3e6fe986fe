import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { NativeUpstream } from '../../../src/transport/native/index.js'
import { chat, openCollect, waitFor } from './helpers.js'

// dist-*/test/transport/native/ -> dist-*/src/cli/main.js: the CLI built alongside this test.
const MAIN = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url))

test('a real worker process killed with SIGKILL mid-stream fails every open stream at once, retryable; nothing hangs', { timeout: 30_000 }, async () => {
  const child = spawn(process.execPath, [MAIN, 'mocker', '--native-port', '0', '--port', '0', '--speedup-ratio', '1'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { out += c.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let up: NativeUpstream | null = null
  try {
    await waitFor(() => /native (swy:\/\/\S+)/.test(out) && out.includes('ready'), 15_000, `mocker start (output so far: ${out})`)
    const url = /native (swy:\/\/\S+)/.exec(out)![1]!
    up = new NativeUpstream(url, { idleTimeoutMs: 5000, connections: 2, streamsPerConnection: 10 })
    const u = up
    const runs = Array.from({ length: 30 }, (_, i) => openCollect(u, chat(`tell me story ${i}`, 5000)).done)
    await waitFor(() => u.stats().items >= 60, 10_000, 'items streaming')
    const t0 = performance.now()
    child.kill('SIGKILL')
    const outs = await Promise.all(runs)
    const ms = performance.now() - t0
    assert.ok(ms < 5000, `streams failed ${ms} ms after the kill, want within the 5 s idle deadline`)
    for (const o of outs) {
      assert.equal(o.calls, 1)
      assert.equal(o.error?.retryable, true, o.error?.message)
      assert.equal(o.error?.code, 'SWY_ERR_NATIVE_CONNECTION')
    }
    assert.equal(u.openStreams, 0)
    assert.ok(u.tombstonedUntil > Date.now())
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    await up?.close()
  }
})
