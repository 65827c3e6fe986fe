import type { LoadOptions } from '../options.js'
import type { PromptFactory } from '../prompts.js'
import { mixSeed, Rng, sampleLength, STREAM } from '../rng.js'
import { pickPriority } from './priority.js'
import { SingleJob } from './single.js'
import type { Job, Workload } from './types.js'

const NATURAL_SIZE = 100

/** Independent random prompts with ISL/OSL drawn per request. */
export class SyntheticWorkload implements Workload {
  readonly kind = 'synthetic'
  readonly naturalRequests = NATURAL_SIZE
  readonly timed = false
  private readonly opts: LoadOptions
  private readonly prompts: PromptFactory
  private readonly seed: number

  /** `seed` overrides opts.seed (warm-up uses its own stream so it never pre-warms measured prompts). */
  constructor (opts: LoadOptions, prompts: PromptFactory, seed = opts.seed) {
    this.opts = opts
    this.prompts = prompts
    this.seed = seed
  }

  * jobs (): Iterator<Job> {
    const { opts, prompts, seed } = this
    for (let i = 0; ; i++) {
      const isl = sampleLength(new Rng(mixSeed(seed, STREAM.isl, i)), opts.isl)
      const osl = sampleLength(new Rng(mixSeed(seed, STREAM.osl, i)), opts.osl)
      const promptSeed = mixSeed(seed, STREAM.prompt, i)
      yield new SingleJob(i, null, pickPriority(opts.priorityMix, seed, i), osl, () => prompts.random(isl, promptSeed))
    }
  }
}
