import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startGateway } from '../fixtures/gateway.js'
import { startUpstream } from '../fixtures/openai-upstream.js'

test('the client\'s Authorization reaches a worker without a key of its own; a worker\'s api_key replaces it', { timeout: 15_000 }, async () => {
  const plain = await startUpstream({ name: 'plain', models: ['ma'] })
  const keyed = await startUpstream({ name: 'keyed', models: ['mb'] })
  const dir = mkdtempSync(join(tmpdir(), 'swy-auth-'))
  const file = join(dir, 'switchyard.yaml')
  writeFileSync(file, `workers:\n  - { url: "${plain.url}", model: ma }\n  - { url: "${keyed.url}", model: mb, api_key: wkey }\n`)
  const gw = await startGateway(['--config', file])
  try {
    for (const model of ['ma', 'mb']) {
      const res = await fetch(gw.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer client-key' }, body: JSON.stringify({ model, prompt: 'p', max_tokens: 1 }) })
      assert.equal(res.status, 200)
      await res.json()
    }
    assert.equal(plain.received.at(-1)!.headers.authorization, 'Bearer client-key')
    assert.equal(keyed.received.at(-1)!.headers.authorization, 'Bearer wkey')
    assert.equal(keyed.received.at(-1)!.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'authorization').length, 1, 'one Authorization, the worker\'s')
  } finally {
    await gw.close()
    await plain.close()
    await keyed.close()
  }
})
