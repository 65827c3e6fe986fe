import { Counter, type Registry as PromRegistry } from 'prom-client'
import { scraped } from '../shared/scraped-metric.js'
import { FastCounter, FastHistogram, registerFast } from '../shared/fast-metrics.js'
import type { Registry } from '../registry/registry.js'
import type { Admission } from './admission.js'
import { CLASS_NAMES } from './scheduler.js'

const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

type Child = { inc (): void }
type Observer = { observe (v: number): void }

/**
 * Queue metrics. Depths and window use are read from the queues and the registry at scrape time;
 * the request path touches one cached counter child per dispatch (and a histogram child when the
 * request waited).
 */
export class AdmissionMetrics {
  private readonly dispatches: FastCounter
  private readonly wait: FastHistogram
  private readonly rejections: Counter<'model' | 'reason'>
  private readonly requeues: Counter<'model'>
  private readonly children = new Map<string, { dispatch: Child[], wait: Observer[] }>()
  private admission: Admission | null = null

  constructor (registers: PromRegistry[], workers: Registry) {
    // Per dispatch, on the request path: hand-written (src/shared/fast-metrics.ts says why).
    this.dispatches = new FastCounter({ name: 'switchyard_queue_dispatches_total', help: 'Requests dispatched to a worker, by model and priority class (directly or after waiting)', labelNames: ['model', 'class'] })
    this.wait = new FastHistogram({ name: 'switchyard_queue_wait_seconds', help: 'Time requests waited in the queue before dispatch (only those that waited)', labelNames: ['model', 'class'], buckets: WAIT_BUCKETS })
    for (const r of registers) registerFast(r, this.dispatches, this.wait)
    this.rejections = new Counter({ name: 'switchyard_queue_rejections_total', help: 'Requests that left the queue without a worker, by reason (queue_full, queue_timeout, too_large, client_gone, pushback)', labelNames: ['model', 'reason'], registers })
    this.requeues = new Counter({ name: 'switchyard_queue_requeues_total', help: 'Requests sent back to the queue because a worker pushed back (429/503 before any byte)', labelNames: ['model'], registers })
    const schedulers = (): Iterable<[string, { depthByClass (): { requests: number[], tokens: number[] } }]> => this.admission?.schedulers() ?? []
    for (const [what, help] of [['requests', 'Requests waiting, by model and priority class'], ['tokens', 'Tokens (prompt + expected output) waiting, by model and priority class']] as const) {
      scraped('gauge', { name: `switchyard_queue_${what}`, help, labelNames: ['model', 'class'], registers }, (emit) => {
        for (const [model, s] of schedulers()) {
          const d = s.depthByClass()[what]
          for (let c = 0; c < 3; c++) emit({ model, class: CLASS_NAMES[c]! }, d[c]!)
        }
      })
    }
    scraped('gauge', { name: 'switchyard_worker_window_use', help: 'Share of each worker\'s dispatch window in use (requests and tokens; absent when unlimited)', labelNames: ['worker', 'kind'], registers }, (emit) => {
      for (const w of workers.snapshot.workers) {
        if (Number.isFinite(w.maxInflightRequests)) emit({ worker: w.id, kind: 'requests' }, w.inflightRequests / w.maxInflightRequests)
        if (Number.isFinite(w.maxInflightTokens)) emit({ worker: w.id, kind: 'tokens' }, w.inflightTokens / w.maxInflightTokens)
      }
    })
  }

  watch (admission: Admission): void {
    this.admission = admission
  }

  private forModel (model: string): { dispatch: Child[], wait: Observer[] } {
    let c = this.children.get(model)
    if (c === undefined) {
      c = {
        dispatch: CLASS_NAMES.map(n => this.dispatches.labels(model, n)),
        wait: CLASS_NAMES.map(n => this.wait.labels(model, n))
      }
      this.children.set(model, c)
    }
    return c
  }

  /** `waitedSeconds` 0: dispatched without waiting (not observed in the wait histogram). */
  dispatched (model: string, cls: number, waitedSeconds: number): void {
    const c = this.forModel(model)
    c.dispatch[cls]!.inc()
    if (waitedSeconds > 0) c.wait[cls]!.observe(waitedSeconds)
  }

  rejected (model: string, reason: string): void {
    this.rejections.labels(model, reason).inc()
  }

  requeued (model: string): void {
    this.requeues.labels(model).inc()
  }
}
