import type { Worker } from '../registry/worker.js'
import { firstAllowed, type Policy, type RouteRequest } from './policy.js'

/** Exact rotation. The position survives worker churn (it is taken modulo the current length). */
export class RoundRobinPolicy implements Policy {
  readonly name = 'round_robin'
  readonly needs = 'nothing' as const
  private next = 0

  setWorkers (_workers: readonly Worker[]): void {}

  select (workers: readonly Worker[], req: RouteRequest): Worker | null {
    const n = workers.length
    if (n === 0) return null
    const i = this.next % n
    this.next = (i + 1) % n
    if (req.excluded === null) return workers[i]!
    const w = firstAllowed(workers, i, req)
    if (w !== null) this.next = (workers.indexOf(w) + 1) % n
    return w
  }

  close (): void {}
}
