// The hand-built access line must be the line pino itself would write for the same record.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pino } from 'pino'
import { accessLogFor } from '../../src/frontend/access-log.js'

function capture (): { lines: string[], stream: { write (s: string): void } } {
  const lines: string[] = []
  return { lines, stream: { write: (s: string) => { lines.push(s) } } }
}

test('the fast access line parses to exactly what log.info would have written', () => {
  const fast = capture()
  const slow = capture()
  const a = accessLogFor(pino({ base: { svc: 'switchyard' } }, fast.stream), true)
  const b = accessLogFor(pino({ base: { svc: 'switchyard' } }, slow.stream), false)
  const records = [
    { rid: 'abc-123', model: 'mock-llm', worker: '127.0.0.1:8000', status: 200, ms: 12.345, ttftMs: 3.21, attempts: 1 },
    { rid: 'we"ird\\id\n', model: 'm"odel', worker: null, status: 503, ms: 0.04, ttftMs: null, attempts: 0 }
  ]
  for (const r of records) { a(r); b(r) }
  assert.equal(fast.lines.length, 2)
  for (let i = 0; i < 2; i++) {
    assert.ok(fast.lines[i]!.endsWith('\n'))
    const x = JSON.parse(fast.lines[i]!) as Record<string, unknown>
    const y = JSON.parse(slow.lines[i]!) as Record<string, unknown>
    assert.ok(typeof x.time === 'number' && Math.abs((x.time as number) - (y.time as number)) < 1000)
    delete x.time
    delete y.time
    assert.deepEqual(x, y)
    assert.deepEqual(Object.keys(x), Object.keys(y), 'same key order')
  }
})

test('the fast access line respects the logger level', () => {
  const out = capture()
  const log = pino({ level: 'warn' }, out.stream)
  accessLogFor(log, true)({ rid: 'r', model: 'm', worker: null, status: 200, ms: 1, ttftMs: null, attempts: 1 })
  assert.equal(out.lines.length, 0)
  log.level = 'info'
  accessLogFor(log, true)({ rid: 'r', model: 'm', worker: null, status: 200, ms: 1, ttftMs: null, attempts: 1 })
  assert.equal(out.lines.length, 1)
})
