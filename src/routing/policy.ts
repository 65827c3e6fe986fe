import type { RouterPolicy } from '../registry/router-manager.js'
import type { Worker } from '../registry/worker.js'

/**
 * A request's headers as a policy reads them: the first value by lowercase name. A
 * `Map<string, string>` is one; the fast server's request is one without building node's header
 * object (frontend/http1/request-head.ts).
 */
export interface HeaderLookup {
  get: (name: string) => string | undefined
}

/** No headers (callers that have none, and policies' tests). */
export const NO_HEADERS: HeaderLookup = new Map<string, string>()

/** What a policy may look at. Fields a caller does not have are null (tokens until a policy needs them). */
export interface RouteRequest {
  readonly model: string
  /** Prompt text (completions) or the role-tagged message contents (chat); set when the policy `needs` it. */
  text: string | null
  tokens: Uint32Array | null
  readonly headers: HeaderLookup
  /** Estimated tokens this request adds to a worker's load (prompt estimate + max_tokens). */
  readonly tokenEstimate: number
  /** Workers this request already failed on (retries); null on the first attempt. */
  excluded: Worker[] | null
  /** Load a stateful policy (kv) charged at select(), to release in its hooks; 0 otherwise. */
  policyPrefill: number
  policyBlocks: number
}

/** What a policy needs the frontend to compute before `select()`; the frontend skips the rest. */
export type PolicyNeeds = 'nothing' | 'text' | 'tokens'

export interface Policy extends RouterPolicy {
  readonly needs: PolicyNeeds
  /** Picks a worker from `workers` (the router's current list), or null when none can take it. */
  select (workers: readonly Worker[], req: RouteRequest): Worker | null
  /**
   * `worker` was chosen for the request by someone else (session affinity): charge and learn as
   * if `select()` had picked it. Stateless policies leave it out.
   */
  assign? (worker: Worker, req: RouteRequest): void
  /** The request was sent to `worker` (after select, once per attempt). */
  onRouted? (worker: Worker, req: RouteRequest): void
  /** The first byte of the answer arrived (prefill is over). */
  onFirstToken? (worker: Worker, req: RouteRequest): void
  /** The attempt ended, however it ended. */
  onFinished? (worker: Worker, req: RouteRequest): void
}

export function isExcluded (req: RouteRequest, w: Worker): boolean {
  return req.excluded !== null && req.excluded.includes(w)
}

// xorshift32 state in a typed array: the integer ops stay unboxed, where Math.random() makes
// optimized code box a double per call (bench/selection measured 16 bytes per random pick).
const rng = new Int32Array([(Math.random() * 0x7fffffff) | 1])

/** Uniform integer in [0, n) for n well below 2^32 (bias < n / 2^32), allocation-free. */
export function randomIndex (n: number): number {
  let x = rng[0]!
  x ^= x << 13
  x ^= x >>> 17
  x ^= x << 5
  rng[0] = x
  return (x >>> 0) % n
}

/** A fair coin from the same generator. */
export function coin (): boolean {
  return randomIndex(2) === 0
}

/** First worker at or after `start` (wrapping) that the request has not already failed on. */
export function firstAllowed (workers: readonly Worker[], start: number, req: RouteRequest): Worker | null {
  const n = workers.length
  for (let k = 0; k < n; k++) {
    const w = workers[(start + k) % n]!
    if (!isExcluded(req, w)) return w
  }
  return null
}
