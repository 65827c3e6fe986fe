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
    { rid: 'we"ird\\id\n', model: 'm"odel', worker: null, status: 503, ms: 0.04, ttftMs: null, attempts: 0 },
    { rid: 'caf\u00e9-\u{1f600}', model: 'mod\u00e8le', worker: 'w\u00e9', status: 499, ms: 7, ttftMs: 0.05, attempts: 3 },
    { rid: 'x', model: 'm', worker: 'w', status: 200, ms: 1234567.891, ttftMs: 12.95, attempts: 1 },
    { rid: 'y', model: 'm', worker: 'w', status: 200, ms: 4e12, ttftMs: 0, attempts: 1 }
  ]
  for (const r of records) { a(r); b(r) }
  a.flush()
  const lines = fast.lines.join('').split(/(?<=\n)/)
  assert.equal(lines.length, records.length)
  for (let i = 0; i < records.length; i++) {
    assert.ok(lines[i]!.endsWith('\n'))
    const x = JSON.parse(lines[i]!) as Record<string, unknown>
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
  const access = accessLogFor(log, true)
  access({ rid: 'r', model: 'm', worker: null, status: 200, ms: 1, ttftMs: null, attempts: 1 })
  access.flush()
  assert.equal(out.lines.length, 0)
  log.level = 'info'
  access({ rid: 'r', model: 'm', worker: null, status: 200, ms: 1, ttftMs: null, attempts: 1 })
  access.close()
  assert.equal(out.lines.length, 1)
})

test('access lines reach the stream in batches of about 8 KiB, and within 50 ms when fewer come', async () => {
  const out = capture()
  const access = accessLogFor(pino({ base: { svc: 'switchyard' } }, out.stream), true)
  const record = { rid: 'r'.repeat(36), model: 'mock-llm', worker: 'w0', status: 200, ms: 1.5, ttftMs: 0.5, attempts: 1 }
  for (let i = 0; i < 1000; i++) access(record)
  const lineLength = out.lines[0]!.split('\n')[0]!.length + 1
  assert.ok(out.lines.length < 1000 * lineLength / 8192 + 1, `${out.lines.length} writes for 1000 lines`)
  assert.ok(out.lines.every(chunk => chunk.length >= 8192))
  const written = (): number => out.lines.join('').split('\n').length - 1
  assert.ok(written() < 1000, 'the tail is held back')
  await new Promise(resolve => setTimeout(resolve, 120))
  assert.equal(written(), 1000, 'the timer flushed the rest')
  for (const l of out.lines.join('').trim().split('\n')) assert.equal((JSON.parse(l) as { msg: string }).msg, 'request')
  access.close()
})
