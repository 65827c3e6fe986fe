import type { PolicyName } from '../config/settings.js'
import { CacheAwarePolicy } from './cache-aware.js'
import { LeastLoadPolicy } from './least-load.js'
import type { Policy } from './policy.js'
import { PowerOfTwoPolicy } from './power-of-two.js'
import { RandomPolicy } from './random.js'
import { RoundRobinPolicy } from './round-robin.js'

export type { Policy, RouteRequest } from './policy.js'

const FACTORIES: Record<PolicyName, () => Policy> = {
  round_robin: () => new RoundRobinPolicy(),
  random: () => new RandomPolicy(),
  power_of_two: () => new PowerOfTwoPolicy(),
  least_load: () => new LeastLoadPolicy(),
  cache_aware: () => new CacheAwarePolicy()
}

/** A fresh policy instance by name (each router owns one). */
export function createPolicy (name: PolicyName): Policy {
  return FACTORIES[name]()
}
