import type { Worker } from '../registry/worker.js'
import { firstAllowed, randomIndex, type Policy, type RouteRequest } from './policy.js'

export class RandomPolicy implements Policy {
  readonly name = 'random'
  readonly needs = 'nothing' as const

  setWorkers (_workers: readonly Worker[]): void {}

  select (workers: readonly Worker[], req: RouteRequest): Worker | null {
    const n = workers.length
    if (n === 0) return null
    const i = randomIndex(n)
    return req.excluded === null ? workers[i]! : firstAllowed(workers, i, req)
  }

  close (): void {}
}
