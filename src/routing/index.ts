import type { PolicyName } from '../config/settings.js'
import { KvIndex } from '../kv/index.js'
import { CacheAwarePolicy } from './cache-aware.js'
import { KvPolicy } from './kv.js'
import type { KvPlane } from './kv-plane.js'
import { LeastLoadPolicy } from './least-load.js'
import type { Policy } from './policy.js'
import { PowerOfTwoPolicy } from './power-of-two.js'
import { RandomPolicy } from './random.js'
import { RoundRobinPolicy } from './round-robin.js'

export type { Policy, RouteRequest } from './policy.js'
export { KvPlane } from './kv-plane.js'

/** What the KV policies need from the gateway: the event plane and the model's block size. */
export interface PolicyDeps {
  plane: KvPlane
  blockSizeFor (model: string): number
}

/**
 * A fresh policy instance by name (each router owns one). Without `deps`, the kv policies get a
 * private index fed only by their own routing (approximate mode), which is what tests and the
 * selection benchmark use.
 */
export function createPolicy (name: PolicyName, model = '', deps: PolicyDeps | null = null): Policy {
  switch (name) {
    case 'round_robin': return new RoundRobinPolicy()
    case 'random': return new RandomPolicy()
    case 'power_of_two': return new PowerOfTwoPolicy()
    case 'least_load': return new LeastLoadPolicy()
    case 'cache_aware': return new CacheAwarePolicy()
    case 'kv':
    case 'kv_approx': {
      const approximate = name === 'kv_approx' ? 'always' : 'fallback'
      if (deps === null) return new KvPolicy(name, new KvIndex({ blockSize: 64 }), null, { approximate })
      return new KvPolicy(name, deps.plane.indexFor(model, deps.blockSizeFor(model)), deps.plane, { approximate })
    }
  }
}
