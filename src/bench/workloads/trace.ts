import type { LoadOptions } from '../options.js'
import type { PromptFactory } from '../prompts.js'
import { mixSeed, STREAM } from '../rng.js'
import type { TraceRecord } from '../trace-file.js'
import { pickPriority } from './priority.js'
import { SingleJob } from './single.js'
import type { Job, Workload } from './types.js'

/**
 * Replays a trace: arrivals at the recorded times divided by the speed-up (from `traceStartS`
 * on), prompt and answer lengths as recorded. A Mooncake hash id maps to one deterministic block
 * of `traceBlockSize` tokens seeded by (seed, hash id), the last block cut to input_length, so
 * records sharing their first k hash ids share exactly k blocks of prompt tokens. Azure records
 * carry no prefix information and get independent random prompts.
 */
export class TraceWorkload implements Workload {
  readonly kind = 'trace'
  readonly naturalRequests: number
  readonly timed = true
  private readonly opts: LoadOptions
  private readonly prompts: PromptFactory
  private readonly records: TraceRecord[]

  constructor (opts: LoadOptions, prompts: PromptFactory, records: readonly TraceRecord[]) {
    this.opts = opts
    this.prompts = prompts
    const startMs = opts.traceStartS * 1000
    this.records = records.filter((r) => r.timestampMs >= startMs)
    this.naturalRequests = this.records.length
  }

  /** The seed of the block a hash id names; exported for tests that rebuild expected prefixes. */
  static blockSeed (seed: number, hashId: number): number {
    return mixSeed(seed, STREAM.block, hashId)
  }

  * jobs (): Iterator<Job> {
    const { opts, prompts } = this
    const origin = this.records[0]?.timestampMs ?? 0
    for (let i = 0; i < this.records.length; i++) {
      const r = this.records[i]!
      const atMs = (r.timestampMs - origin) / opts.traceSpeedup
      const hashIds = r.hashIds
      const build = hashIds === null
        ? () => prompts.random(r.inputLength, mixSeed(opts.seed, STREAM.prompt, i))
        : () => prompts.blocks(hashIds.map((h) => TraceWorkload.blockSeed(opts.seed, h)), opts.traceBlockSize, r.inputLength)
      yield new SingleJob(i, atMs, pickPriority(opts.priorityMix, opts.seed, i), r.outputLength, build)
    }
  }
}
