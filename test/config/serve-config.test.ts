import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadServeConfig } from '../../src/config/serve.js'
import { ConfigError } from '../../src/shared/errors.js'

function yamlFile (text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'swy-cfg-'))
  const p = join(dir, 'switchyard.yaml')
  writeFileSync(p, text)
  return p
}

test('defaults apply when nothing is set', () => {
  const { config } = loadServeConfig([], {})
  assert.equal(config.host, '127.0.0.1')
  assert.equal(config.port, 8080)
  assert.equal(config.policy, 'round_robin')
  assert.equal(config.max_body_size, 32 * 1024 * 1024)
  assert.deepEqual(config.workers, [])
})

test('precedence is flag > environment > file > default', () => {
  const file = yamlFile('port: 7000\npolicy: random\nhost: 0.0.0.0\n')
  const { config } = loadServeConfig(['--config', file, '--port', '9000'], { SWITCHYARD_PORT: '8000', SWITCHYARD_POLICY: 'least_load' })
  assert.equal(config.port, 9000)
  assert.equal(config.policy, 'least_load')
  assert.equal(config.host, '0.0.0.0')
})

test('workers come from the file, SWITCHYARD_WORKERS and --worker together', () => {
  const file = yamlFile(`
workers:
  - url: http://10.0.0.1:8000
    model: llama
    labels: { zone: a }
  - http://10.0.0.2:8000
models:
  llama: { policy: least_load }
`)
  const { config } = loadServeConfig(['-c', file, '--worker', 'qwen=http://10.0.0.3:8000/base/'], { SWITCHYARD_WORKERS: 'http://10.0.0.4:8000, http://10.0.0.5:8000' })
  assert.deepEqual(config.workers.map(w => [w.url, w.model]), [
    ['http://10.0.0.1:8000', 'llama'], ['http://10.0.0.2:8000', null], ['http://10.0.0.4:8000', null], ['http://10.0.0.5:8000', null], ['http://10.0.0.3:8000/base', 'qwen']
  ])
  assert.deepEqual(config.workers[0]!.labels, { zone: 'a' })
  assert.equal(config.models.llama!.policy, 'least_load')
})

test('durations and sizes accept units', () => {
  const { config } = loadServeConfig(['--connect-timeout', '2s', '--idle-timeout', '1500', '--max-body-size', '1MiB'], { SWITCHYARD_SHUTDOWN_GRACE: '1m' })
  assert.equal(config.connect_timeout, 2000)
  assert.equal(config.idle_timeout, 1500)
  assert.equal(config.max_body_size, 1024 * 1024)
  assert.equal(config.shutdown_grace, 60_000)
})

test('every problem is reported at once, each naming the setting and its source', () => {
  const file = yamlFile('port: seventy\nworkerz: []\nworkers:\n  - { url: ftp://x, colour: red }\n  - { url: "http://y", api_key: "k\\r\\nx-injected: 1" }\nmodels:\n  m: { policy: fastest }\n')
  let err: unknown
  try { loadServeConfig(['-c', file, '--retry-attempts', '0'], { SWITCHYARD_LOG_LEVEL: 'loud' }) } catch (e) { err = e }
  assert.ok(err instanceof ConfigError)
  const msg = (err as Error).message
  assert.match(msg, /'port' in .*switchyard\.yaml must be an integer from 0 to 65535 \(got "seventy"\)/)
  assert.match(msg, /unknown key 'workerz'/)
  assert.match(msg, /workers\[0\] in .* has unknown key 'colour'/)
  assert.match(msg, /workers\[0\] in .*\.url must use http:\/\/, https:\/\/ or swy:\/\//)
  assert.match(msg, /workers\[1\] in .*\.api_key must be visible ASCII characters \(no spaces or line breaks\)/)
  assert.match(msg, /models\.m in .*\.policy must be one of round_robin/)
  assert.match(msg, /--retry-attempts must be an integer from 1 to 20/)
  assert.match(msg, /SWITCHYARD_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/)
})

test('an unknown flag is a clear error', () => {
  assert.throws(() => loadServeConfig(['--prot', '1'], {}), /Unknown option '--prot'/)
})

test('a missing config file is named', () => {
  assert.throws(() => loadServeConfig(['--config', '/nonexistent/x.yaml'], {}), /cannot read \/nonexistent\/x\.yaml: ENOENT/)
})

test('--tokenizer MODEL=DIR sets a model\'s tokenizer over the file; a value without MODEL= is an error', () => {
  const file = yamlFile('models:\n  m1: { tokenizer: /from/file, policy: kv }\n')
  const { config } = loadServeConfig(['--config', file, '--tokenizer', 'm1=/from/flag', '--tokenizer', 'm2=/other'], { SWITCHYARD_TOKENIZERS: 'm3=/env' })
  assert.equal(config.models.m1?.tokenizer, '/from/flag')
  assert.equal(config.models.m1?.policy, 'kv', 'the rest of the model entry is kept')
  assert.equal(config.models.m2?.tokenizer, '/other')
  assert.equal(config.models.m3?.tokenizer, '/env')
  assert.throws(() => loadServeConfig(['--tokenizer', '/just/a/dir'], {}), (err: Error) => err instanceof ConfigError && /--tokenizer takes MODEL=DIR/.test(err.message))
})

test('admission settings: windows per worker in the file, queue weights validated', () => {
  const file = yamlFile('workers:\n  - { url: http://127.0.0.1:9, model: m, max_inflight_requests: 8, max_inflight_tokens: 65536 }\n')
  const { config } = loadServeConfig(['--config', file, '--queue-policy', 'strict', '--sse-keepalive-ms', '2s'], {})
  assert.equal(config.workers[0]?.max_inflight_requests, 8)
  assert.equal(config.workers[0]?.max_inflight_tokens, 65536)
  assert.equal(config.queue_policy, 'strict')
  assert.equal(config.sse_keepalive_ms, 2000)
  assert.throws(() => loadServeConfig(['--queue-weights', '4:2'], {}), (err: Error) => /queue_weights must be three positive numbers/.test(err.message))
  const bad = yamlFile('workers:\n  - { url: http://127.0.0.1:9, max_inflight_requests: 0 }\n')
  assert.throws(() => loadServeConfig(['--config', bad], {}), (err: Error) => /max_inflight_requests must be a positive integer/.test(err.message))
})
