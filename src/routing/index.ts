import type { PolicyName } from '../config/settings.js'
import { KvIndex } from '../kv/index.js'
import { SessionAffinity, type AffinityOptions } from './affinity.js'
import { CacheAwarePolicy } from './cache-aware.js'
import { KV_PREDICTED_DEFAULTS, KvPolicy, type KvPolicyOptions } from './kv.js'
import type { KvPlane } from './kv-plane.js'
import { LeastLoadPolicy } from './least-load.js'
import type { Policy } from './policy.js'
import { PowerOfTwoPolicy } from './power-of-two.js'
import { RandomPolicy } from './random.js'
import { RoundRobinPolicy } from './round-robin.js'

export type { Policy, RouteRequest } from './policy.js'
export { KvPlane } from './kv-plane.js'
export { SessionAffinity, AFFINITY_DEFAULTS, type AffinityOptions, AffinityStats } from './affinity.js'
export { KvPolicy, KvDecisionStats, KV_POLICY_DEFAULTS, KV_PREDICTED_DEFAULTS, type KvPolicyOptions } from './kv.js'

/**
 * Every policy name routing knows: the configurable ones plus `kv_dynamo` (Dynamo's exact cost,
 * kept as the baseline of the improved `kv`; config/settings.ts lists it once the lead adds it).
 */
export const ROUTING_POLICY_NAMES = ['round_robin', 'random', 'power_of_two', 'least_load', 'cache_aware', 'kv', 'kv_approx', 'kv_dynamo'] as const
export type RoutingPolicyName = PolicyName | 'kv_dynamo'

/** What the KV policies need from the gateway: the event plane and the model's block size. */
export interface PolicyDeps {
  plane: KvPlane
  blockSizeFor (model: string): number
  /** KV blocks per worker of the model (the improved kv turns active blocks into KV usage); absent: unknown. */
  kvCapacityFor? (model: string): number | null
}

export interface CreatePolicyOptions {
  /** Soft session affinity by `x-session-id` (default on); false turns it off. */
  affinity?: Partial<AffinityOptions> | false
  /** Overrides for the kv policies' options (tests, benchmarks). */
  kv?: Partial<KvPolicyOptions>
}

/**
 * A fresh policy instance by name (each router owns one), wrapped in session affinity unless
 * `opts.affinity` is false. Without `deps`, the kv policies get a private index fed only by their
 * own routing (approximate mode), which is what tests and the selection benchmark use.
 *
 * - `kv`: the improved KV-aware policy (predicted TTFT from the engines' timing fit, decayed
 *   prefill backlog, bounded-load guard; see kv.ts).
 * - `kv_dynamo`: Dynamo's cost function exactly (DESIGN 5.1), the baseline.
 * - `kv_approx`: Dynamo's cost on an index fed only by what the router routed (no events).
 */
export function createPolicy (name: RoutingPolicyName, model = '', deps: PolicyDeps | null = null, opts: CreatePolicyOptions = {}): Policy {
  const base = createBasePolicy(name, model, deps, opts.kv ?? {})
  return opts.affinity === false ? base : new SessionAffinity(base, opts.affinity ?? {})
}

/** The policy without session affinity. */
export function createBasePolicy (name: RoutingPolicyName, model = '', deps: PolicyDeps | null = null, kv: Partial<KvPolicyOptions> = {}): Policy {
  switch (name) {
    case 'round_robin': return new RoundRobinPolicy()
    case 'random': return new RandomPolicy()
    case 'power_of_two': return new PowerOfTwoPolicy()
    case 'least_load': return new LeastLoadPolicy()
    case 'cache_aware': return new CacheAwarePolicy()
    case 'kv':
    case 'kv_dynamo':
    case 'kv_approx': {
      const approximate = name === 'kv_approx' ? 'always' : 'fallback'
      const capacity = deps?.kvCapacityFor?.(model) ?? null
      const o: Partial<KvPolicyOptions> = { approximate, ...(name === 'kv' ? KV_PREDICTED_DEFAULTS : {}), kvCapacityBlocks: capacity, ...kv }
      if (deps === null) return new KvPolicy(name, new KvIndex({ blockSize: 64 }), null, o)
      return new KvPolicy(name, deps.plane.indexFor(model, deps.blockSizeFor(model)), deps.plane, o)
    }
  }
}
