import { performance } from 'node:perf_hooks'
import { addLoad, removeLoad } from '../registry/load.js'
import type { Registry } from '../registry/registry.js'
import type { Router, RouterManager } from '../registry/router-manager.js'
import type { Worker } from '../registry/worker.js'
import type { Policy, RouteRequest } from '../routing/policy.js'
import { SwitchyardError } from '../shared/errors.js'
import { queueFull, queueTimeout, requestTooLarge } from './errors.js'
import type { Queued } from './lane.js'
import type { AdmissionMetrics } from './metrics.js'
import { DISPATCHED, DispatchScheduler, FULL, NO_FIT, type DispatchResult, type SchedulerOptions } from './scheduler.js'
import { fits, hasSlot, largestWindow } from './window.js'

export interface AdmissionOptions extends SchedulerOptions {
  /** Caps on what may wait, per model; beyond them 429 queue_full. */
  maxQueuedRequests: number
  maxQueuedTokens: number
  /** A request waiting longer answers 503 queue_timeout. */
  queueTimeoutMs: number
  /** Times a worker may push a request back (429/503 before any byte) before the client sees it. */
  maxRequeues: number
  /** Streaming requests waiting longer than this get an SSE comment every as often; 0: off. */
  sseKeepaliveMs: number
}

/** A request waiting for a window. Doubles as the InFlight's exchange so a disconnect removes it. */
export interface Waiter extends Queued {
  readonly model: string
  readonly route: RouteRequest
  /** When it (re)entered the queue; the queue timeout counts from here. */
  readonly enqueuedAt: number
  /** Called while it waits, at most every `sseKeepaliveMs` once it waited that long. */
  readonly keepalive: (() => void) | null
  lastKeepalive: number
  clientGone: boolean
  abort (reason: Error): void
  resolve (w: Worker): void
  reject (e: Error): void
}

/** What the request path says about a request it wants admitted. */
export interface AdmitRequest {
  readonly model: string
  readonly route: RouteRequest
  readonly cls: number
  readonly lane: number
  readonly arrival: number
  readonly keepalive: (() => void) | null
  /** The request's InFlight: its `exchange` points at the waiter while queued. */
  readonly inflight: { exchange: { clientGone: boolean, abort (reason: Error): void } | null }
}

class ModelQueue {
  readonly sched: DispatchScheduler<Waiter>
  /** Dispatches in the current 1 s bucket, and the smoothed rate (per s), for Retry-After. */
  drained = 0
  bucketStart: number
  rate = 0

  constructor (readonly model: string, opts: SchedulerOptions, now: number) {
    this.sched = new DispatchScheduler<Waiter>(opts)
    this.bucketStart = now
  }

  tick (now: number): void {
    const dt = now - this.bucketStart
    if (dt < 1000) return
    const r = this.drained * 1000 / dt
    this.rate = this.rate === 0 ? r : 0.5 * this.rate + 0.5 * r
    this.drained = 0
    this.bucketStart = now
  }
}

const CLIENT_GONE = 'client went away while queued'

/**
 * Admission and dispatch (DESIGN 5.3): every request takes a worker through `acquire()` and gives
 * it back through `release()`. While the model's queue is empty and the routed worker has room in
 * its window, `acquire()` returns that worker at once (no promise, no allocation beyond the
 * request's own); otherwise the request waits in its class and lane, and each freed window pumps
 * the queue in the scheduler's order. Load accounting (addLoad/removeLoad and the policy's
 * onRouted/onFinished) happens here, at dispatch, so one pump sees the windows it fills.
 */
export class Admission {
  /** Replica sync (distributed mode): told of every dispatch and release, keyed by the request's route. */
  loadSync: { added (key: object, worker: Worker, tokens: number, prefill: number, blocks: number): void, prefillDone (key: object): void, finished (key: object): void } | null = null
  private readonly queues = new Map<string, ModelQueue>()
  private sweepTimer: NodeJS.Timeout | null = null
  private seq = 0
  private readonly unsubscribe: () => void
  private closed = false

  constructor (
    private readonly routers: RouterManager<Policy>,
    registry: Registry,
    readonly opts: AdmissionOptions,
    private readonly metrics: AdmissionMetrics | null = null,
    /** Told after each dispatch, right after the deciding select() (router overhead metrics read the policy's last decision). */
    private readonly onDispatch: ((policy: Policy, route: RouteRequest) => void) | null = null
  ) {
    // A worker that becomes routable (or leaves) changes what fits: try the queues again.
    this.unsubscribe = registry.onChange(() => { this.pumpAll() })
    metrics?.watch(this)
  }

  /**
   * A worker for the request, charged with its load: synchronously when it can go now, else a
   * promise that settles when a window takes it, or rejects (queue timeout, client gone, close).
   * Throws SwitchyardError when it cannot be admitted (no worker, too large, queue full).
   * Returns null when the policy finds no worker for it (every worker excluded by retries).
   */
  acquire (a: AdmitRequest): Worker | Promise<Worker> | null {
    const router = this.routers.get(a.model)
    if (router === undefined || router.workers.length === 0) return null
    const tokens = a.route.tokenEstimate
    const q = this.queues.get(a.model)
    if (q === undefined || q.sched.size === 0) {
      const w = this.pick(router, a.route, tokens)
      if (typeof w === 'object') {
        if (w === null) return null
        this.charge(router.policy, w, a.route, tokens)
        if (q !== undefined) q.drained++
        this.metrics?.dispatched(a.model, a.cls, 0)
        return w
      }
    }
    return this.enqueue(router, a, tokens, q)
  }

  /** The attempt's first token: the policy's prefill charge ends (here and, through replica sync, everywhere). */
  firstToken (worker: Worker, route: RouteRequest, policy: Policy): void {
    if (policy.onFirstToken !== undefined) policy.onFirstToken(worker, route)
    this.loadSync?.prefillDone(route)
  }

  /** Gives the worker back after an attempt (however it ended) and lets waiting requests in. */
  release (worker: Worker, route: RouteRequest, policy: Policy | null): void {
    removeLoad(worker, route.tokenEstimate)
    policy?.onFinished?.(worker, route)
    this.loadSync?.finished(route)
    this.windowFreed(worker)
  }

  /** Room appeared on `worker` (a release here, or another gateway's request ending): pump its models' queues. */
  windowFreed (worker: Worker): void {
    const models = worker.models
    for (let i = 0; i < models.length; i++) {
      const q = this.queues.get(models[i]!)
      if (q !== undefined && q.sched.size > 0) this.pump(q)
    }
  }

  /** A worker pushed a request back (429/503 before any byte); the caller acquires again. */
  noteRequeue (model: string): void {
    this.metrics?.requeued(model)
  }

  /** Requests waiting across models. */
  get size (): number {
    let n = 0
    for (const q of this.queues.values()) n += q.sched.size
    return n
  }

  /** Per-model schedulers, for metrics and tests. */
  schedulers (): Map<string, DispatchScheduler<Waiter>> {
    const out = new Map<string, DispatchScheduler<Waiter>>()
    for (const [m, q] of this.queues) out.set(m, q.sched)
    return out
  }

  /** Seconds a client should wait before trying again, from the recent drain rate. */
  retryAfter (model: string): number {
    const q = this.queues.get(model)
    if (q === undefined || q.rate <= 0) return Math.max(1, Math.min(60, Math.ceil(this.opts.queueTimeoutMs / 4000)))
    return Math.max(1, Math.min(60, Math.ceil((q.sched.size + 1) / q.rate)))
  }

  /** Rejects everything still waiting (shutdown). */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.unsubscribe()
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer)
    this.sweepTimer = null
    const err = new SwitchyardError('SWY_ERR_SHUTTING_DOWN', 'the gateway is shutting down', { status: 503, type: 'service_unavailable_error', apiCode: 'shutting_down', retryAfter: 1 })
    for (const q of this.queues.values()) {
      for (const lane of q.sched.lanes) {
        for (const w of lane.live()) { q.sched.remove(w); w.reject(err) }
      }
    }
  }

  /**
   * The worker the policy picks among those with room for `tokens`: a Worker, null when the
   * policy has no candidate at all, NO_FIT when none has room for this one, FULL when none has
   * room for anything.
   */
  private pick (router: Router<Policy>, route: RouteRequest, tokens: number): Worker | null | typeof NO_FIT | typeof FULL {
    const workers = router.workers
    const policy = router.policy
    let w = policy.select(workers, route)
    if (w === null) {
      // Every worker was excluded by earlier failures: a pushed-back request may try them again.
      if (route.excluded === null || route.excluded.length < workers.length) return null
      route.excluded = null
      w = policy.select(workers, route)
      if (w === null) return null
    }
    if (fits(w, tokens)) return w
    // Slow path, under pressure only: route again among the workers that have room.
    let slot = false
    const excluded = route.excluded === null ? [] : route.excluded.slice()
    for (let i = 0; i < workers.length; i++) {
      const x = workers[i]!
      if (hasSlot(x)) slot = true
      if (!fits(x, tokens)) excluded.push(x)
    }
    if (!slot) return FULL
    if (excluded.length >= workers.length) return NO_FIT
    const saved = route.excluded
    route.excluded = excluded
    const w2 = policy.select(workers, route)
    route.excluded = saved
    return w2 !== null && fits(w2, tokens) ? w2 : NO_FIT
  }

  private charge (policy: Policy, worker: Worker, route: RouteRequest, tokens: number): void {
    addLoad(worker, tokens)
    policy.onRouted?.(worker, route)
    this.loadSync?.added(route, worker, tokens, route.policyPrefill, route.policyBlocks)
    if (this.onDispatch !== null) this.onDispatch(policy, route)
  }

  private enqueue (router: Router<Policy>, a: AdmitRequest, tokens: number, existing: ModelQueue | undefined): Promise<Worker> {
    const model = a.model
    const window = largestWindow(router.workers)
    if (tokens > window) {
      this.metrics?.rejected(model, 'too_large')
      throw requestTooLarge(model, tokens, window)
    }
    const now = performance.now()
    const q = existing ?? this.newQueue(model, now)
    const o = this.opts
    if (q.sched.size + 1 > o.maxQueuedRequests || q.sched.tokens + tokens > o.maxQueuedTokens) {
      this.metrics?.rejected(model, 'queue_full')
      const what = q.sched.size + 1 > o.maxQueuedRequests ? `${q.sched.size} requests waiting, cap ${o.maxQueuedRequests}` : `${q.sched.tokens} tokens waiting, cap ${o.maxQueuedTokens}`
      throw queueFull(model, this.retryAfter(model), what)
    }
    return new Promise<Worker>((resolve, reject) => {
      const metrics = this.metrics
      const waiter: Waiter = {
        tokens,
        arrival: a.arrival,
        seq: this.seq++,
        cls: a.cls,
        lane: a.lane,
        queued: false,
        model,
        route: a.route,
        enqueuedAt: now,
        keepalive: a.keepalive,
        lastKeepalive: now,
        clientGone: false,
        abort (): void {
          if (!waiter.queued) return
          waiter.clientGone = true
          q.sched.remove(waiter)
          metrics?.rejected(model, 'client_gone')
          reject(new Error(CLIENT_GONE))
        },
        resolve,
        reject
      }
      a.inflight.exchange = waiter
      q.sched.enqueue(waiter)
      this.startSweep()
      this.pump(q)
    })
  }

  private newQueue (model: string, now: number): ModelQueue {
    const q = new ModelQueue(model, this.opts, now)
    this.queues.set(model, q)
    return q
  }

  private pump (q: ModelQueue): void {
    const router = this.routers.get(q.model)
    if (router === undefined || router.workers.length === 0) return
    const now = performance.now()
    q.sched.age(now)
    q.sched.pump((w: Waiter): DispatchResult => {
      const r = this.pick(router, w.route, w.tokens)
      if (r === FULL || r === NO_FIT) return r
      if (r === null) return NO_FIT
      this.charge(router.policy, r, w.route, w.tokens)
      q.drained++
      this.metrics?.dispatched(q.model, w.cls, (now - w.enqueuedAt) / 1000)
      // Settled after the scheduler took it off its lane (the promise continuation runs later).
      w.resolve(r)
      return DISPATCHED
    })
  }

  private pumpAll (): void {
    for (const q of this.queues.values()) if (q.sched.size > 0) this.pump(q)
  }

  private startSweep (): void {
    if (this.sweepTimer !== null || this.closed) return
    const o = this.opts
    let every = Math.min(250, o.queueTimeoutMs / 4)
    if (o.sseKeepaliveMs > 0) every = Math.min(every, o.sseKeepaliveMs / 2)
    this.sweepTimer = setInterval(() => { this.sweep() }, Math.max(5, every))
    this.sweepTimer.unref()
  }

  /** Timeouts, aging, keep-alives and drain rates; stops itself when every queue is empty. */
  private sweep (): void {
    const now = performance.now()
    const o = this.opts
    let waiting = 0
    for (const q of this.queues.values()) {
      q.tick(now)
      if (q.sched.size === 0) continue
      q.sched.age(now)
      for (const lane of q.sched.lanes) {
        if (lane.empty) continue
        for (const w of lane.live()) {
          const waited = now - w.enqueuedAt
          if (waited > o.queueTimeoutMs) {
            q.sched.remove(w)
            this.metrics?.rejected(q.model, 'queue_timeout')
            w.reject(queueTimeout(q.model, waited, this.retryAfter(q.model)))
          } else if (w.keepalive !== null && o.sseKeepaliveMs > 0 && waited >= o.sseKeepaliveMs && now - w.lastKeepalive >= o.sseKeepaliveMs) {
            w.lastKeepalive = now
            w.keepalive()
          }
        }
      }
      // Aging may have made a high-class head that fits: try again.
      this.pump(q)
      waiting += q.sched.size
    }
    if (waiting === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer)
      this.sweepTimer = null
    }
  }
}
