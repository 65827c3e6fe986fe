import { test } from 'node:test'
import assert from 'node:assert/strict'
import { newRequestId } from '../../src/frontend/request-id.js'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

test('generated request ids are version-4 UUIDs, unique across refills of the random pool', () => {
  const seen = new Set<string>()
  // 256 ids per refill: this crosses several.
  for (let i = 0; i < 2000; i++) {
    const id = newRequestId()
    assert.match(id, UUID_V4)
    seen.add(id)
  }
  assert.equal(seen.size, 2000)
})

test('generated request ids use every hex digit in every random position', () => {
  // A nibble taken from the wrong byte half or a table off by one would leave some digit unused.
  const digits = Array.from({ length: 36 }, () => new Set<string>())
  for (let i = 0; i < 4000; i++) {
    const id = newRequestId()
    for (let k = 0; k < 36; k++) digits[k]!.add(id[k]!)
  }
  for (let k = 0; k < 36; k++) {
    const expected = k === 8 || k === 13 || k === 18 || k === 23 ? 1 : k === 14 ? 1 : k === 19 ? 4 : 16
    assert.equal(digits[k]!.size, expected, `position ${k} took ${digits[k]!.size} distinct characters`)
  }
})
