// The gateway's list of requests being served (shutdown waits for it to empty, then aborts what
// is left): adds and deletes in any order keep its size and contents, and a double add or
// delete changes nothing.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InFlight, InFlightList } from '../../src/frontend/context.js'

test('InFlightList: deleting the head, a middle and the tail keeps the rest; double add and delete are no-ops', () => {
  const list = new InFlightList()
  const a = Array.from({ length: 5 }, () => new InFlight())
  for (const x of a) list.add(x)
  list.add(a[2]!)
  assert.equal(list.size, 5)
  list.delete(a[4]!) // the head (added last)
  list.delete(a[2]!)
  list.delete(a[0]!) // the tail
  list.delete(a[2]!)
  assert.equal(list.size, 2)
  assert.deepEqual(new Set(list.toArray()), new Set([a[1], a[3]]))
  list.delete(a[1]!)
  list.delete(a[3]!)
  assert.equal(list.size, 0)
  assert.deepEqual(list.toArray(), [])
  list.add(a[0]!)
  assert.deepEqual(list.toArray(), [a[0]], 'a deleted request can be listed again')
})

test('InFlightList: aborting every listed request while walking its copy reaches each once', () => {
  const list = new InFlightList()
  const a = Array.from({ length: 100 }, () => new InFlight())
  for (const x of a) list.add(x)
  let n = 0
  for (const x of list.toArray()) { x.abort(); list.delete(x); n++ }
  assert.equal(n, 100)
  assert.equal(list.size, 0)
  assert.ok(a.every(x => x.aborted))
})
