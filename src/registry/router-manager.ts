import type { Registry, RegistrySnapshot } from './registry.js'
import type { Worker } from './worker.js'

/** What the router manager needs of a policy; routing/ defines the full interface. */
export interface RouterPolicy {
  readonly name: string
  /** Called on the writer side whenever the model's routable workers change. */
  setWorkers (workers: readonly Worker[]): void
  close (): void
}

/** One model's router: its current workers and the policy instance (which keeps its state). */
export class Router<P extends RouterPolicy> {
  readonly model: string
  readonly policy: P
  readonly workers: readonly Worker[]

  constructor (model: string, policy: P, workers: readonly Worker[]) {
    this.model = model
    this.policy = policy
    this.workers = workers
  }
}

/**
 * Maps model -> router the way the registry maps model -> workers: a new immutable Map is built
 * on every registry change and swapped in one assignment. A policy instance lives as long as its
 * model is registered, so round-robin positions and load indexes survive worker churn.
 */
export class RouterManager<P extends RouterPolicy> {
  routers: ReadonlyMap<string, Router<P>>
  private readonly unsubscribe: () => void

  constructor (registry: Registry, private readonly policyFor: (model: string) => P) {
    this.routers = new Map()
    this.rebuild(registry.snapshot)
    this.unsubscribe = registry.onChange((snap) => this.rebuild(snap))
  }

  get (model: string): Router<P> | undefined {
    return this.routers.get(model)
  }

  private rebuild (snap: RegistrySnapshot): void {
    const next = new Map<string, Router<P>>()
    for (const [model, workers] of snap.routable) {
      const old = this.routers.get(model)
      const policy = old?.policy ?? this.policyFor(model)
      if (old === undefined || old.workers !== workers) policy.setWorkers(workers)
      next.set(model, new Router(model, policy, workers))
    }
    for (const [model, r] of this.routers) if (!next.has(model)) r.policy.close()
    this.routers = next
  }

  close (): void {
    this.unsubscribe()
    for (const r of this.routers.values()) r.policy.close()
    this.routers = new Map()
  }
}
