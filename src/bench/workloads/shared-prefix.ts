import type { LoadOptions } from '../options.js'
import type { Prompt, PromptFactory } from '../prompts.js'
import { mixSeed, Rng, sampleLength, shuffle, STREAM } from '../rng.js'
import { pickPriority } from './priority.js'
import { SingleJob } from './single.js'
import type { Job, Workload } from './types.js'

/**
 * P groups (`numPrefixes`) × Q prompts per group (`promptsPerPrefix`), in a seeded shuffled
 * order, as SGLang's generated-shared-prefix dataset. Every prompt of group g starts with the
 * same prefix of round(mean ISL × prefixRatio) tokens, followed by a suffix of its own so the
 * total is the sampled ISL. Past P×Q requests, further rounds reuse the prefixes with new suffixes.
 */
export class SharedPrefixWorkload implements Workload {
  readonly kind = 'shared-prefix'
  readonly naturalRequests: number
  readonly timed = false
  readonly prefixTokens: number
  private readonly opts: LoadOptions
  private readonly prompts: PromptFactory

  constructor (opts: LoadOptions, prompts: PromptFactory) {
    this.opts = opts
    this.prompts = prompts
    this.naturalRequests = opts.numPrefixes * opts.promptsPerPrefix
    this.prefixTokens = Math.round(opts.isl.mean * opts.prefixRatio)
  }

  /** The shared prefix of group `g`. */
  prefix (g: number): Prompt {
    return this.prompts.random(this.prefixTokens, mixSeed(this.opts.seed, STREAM.prefix, g))
  }

  * jobs (): Iterator<Job> {
    const { opts, prompts } = this
    const perRound = this.naturalRequests
    const prefixes = new Map<number, Prompt>()
    for (let round = 0, i = 0; ; round++) {
      const order = shuffle(new Rng(mixSeed(opts.seed, STREAM.order, round)), Array.from({ length: perRound }, (_, k) => k))
      for (const slot of order) {
        const group = slot % opts.numPrefixes
        const idx = i++
        const isl = sampleLength(new Rng(mixSeed(opts.seed, STREAM.isl, idx)), opts.isl)
        const osl = sampleLength(new Rng(mixSeed(opts.seed, STREAM.osl, idx)), opts.osl)
        const suffixTokens = Math.max(1, isl - this.prefixTokens)
        const suffixSeed = mixSeed(opts.seed, STREAM.prompt, round, slot)
        yield new SingleJob(idx, null, pickPriority(opts.priorityMix, opts.seed, idx), osl, () => {
          let prefix = prefixes.get(group)
          if (prefix === undefined) {
            prefix = this.prefix(group)
            prefixes.set(group, prefix)
          }
          const suffix = prompts.random(suffixTokens, suffixSeed)
          return { text: prefix.text + suffix.text, tokens: prefix.tokens + suffix.tokens }
        })
      }
    }
  }
}
