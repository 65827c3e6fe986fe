import { PRIORITY_NAMES, type PriorityMix, type PriorityName } from '../options.js'
import { mixSeed, Rng, STREAM } from '../rng.js'

/** The class of job `index`: a seeded draw against the mix, independent of every other draw. */
export function pickPriority (mix: PriorityMix | null, seed: number, index: number): PriorityName | null {
  if (mix === null) return null
  let u = new Rng(mixSeed(seed, STREAM.priority, index)).next()
  for (const name of PRIORITY_NAMES) {
    u -= mix[name]
    if (u < 0) return name
  }
  // Rounding left a sliver: give it to the last class with a share.
  for (let i = PRIORITY_NAMES.length - 1; i >= 0; i--) if (mix[PRIORITY_NAMES[i]!] > 0) return PRIORITY_NAMES[i]!
  return null
}
