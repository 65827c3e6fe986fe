import { lighter } from '../registry/load.js'
import type { Worker } from '../registry/worker.js'
import { coin, isExcluded, randomIndex, type Policy, type RouteRequest } from './policy.js'

/** Two distinct random candidates; the lighter (in-flight requests, then tokens) wins, ties at random. */
export class PowerOfTwoPolicy implements Policy {
  readonly name = 'power_of_two'
  readonly needs = 'nothing' as const

  setWorkers (_workers: readonly Worker[]): void {}

  select (workers: readonly Worker[], req: RouteRequest): Worker | null {
    if (req.excluded !== null) return this.selectExcluding(workers, req)
    const n = workers.length
    if (n <= 1) return n === 1 ? workers[0]! : null
    const i = randomIndex(n)
    let j = randomIndex(n - 1)
    if (j >= i) j++
    return pick(workers[i]!, workers[j]!)
  }

  /** Retry path: the same rule over the workers not yet tried (allocates; retries are rare). */
  private selectExcluding (workers: readonly Worker[], req: RouteRequest): Worker | null {
    const allowed = workers.filter(w => !isExcluded(req, w))
    if (allowed.length <= 1) return allowed[0] ?? null
    return this.select(allowed, { ...req, excluded: null })
  }

  close (): void {}
}

function pick (a: Worker, b: Worker): Worker {
  if (lighter(a, b)) return a
  if (lighter(b, a)) return b
  return coin() ? a : b
}
