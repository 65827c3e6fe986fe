/**
 * Seeded randomness. Every random choice of a run derives from `--seed` through `mixSeed`, one
 * stream per purpose (lengths, priorities, arrivals, prompt of request i, block of hash id h), so
 * a request's prompt does not depend on how many random numbers other parts drew before it.
 */
import type { LengthSpec } from './options.js'

/** murmur3's 32-bit finaliser over a running combination: cheap and well mixed. */
export function mixSeed (...parts: number[]): number {
  let h = 0x9e3779b9
  for (const p of parts) {
    // Fold numbers above 2^32 (hash ids, large seeds) instead of truncating them away.
    const lo = p >>> 0
    const hi = Math.floor(p / 4294967296) >>> 0
    h = fmix(h ^ lo) + 0x6d2b79f5
    if (hi !== 0) h = fmix(h ^ hi) + 0x6d2b79f5
  }
  return fmix(h) >>> 0
}

function fmix (x: number): number {
  x ^= x >>> 16
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  x ^= x >>> 16
  return x >>> 0
}

/** Stream ids for mixSeed, so that purposes never share a stream. */
export const STREAM = {
  prompt: 1,
  isl: 2,
  osl: 3,
  priority: 4,
  arrival: 5,
  block: 6,
  prefix: 7,
  order: 8,
  warmup: 9,
  session: 10
} as const

/** mulberry32: 32-bit state, fast, good enough for workloads (not for cryptography). */
export class Rng {
  private state: number

  constructor (seed: number) {
    this.state = seed >>> 0
  }

  /** Uniform in [0, 1). */
  next (): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Standard normal (Box–Muller; the second value is dropped to keep the state simple). */
  normal (): number {
    let u = this.next()
    while (u === 0) u = this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next())
  }

  /** Exponential with the given rate (mean 1/rate): Poisson inter-arrival gaps. */
  exponential (rate: number): number {
    return -Math.log(1 - this.next()) / rate
  }

  int (n: number): number {
    return Math.floor(this.next() * n)
  }
}

export function sampleLength (rng: Rng, spec: LengthSpec): number {
  const v = spec.stddev === 0 ? spec.mean : Math.round(spec.mean + spec.stddev * rng.normal())
  return Math.min(spec.max, Math.max(spec.min, v))
}

/** Fisher–Yates, in place. */
export function shuffle<T> (rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    const t = items[i]!
    items[i] = items[j]!
    items[j] = t
  }
  return items
}
