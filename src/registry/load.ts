import type { Worker } from './worker.js'

/**
 * In-flight accounting. Every request that reaches a worker calls `addLoad` once and `removeLoad`
 * once; watchers (load-ordered indexes) are told after each change.
 */
export function addLoad (worker: Worker, tokens: number): void {
  worker.inflightRequests++
  worker.inflightTokens += tokens
  worker.totalRequests++
  const ws = worker.watchers
  for (let i = 0; i < ws.length; i++) ws[i]!.onLoadChange(worker)
}

export function removeLoad (worker: Worker, tokens: number): void {
  worker.inflightRequests--
  worker.inflightTokens -= tokens
  const ws = worker.watchers
  for (let i = 0; i < ws.length; i++) ws[i]!.onLoadChange(worker)
  if (worker.inflightRequests === 0 && worker.drainResolve !== null) worker.drainResolve()
}

/**
 * Load another gateway put on the worker (replica sync): in the in-flight counters every policy
 * and window reads, but not in this gateway's own request totals.
 */
export function addRemoteLoad (worker: Worker, tokens: number): void {
  worker.inflightRequests++
  worker.inflightTokens += tokens
  const ws = worker.watchers
  for (let i = 0; i < ws.length; i++) ws[i]!.onLoadChange(worker)
}

export function removeRemoteLoad (worker: Worker, tokens: number): void {
  worker.inflightRequests--
  worker.inflightTokens -= tokens
  const ws = worker.watchers
  for (let i = 0; i < ws.length; i++) ws[i]!.onLoadChange(worker)
  if (worker.inflightRequests === 0 && worker.drainResolve !== null) worker.drainResolve()
}

/** Orders workers by (in-flight requests, in-flight tokens): the "load" every policy means. */
export function lighter (a: Worker, b: Worker): boolean {
  return a.inflightRequests < b.inflightRequests ||
    (a.inflightRequests === b.inflightRequests && a.inflightTokens < b.inflightTokens)
}
