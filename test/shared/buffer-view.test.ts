import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { asView, BufferViews } from '../../src/shared/buffer-view.js'

test('a view shares its base\'s memory and behaves as a Buffer for every caller', () => {
  const base = Buffer.from('hello, views of a read buffer')
  const views = new BufferViews(base)
  const v = views.view(7, 12)
  assert.ok(Buffer.isBuffer(v))
  assert.equal(v.length, 5)
  assert.equal(v.toString('latin1'), 'views')
  assert.equal(v.indexOf('w'), 3)
  assert.deepEqual(v.subarray(1, 3), Buffer.from('ie'))
  assert.equal(Buffer.concat([v, Buffer.from('!')]).toString(), 'views!')
  assert.equal(JSON.stringify(v.toJSON().data.slice(0, 1)), '[118]')
  base[7] = 0x56 // 'V'
  assert.equal(v.toString(), 'Views', 'a view sees writes to its base')
})

test('a copy is its own memory: later writes to the base do not reach it', () => {
  const base = Buffer.from('0123456789')
  const views = new BufferViews(base.subarray(2))
  const c = views.copy(1, 4)
  assert.equal(c.toString(), '345')
  base.fill(0x78)
  assert.equal(c.toString(), '345')
  assert.equal(views.view(0, 2).toString(), 'xx', 'views of a base that is itself a view start at its offset')
})

test('asView gives a view as it is, and any other Buffer as a view of the same memory', () => {
  const views = new BufferViews(Buffer.from('abcdef'))
  const v = views.view(1, 4)
  assert.equal(asView(v), v)
  const b = Buffer.concat([Buffer.from('xy'), Buffer.from('z')])
  const w = asView(b)
  assert.notEqual(w, b)
  assert.ok(Buffer.isBuffer(w))
  assert.equal(w.toString(), 'xyz')
  b[0] = 0x58 // 'X'
  assert.equal(w.toString(), 'Xyz', 'the view shares the Buffer\'s memory')
  assert.equal(asView(w), w)
})
