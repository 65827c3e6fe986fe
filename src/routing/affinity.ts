import { performance } from 'node:perf_hooks'
import type { Worker } from '../registry/worker.js'
import { isExcluded, type Policy, type PolicyNeeds, type RouteRequest } from './policy.js'

export interface AffinityOptions {
  /** Request header carrying the session id (lower case, as node:http gives them). */
  header: string
  /** Sessions remembered at most; the least recently used goes first. */
  maxSessions: number
  /** A session not seen for this long is forgotten. */
  ttlMs: number
  /**
   * The session's worker is overloaded, and the inner policy decides, when its in-flight requests
   * exceed `overloadRatio` × the least loaded allowed worker's + `overloadSlack`.
   */
  overloadRatio: number
  overloadSlack: number
  /** Longer ids are ignored (no affinity), so a client cannot make the map hold large keys. */
  maxIdLength: number
}

/**
 * Defaults. The overload bound is SGLang's cache-aware balance rule (relative 1.5×, plus an
 * absolute margin) applied per request: a session's worker keeps its session while it carries
 * less than half again the lightest worker's load plus 4 requests; past that, waiting behind the
 * queue costs more than re-reading the history elsewhere (one prefill of the conversation). 100k
 * sessions of ~150 bytes each bound the map near 15 MB; 10 minutes covers the think time of a chat
 * (the Mooncake trace's p90 reuse distance is 8 minutes) while engines' caches rarely hold a
 * prefix much longer under load.
 */
export const AFFINITY_DEFAULTS: AffinityOptions = {
  header: 'x-session-id',
  maxSessions: 100_000,
  ttlMs: 600_000,
  overloadRatio: 1.5,
  overloadSlack: 4,
  maxIdLength: 256
}

/** Counters for metrics (plain numbers). */
export class AffinityStats {
  /** Requests that carried a session id. */
  withSession = 0
  /** ... and went to the session's previous worker. */
  hits = 0
  /** ... whose previous worker was gone, excluded or unhealthy. */
  missingWorker = 0
  /** ... whose previous worker was overloaded, so the inner policy chose. */
  overloaded = 0
  /** Sessions dropped by the size cap. */
  evicted = 0
}

interface Entry { workerId: string, expires: number }

/**
 * Soft session affinity around any policy: a request with an `x-session-id` goes to the worker
 * that served the session last, unless that worker is no longer routable, is excluded for this
 * request (a retry), or is overloaded relative to the others; then the inner policy picks and the
 * session moves. Memory is bounded by an LRU (a Map in recency order) with a TTL.
 *
 * The inner policy still sees every request: when affinity picks the worker, `assign()` lets a
 * stateful policy (kv, cache_aware) charge the load and learn the placement it did not choose.
 *
 * @example
 * const policy = new SessionAffinity(createBasePolicy('least_load'))
 */
export class SessionAffinity implements Policy {
  readonly name: string
  readonly needs: PolicyNeeds
  readonly inner: Policy
  readonly stats = new AffinityStats()
  private readonly opts: AffinityOptions
  private readonly sessions = new Map<string, Entry>()
  private byId = new Map<string, Worker>()

  constructor (inner: Policy, opts: Partial<AffinityOptions> = {}) {
    this.inner = inner
    this.name = inner.name
    this.needs = inner.needs
    this.opts = { ...AFFINITY_DEFAULTS, ...opts }
  }

  get size (): number {
    return this.sessions.size
  }

  setWorkers (workers: readonly Worker[]): void {
    const m = new Map<string, Worker>()
    for (const w of workers) m.set(w.id, w)
    this.byId = m
    this.inner.setWorkers(workers)
  }

  select (workers: readonly Worker[], req: RouteRequest): Worker | null {
    const sid = sessionId(req, this.opts)
    if (sid === null) return this.inner.select(workers, req)
    this.stats.withSession++
    const sticky = this.stickyWorker(sid, workers, req)
    if (sticky === null) return this.inner.select(workers, req)
    this.stats.hits++
    this.inner.assign?.(sticky, req)
    return sticky
  }

  /** The session's last worker when it may take this request, else null (and why, in stats). */
  private stickyWorker (sid: string, workers: readonly Worker[], req: RouteRequest): Worker | null {
    const e = this.sessions.get(sid)
    if (e === undefined) return null
    if (e.expires <= performance.now()) { this.sessions.delete(sid); return null }
    const w = this.byId.get(e.workerId)
    if (w === undefined || w.state !== 'healthy' || isExcluded(req, w)) {
      this.stats.missingWorker++
      return null
    }
    let min = Infinity
    for (let i = 0; i < workers.length; i++) {
      const o = workers[i]!
      if (!isExcluded(req, o) && o.inflightRequests < min) min = o.inflightRequests
    }
    if (w.inflightRequests > this.opts.overloadRatio * min + this.opts.overloadSlack) {
      this.stats.overloaded++
      return null
    }
    return w
  }

  onRouted (worker: Worker, req: RouteRequest): void {
    this.inner.onRouted?.(worker, req)
    const sid = sessionId(req, this.opts)
    if (sid === null) return
    const m = this.sessions
    // Delete then set: a Map iterates in insertion order, so the first key is the least recently used.
    m.delete(sid)
    m.set(sid, { workerId: worker.id, expires: performance.now() + this.opts.ttlMs })
    if (m.size > this.opts.maxSessions) {
      const oldest = m.keys().next().value
      if (oldest !== undefined) { m.delete(oldest); this.stats.evicted++ }
    }
  }

  onFirstToken (worker: Worker, req: RouteRequest): void {
    this.inner.onFirstToken?.(worker, req)
  }

  onFinished (worker: Worker, req: RouteRequest): void {
    this.inner.onFinished?.(worker, req)
  }

  assign (worker: Worker, req: RouteRequest): void {
    this.inner.assign?.(worker, req)
  }

  close (): void {
    this.sessions.clear()
    this.inner.close()
  }
}

function sessionId (req: RouteRequest, o: AffinityOptions): string | null {
  const v = req.headers.get(o.header)
  return v !== undefined && v.length > 0 && v.length <= o.maxIdLength ? v : null
}
