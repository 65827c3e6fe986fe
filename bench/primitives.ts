/**
 * `primitives`: the request path's hand-written small pieces against the node call each replaces,
 * in user-space instructions per call (perf stat of a loop in a child, bench/lib/perf.ts) and ns:
 *
 * - a request id: newRequestId (src/frontend/request-id.ts, one flat string) vs crypto.randomUUID,
 *   each written once into a Buffer as the proxy writes it (that write flattens randomUUID's rope);
 * - a view of a read buffer: BufferViews.view (src/shared/buffer-view.ts) vs Buffer#subarray;
 * - a copy out of a read buffer: BufferViews.copy vs Buffer.from(subarray).
 */
import { Buffer } from 'node:buffer'
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { newRequestId } from '../src/frontend/request-id.js'
import { BufferViews } from '../src/shared/buffer-view.js'
import { recordFigures } from './lib/docs.js'
import { instructionsPerCall, perfCounts, runLoop } from './lib/perf.js'
import { machine, table, timePerCall } from './lib/table.js'

const READ = Buffer.alloc(64 * 1024)
const VIEWS = new BufferViews(READ)
const OUT = Buffer.allocUnsafe(64)
let k = 0

/** [what, ours, node's]: each a call returning a number (so the loop keeps it). */
const PAIRS: Array<[string, () => number, () => number]> = [
  ['request id, written once into a Buffer', () => OUT.write(newRequestId(), 0, 'latin1'), () => OUT.write(randomUUID(), 0, 'latin1')],
  // Offsets move so no call is the same as the last.
  ['view of a read buffer (~400 bytes)', () => VIEWS.view(100 + (++k & 63), 500).length, () => READ.subarray(100 + (++k & 63), 500).length],
  ['copy out of a read buffer (104 bytes)', () => VIEWS.copy(100 + (++k & 63), 204 + (k & 63)).length, () => Buffer.from(READ.subarray(100 + (++k & 63), 204 + (k & 63))).length]
]

const COUNT_CALLS = 1_000_000

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { rounds: { type: 'string', default: '5' }, 'min-ms': { type: 'string', default: '200' }, 'no-record': { type: 'boolean', default: false }, loop: { type: 'string' }, calls: { type: 'string' } } })
  if (values.loop !== undefined) {
    const [i, side] = values.loop.split(':')
    const pair = PAIRS[Number(i)]!
    runLoop(side === 'ours' ? pair[1] : pair[2], Number(values.calls))
    return
  }
  const rounds = Number(values.rounds)
  const minMs = Number(values['min-ms'])
  const counts = perfCounts()
  const rows: Array<Array<string | number>> = []
  for (let i = 0; i < PAIRS.length; i++) {
    const [what, ours, node] = PAIRS[i]!
    process.stderr.write(`primitives: ${what}...\n`)
    const iOurs = counts ? instructionsPerCall('primitives', `${i}:ours`, undefined, COUNT_CALLS) : NaN
    const iNode = counts ? instructionsPerCall('primitives', `${i}:node`, undefined, COUNT_CALLS) : NaN
    rows.push([what, iOurs, iNode, iOurs / iNode, timePerCall(ours, rounds, minMs) * 1000, timePerCall(node, rounds, minMs) * 1000])
  }
  const perfNote = counts ? `user-space instructions per call: perf stat of ${2 * COUNT_CALLS} calls in a child minus ${COUNT_CALLS}, median of three` : 'instructions: - (perf cannot count here)'
  const header = `primitives — ${await machine()}\ncommand: npm run bench -- primitives ${argv.join(' ')}\n${perfNote}; ns: median of ${rounds} passes of ${minMs} ms`
  console.log('\n' + header + '\n')
  const t = table(['primitive', 'ours inst', "node's inst", 'ours ÷ node', 'ours ns', "node's ns"], rows)
  if (!values['no-record']) recordFigures('primitives', `## primitives\n\n${header.replace(/\n/g, '\n\n')}\n\n${t}\n`)
}
