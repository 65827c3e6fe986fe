// The native client's per-connection stream table: ids it hands out are unique among open
// streams, lookups find exactly the open ones, and growing or wrapping the u32 ids loses nothing.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { StreamTable } from '../../../src/transport/native/stream-table.js'

interface S { readonly id: number }

/** Random opens and closes checked against a Map, ids allocated from `start` as the client does. */
function churn (start: number, steps: number, seed: number): void {
  const t = new StreamTable<S>(8)
  const ref = new Map<number, S>()
  let next = start
  let x = seed
  const rand = (): number => { x = (x * 1103515245 + 12345) >>> 0; return x / 2 ** 32 }
  for (let i = 0; i < steps; i++) {
    // Drift between ~0 and ~300 open streams.
    const open = rand() < (i % 4000 < 2000 ? 0.6 : 0.4)
    if (open || ref.size === 0) {
      const id = t.freeId(next)
      next = (id + 1) >>> 0
      assert.notEqual(id, 0, 'id 0 is the connection\'s')
      assert.equal(ref.has(id), false, `id ${id} handed out while open`)
      const s = { id }
      t.add(s)
      ref.set(id, s)
    } else {
      const ids = [...ref.keys()]
      const id = ids[Math.floor(rand() * ids.length)]!
      assert.equal(t.delete(id), true)
      assert.equal(t.delete(id), false, 'a second delete finds nothing')
      ref.delete(id)
    }
    assert.equal(t.size, ref.size)
  }
  for (const [id, s] of ref) assert.equal(t.get(id), s)
  assert.deepEqual(new Set(t.values()), new Set(ref.values()))
  // Ids of closed streams and ids never given are not found, even where they share a slot.
  for (let k = 0; k < 1000; k++) {
    const id = (start + k * 7919) >>> 0
    if (!ref.has(id)) assert.equal(t.get(id), undefined, `id ${id} is not open`)
  }
}

test('ids handed out are unique among open streams and lookups match a Map through random churn and growth', () => {
  churn(1, 20_000, 7)
})

test('ids wrap past 2^32 - 1 to 1, skipping 0, without colliding with streams still open', () => {
  churn(2 ** 32 - 500, 20_000, 11)
})

test('deleting streams while walking the table visits each remaining one once', () => {
  const t = new StreamTable<S>(8)
  let next = 1
  for (let i = 0; i < 100; i++) { const id = t.freeId(next); next = id + 1; t.add({ id }) }
  const seen: number[] = []
  for (const s of t.values()) {
    seen.push(s.id)
    t.delete(s.id)
  }
  assert.equal(seen.length, 100)
  assert.equal(new Set(seen).size, 100)
  assert.equal(t.size, 0)
})

test('adding a stream whose slot is taken is refused', () => {
  const t = new StreamTable<S>(8)
  t.add({ id: 1 })
  assert.throws(() => { t.add({ id: 1 + 16 }) }, /slot of id 17 is taken by 1/)
})
