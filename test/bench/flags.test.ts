import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseBenchFlags, parsePriorityMix } from '../../src/bench/flags.js'
import { runBench } from '../../src/bench/cli.js'
import { resolveLoadOptions } from '../../src/bench/options.js'

const BASE = ['--url', 'http://127.0.0.1:9', '--model', 'm']
const quietIo = { stdout: { write: () => true }, stderr: { write: () => true }, signals: false }

test('flags map to options: values, =values, switches, --no- switches, durations and lengths', () => {
  const c = parseBenchFlags([...BASE, '--endpoint=completions', '--stream', '--no-metrics', '--request-rate', '12.5', '--duration', '2m',
    '--isl', '1000', '--isl-stddev', '50', '--osl', '64', '--ignore-eos', '--priority-mix', 'high=1,low=3', '--trace', 'x.jsonl', '--output', 'o.json', '--quiet'])
  assert.equal(c.output, 'o.json')
  assert.equal(c.quiet, true)
  assert.equal(c.report, null)
  const o = resolveLoadOptions(c.load)
  assert.equal(o.endpoint, 'completions')
  assert.equal(o.stream, true)
  assert.equal(o.scrapeMetrics, false)
  assert.equal(o.requestRate, 12.5)
  assert.equal(o.durationS, 120)
  assert.deepEqual([o.isl.mean, o.isl.stddev, o.osl.mean, o.osl.stddev], [1000, 50, 64, 0])
  assert.equal(o.ignoreEos, true)
  assert.deepEqual(o.priorityMix, { high: 0.25, medium: 0, low: 0.75 })
  assert.equal(o.workload, 'trace', '--trace implies the trace workload')
  assert.equal(o.concurrency, null)
})

test('priority mixes: positional shares are high,medium,low', () => {
  assert.deepEqual(parsePriorityMix('0.2,0.3,0.5'), { high: 0.2, medium: 0.3, low: 0.5 })
  assert.throws(() => parsePriorityMix('urgent=1'), (e: any) => e.code === 'SWY_ERR_BAD_FLAG')
  assert.throws(() => parsePriorityMix('0,0,0'), (e: any) => e.code === 'SWY_ERR_BAD_FLAG')
})

test('bad flags are SWY_ERR_BAD_FLAG errors with a message that names the flag', async () => {
  const cases: Array<[string[], RegExp]> = [
    [[...BASE, '--concurency', '4'], /unknown flag --concurency/],
    [[...BASE, '--concurrency', 'four'], /--concurrency takes an integer/],
    [[...BASE, '--concurrency'], /--concurrency needs a value/],
    [[...BASE, '--endpoint', 'embeddings'], /--endpoint must be one of chat, completions/],
    [[...BASE, '--duration', 'soon'], /--duration takes a time/],
    [['--model', 'm'], /--url is required/],
    [[...BASE, '--concurrency', '4', '--request-rate', '10'], /^--concurrency \(closed loop\) and --request-rate \(open loop\) exclude each other/],
    [[...BASE, '--concurrency', '0'], /^--concurrency must be a positive integer, got 0$/],
    [[...BASE, '--prefix-ratio', '1.5'], /--prefix-ratio/],
    [[...BASE, '--workload', 'trace'], /^--trace: workload trace needs a trace file/],
    [[...BASE, '--isl', '0'], /^--isl must be a positive integer/],
    [[...BASE, '--extra-body', '[1]'], /--extra-body takes a JSON object/],
    [[...BASE, 'stray'], /unexpected argument 'stray'/]
  ]
  for (const [argv, msg] of cases) {
    await assert.rejects(runBench(argv, quietIo), (e: any) => e.code === 'SWY_ERR_BAD_FLAG' && msg.test(e.message), argv.join(' '))
  }
})

test('--help prints every flag and exits 0', async () => {
  let out = ''
  const code = await runBench(['--help'], { ...quietIo, stdout: { write: (s: string) => { out += s; return true } } })
  assert.equal(code, 0)
  for (const f of ['--url', '--concurrency', '--request-rate', '--trace-speedup', '--priority-mix', '--slo-ttft-ms', '--report']) assert.ok(out.includes(f), f)
})
