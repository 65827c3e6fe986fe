import { performance } from 'node:perf_hooks'
import type { Worker } from '../registry/worker.js'
import { lighter } from '../registry/load.js'
import { isExcluded, randomIndex, type Policy, type RouteRequest } from './policy.js'
import { TextTree } from './text-tree.js'

export interface CacheAwareOptions {
  /** Load is imbalanced when max - min in-flight exceeds this ... */
  balanceAbsThreshold: number
  /** ... and max exceeds this multiple of min. */
  balanceRelThreshold: number
  /** Route to the cache owner when the longest match covers more than this share of the text. */
  cacheThreshold: number
  /** Characters a worker may own in the tree before pruning. */
  maxTreeChars: number
  /** Pruning period. */
  pruneIntervalMs: number
}

/** SGLang's defaults (its router's CacheAwareConfig), except the tree cap (see README). */
export const CACHE_AWARE_DEFAULTS: CacheAwareOptions = {
  balanceAbsThreshold: 64,
  balanceRelThreshold: 1.5,
  cacheThreshold: 0.3,
  maxTreeChars: 2 ** 24,
  pruneIntervalMs: 10_000
}

/**
 * SGLang's cache-aware routing without engine events: one radix tree of request text per model,
 * workers as tenants. Imbalanced load -> least loaded; else a long enough match -> the worker
 * holding it (the most recent among several); else the least loaded. Ties break at random, never
 * by position (SGLang and Dynamo users reported herding on the first worker).
 */
export class CacheAwarePolicy implements Policy {
  readonly name = 'cache_aware'
  readonly needs = 'text' as const
  readonly tree = new TextTree()
  private workers: readonly Worker[] = []
  private readonly timer: NodeJS.Timeout
  private readonly opts: CacheAwareOptions

  constructor (opts: Partial<CacheAwareOptions> = {}) {
    this.opts = { ...CACHE_AWARE_DEFAULTS, ...opts }
    this.timer = setInterval(() => this.tree.prune(this.opts.maxTreeChars), this.opts.pruneIntervalMs)
    this.timer.unref()
  }

  setWorkers (workers: readonly Worker[]): void {
    for (const w of this.workers) if (!workers.includes(w)) this.tree.removeTenant(w)
    this.workers = workers
  }

  select (workers: readonly Worker[], req: RouteRequest): Worker | null {
    if (workers.length === 0) return null
    const text = req.text ?? ''
    let chosen: Worker | null = null
    if (!this.imbalanced(workers, req) && text.length > 0) {
      const m = this.tree.match(text)
      if (m.tenants !== null && m.chars / text.length > this.opts.cacheThreshold) {
        let bestAt = -1
        for (const [w, at] of m.tenants) {
          if (at > bestAt && workers.includes(w) && !isExcluded(req, w)) { chosen = w; bestAt = at }
        }
      }
    }
    chosen ??= leastLoaded(workers, req)
    if (chosen !== null && text.length > 0) this.tree.insert(text, chosen, performance.now())
    return chosen
  }

  /** Session affinity chose `worker`: the tree learns that it now holds this text. */
  assign (worker: Worker, req: RouteRequest): void {
    const text = req.text ?? ''
    if (text.length > 0) this.tree.insert(text, worker, performance.now())
  }

  private imbalanced (workers: readonly Worker[], req: RouteRequest): boolean {
    let min = Infinity
    let max = -Infinity
    for (const w of workers) {
      if (isExcluded(req, w)) continue
      if (w.inflightRequests < min) min = w.inflightRequests
      if (w.inflightRequests > max) max = w.inflightRequests
    }
    return max - min > this.opts.balanceAbsThreshold && max > this.opts.balanceRelThreshold * min
  }

  close (): void {
    clearInterval(this.timer)
  }
}

/** The lightest allowed worker, ties at random (reservoir sampling over the tied ones). */
export function leastLoaded (workers: readonly Worker[], req: RouteRequest): Worker | null {
  let best: Worker | null = null
  let ties = 0
  for (const w of workers) {
    if (isExcluded(req, w)) continue
    if (best === null || lighter(w, best)) { best = w; ties = 1 } else if (!lighter(best, w) && randomIndex(++ties) === 0) best = w
  }
  return best
}
