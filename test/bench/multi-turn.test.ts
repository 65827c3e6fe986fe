import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runLoad } from '../../src/bench/load.js'
import { FixtureServer } from './fixture-server.js'

test('multi-turn sessions resend the whole conversation, answers included, under one x-session-id each', async () => {
  const server = new FixtureServer({ tokenDelayMs: 1 })
  const url = await server.listen()
  try {
    const r = await runLoad({ url, model: 'm', stream: true, workload: 'multi-turn', numSessions: 3, turns: 3, concurrency: 2, isl: 20, osl: 4 })
    assert.equal(r.summary.requests.ok, 9)
    assert.equal(server.maxInflight, 2)
    const bySession = new Map<string, typeof server.arrivals>()
    for (const a of server.arrivals) {
      const id = a.headers['x-session-id'] as string
      assert.ok(typeof id === 'string' && id !== '')
      bySession.set(id, [...(bySession.get(id) ?? []), a])
    }
    assert.equal(bySession.size, 3)
    for (const turns of bySession.values()) {
      assert.equal(turns.length, 3)
      turns.forEach((a, k) => {
        const msgs = a.body.messages as Array<{ role: string, content: string }>
        assert.equal(msgs.length, 2 * k + 1)
        assert.deepEqual(msgs.map((m) => m.role), Array.from({ length: 2 * k + 1 }, (_, j) => j % 2 === 0 ? 'user' : 'assistant'))
        // The fixture answers " w0 w1 w2 w3": that exact text comes back as the assistant turn.
        for (let j = 1; j < msgs.length; j += 2) assert.equal(msgs[j]!.content, ' w0 w1 w2 w3')
        if (k > 0) assert.deepEqual(msgs.slice(0, 2 * k - 1), (turns[k - 1]!.body.messages as unknown[]).slice(0, 2 * k - 1), 'history is resent unchanged')
      })
    }
    const recs = r.records.filter((x) => x.sessionId !== null)
    assert.equal(recs.length, 9)
    assert.deepEqual([...new Set(recs.map((x) => x.turn))].sort(), [0, 1, 2])
    // Later turns count the history on the client side too.
    assert.ok(recs.filter((x) => x.turn === 2).every((x) => x.inputTokens === 3 * 20 + 2 * 4))
  } finally {
    await server.close()
  }
})
