import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { StopMatcher } from '../../src/mocker/stop-strings.js'

// Streams `pieces` through a matcher; returns what a client would see and whether it stopped.
function stream (stops: string[], pieces: string[]): { text: string, stopped: boolean } {
  const m = new StopMatcher(stops)
  let text = ''
  for (const p of pieces) {
    const stopped = m.push(p)
    text += m.released
    if (stopped) return { text, stopped: true }
  }
  return { text: text + m.flush(), stopped: false }
}

test('streamed output equals the full text cut before the first stop string, and never shows a stop string', () => {
  const piece = fc.string({ unit: fc.constantFrom('a', 'b', ' ', 'ab', ' b'), maxLength: 4 })
  const stop = fc.string({ unit: fc.constantFrom('a', 'b', ' '), minLength: 1, maxLength: 4 })
  fc.assert(fc.property(fc.array(stop, { minLength: 1, maxLength: 3 }), fc.array(piece, { maxLength: 30 }), (stops, pieces) => {
    // Streaming stops at the first piece that completes a stop string, cutting at the earliest
    // stop string in the text so far (a longer one starting earlier cannot be waited for).
    let seen = ''
    let cut = -1
    for (const p of pieces) {
      seen += p
      for (const s of stops) {
        const at = seen.indexOf(s)
        if (at >= 0 && (cut < 0 || at < cut)) cut = at
      }
      if (cut >= 0) break
    }
    const got = stream(stops, pieces)
    assert.equal(got.stopped, cut >= 0)
    assert.equal(got.text, cut >= 0 ? seen.slice(0, cut) : seen)
    for (const s of stops) assert.ok(!got.text.includes(s))
  }), { numRuns: 2000 })
})

test('text that may start a stop string is held back until it cannot', () => {
  const m = new StopMatcher(['STOP'])
  assert.equal(m.push('hello ST'), false)
  assert.equal(m.released, 'hello ')
  assert.equal(m.push('AR'), false)
  assert.equal(m.released, 'STAR')
  assert.equal(m.push(' ST'), false)
  assert.equal(m.released, ' ')
  assert.equal(m.push('OP now'), true)
  assert.equal(m.released, '')
  assert.equal(m.matched, 'STOP')
})
