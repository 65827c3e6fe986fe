import type { Worker } from '../registry/worker.js'

/** One dimension left null is unlimited at that level (the next level decides). */
export interface WindowLimits {
  requests: number | null
  tokens: number | null
}

/**
 * Sets a worker's dispatch window: its own config entry first, then the global flags, then what
 * the worker reports (the mock engine: max_num_seqs and its KV cache in tokens), else unlimited.
 */
export function applyWindow (worker: Worker, own: WindowLimits, global: WindowLimits, reported: WindowLimits | null): void {
  worker.maxInflightRequests = own.requests ?? global.requests ?? reported?.requests ?? Infinity
  worker.maxInflightTokens = own.tokens ?? global.tokens ?? reported?.tokens ?? Infinity
}

/** False while the worker's transport has it tombstoned (the sweep's pumps retry it afterwards). */
function available (worker: Worker): boolean {
  if (worker.unavailableUntil === 0) return true
  if (Date.now() < worker.unavailableUntil) return false
  worker.unavailableUntil = 0
  return true
}

/** Whether `worker` can take a request of `tokens` now. */
export function fits (worker: Worker, tokens: number): boolean {
  return worker.inflightRequests < worker.maxInflightRequests && worker.inflightTokens + tokens <= worker.maxInflightTokens && available(worker)
}

export function hasSlot (worker: Worker): boolean {
  return worker.inflightRequests < worker.maxInflightRequests && available(worker)
}

const largest = new WeakMap<readonly Worker[], number>()

/**
 * The largest token window among `workers` (Infinity if one is unlimited). Cached per routable
 * list: windows are set before a worker becomes routable, and any change of the set builds a new
 * list, so the cache never goes stale.
 */
export function largestWindow (workers: readonly Worker[]): number {
  let max = largest.get(workers)
  if (max === undefined) {
    max = 0
    for (let i = 0; i < workers.length; i++) if (workers[i]!.maxInflightTokens > max) max = workers[i]!.maxInflightTokens
    largest.set(workers, max)
  }
  return max
}
