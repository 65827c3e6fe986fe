// `switchyard mocker --nats ...` flag parsing (no server needed).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseMockerFlags } from '../../src/mocker/cli.js'

test('mocker --nats, --nats-namespace, --nats-ttl', () => {
  assert.deepEqual(parseMockerFlags(['--nats', 'nats://h:4222', '--nats-namespace', 'prod', '--nats-ttl', '1500']), { nats: 'nats://h:4222', natsNamespace: 'prod', natsTtlMs: 1500 })
  assert.throws(() => parseMockerFlags(['--nats-ttl', '1500']), /--nats-ttl needs --nats/)
  assert.throws(() => parseMockerFlags(['--nats-namespace', 'x']), /--nats-namespace needs --nats/)
  assert.throws(() => parseMockerFlags(['--nats', 'nats://h', '--nats-namespace', 'a.b']), /one subject token/)
  assert.throws(() => parseMockerFlags(['--nats', 'nats://h', '--nats-ttl', '10']), /--nats-ttl must be an integer/)
  assert.throws(() => parseMockerFlags(['--nats', '']), /--nats needs a non-empty value/)
})
