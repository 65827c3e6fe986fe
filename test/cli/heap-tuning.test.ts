import { test } from 'node:test'
import assert from 'node:assert/strict'
import { tuneHeapForGateway } from '../../src/cli/heap-tuning.js'

test('heap tuning leaves allocation-site pretenuring to node when node was given the flag, in any spelling', () => {
  for (const flag of ['--allocation-site-pretenuring', '--no-allocation-site-pretenuring', '--allocation_site_pretenuring', '--no_allocation_site_pretenuring']) {
    assert.equal(tuneHeapForGateway(['--enable-source-maps', flag]), 'left to node flags', flag)
  }
  assert.equal(tuneHeapForGateway(['--allocation-site-pretenuring-extra']), 'applied', 'another flag is not this one')
  assert.equal(tuneHeapForGateway([]), 'applied')
})
