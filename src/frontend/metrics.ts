import { Counter, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client'
import { scraped } from '../shared/scraped-metric.js'
import type { Registry } from '../registry/registry.js'
import type { RouterManager } from '../registry/router-manager.js'
import type { KvPlane } from '../routing/kv-plane.js'
import { KvPolicy, SessionAffinity, type Policy, type RouteRequest } from '../routing/index.js'
import { NativeUpstream, type NativeUpstreamStats } from '../transport/native/index.js'
import { FastCounter, FastGauge, FastHistogram, registerFast } from '../shared/fast-metrics.js'

/** Per-model children, resolved once: prom-client hashes a label object on every labelled call. */
export interface ModelMetrics {
  ttft: { observe (v: number): void }
  itl: { observe (v: number): void }
  inflight: { inc (): void, dec (): void }
  e2e: Record<'chat' | 'completions', { observe (v: number): void }>
  /** requests_total children by endpoint, then status (an index: no key string to build and hash per request). */
  requests: Record<'chat' | 'completions', Array<{ inc (): void } | undefined>>
}

const OVERHEAD_BUCKETS = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05]

/** The kv policy behind a router's policy (inside session affinity), or null. */
function kvPolicyOf (policy: Policy): KvPolicy | null {
  const inner = policy instanceof SessionAffinity ? policy.inner : policy
  return inner instanceof KvPolicy ? inner : null
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
const ITL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/**
 * The gateway's Prometheus metrics, on a registry of its own (several gateways can live in one
 * process, as in tests). Per-worker gauges are collected from the registry snapshot at scrape
 * time, so the request path only touches counters and histograms.
 */
export class GatewayMetrics {
  readonly registry = new PromRegistry()
  readonly requests: FastCounter
  readonly inflight: FastGauge
  readonly ttft: FastHistogram
  readonly itl: FastHistogram
  readonly e2e: FastHistogram
  readonly retries: Counter<'model' | 'reason'>
  readonly workerErrors: Counter<'worker' | 'reason'>
  /** Streaming clients cut for falling more than max_client_backlog behind (their streams cancelled at the engine). */
  readonly slowClients: Counter<'model'>
  private readonly perModel = new Map<string, ModelMetrics>()

  constructor (workers: Registry) {
    const registers = [this.registry]
    // Touched per request or per chunk: hand-written (src/shared/fast-metrics.ts says why).
    this.requests = new FastCounter({ name: 'switchyard_requests_total', help: 'Requests answered, by model, endpoint and HTTP status (499: client went away)', labelNames: ['model', 'endpoint', 'status'] })
    this.inflight = new FastGauge({ name: 'switchyard_requests_in_flight', help: 'Requests being served, by model', labelNames: ['model'] })
    this.ttft = new FastHistogram({ name: 'switchyard_time_to_first_token_seconds', help: 'Time from request arrival to the first streamed byte of the answer', labelNames: ['model'], buckets: LATENCY_BUCKETS })
    this.itl = new FastHistogram({ name: 'switchyard_inter_token_latency_seconds', help: 'Time between streamed chunks', labelNames: ['model'], buckets: ITL_BUCKETS })
    this.e2e = new FastHistogram({ name: 'switchyard_request_duration_seconds', help: 'Time from request arrival to the end of the answer', labelNames: ['model', 'endpoint'], buckets: LATENCY_BUCKETS })
    registerFast(this.registry, this.requests, this.inflight, this.ttft, this.itl, this.e2e)
    this.retries = new Counter({ name: 'switchyard_retries_total', help: 'Attempts retried on another worker before the first byte', labelNames: ['model', 'reason'], registers })
    this.workerErrors = new Counter({ name: 'switchyard_worker_errors_total', help: 'Failed attempts per worker, by reason', labelNames: ['worker', 'reason'], registers })
    this.slowClients = new Counter({ name: 'switchyard_slow_clients_cut_total', help: 'Streaming clients cut for falling more than max_client_backlog bytes behind; their streams were cancelled at the engine', labelNames: ['model'], registers })
    const perWorker = (kind: 'gauge' | 'counter', name: string, help: string, value: (w: Registry['snapshot']['workers'][number]) => number): void => {
      scraped(kind, { name, help, labelNames: ['worker'], registers }, (emit) => { for (const w of workers.snapshot.workers) emit({ worker: w.id }, value(w)) })
    }
    perWorker('gauge', 'switchyard_worker_in_flight_requests', 'Requests in flight per worker', w => w.inflightRequests)
    perWorker('gauge', 'switchyard_worker_healthy', '1 when the worker is healthy and routable, else 0', w => w.state === 'healthy' ? 1 : 0)
    perWorker('counter', 'switchyard_worker_requests_total', 'Requests sent to each worker (attempts)', w => w.totalRequests)
    // Native transport, per worker, read from each upstream's counters at scrape time.
    const native = (kind: 'gauge' | 'counter', name: string, help: string, extra: string | null, fill: (st: NativeUpstreamStats, emit: (labels: Record<string, string>, v: number) => void) => void): void => {
      scraped(kind, { name, help, labelNames: extra === null ? ['worker'] : ['worker', extra], registers }, (emit) => {
        for (const w of workers.snapshot.workers) {
          if (w.client instanceof NativeUpstream) fill(w.client.stats(), (labels, v) => { emit({ worker: w.id, ...labels }, v) })
        }
      })
    }
    native('gauge', 'switchyard_native_open_streams', 'Streams open on each native-transport worker', null, (st, emit) => { emit({}, st.openStreams) })
    native('gauge', 'switchyard_native_connections', 'Connections open to each native-transport worker', null, (st, emit) => { emit({}, st.connections) })
    native('counter', 'switchyard_native_frames_total', 'Native transport frames per worker and direction', 'direction', (st, emit) => { emit({ direction: 'in' }, st.framesIn); emit({ direction: 'out' }, st.framesOut) })
    native('counter', 'switchyard_native_bytes_total', 'Native transport bytes per worker and direction', 'direction', (st, emit) => { emit({ direction: 'in' }, st.bytesIn); emit({ direction: 'out' }, st.bytesOut) })
    native('counter', 'switchyard_native_stream_failures_total', 'Native transport streams that failed, per worker and reason (timeouts, connection lost, worker errors, cancels, tombstoned)', 'reason', (st, emit) => {
      for (const [reason, n] of Object.entries(st.failures)) if (n > 0) emit({ reason }, n)
    })
    native('counter', 'switchyard_native_tombstone_hits_total', 'Requests that skipped a native worker because it failed recently (tombstone)', null, (st, emit) => { emit({}, st.tombstoneHits) })
    collectDefaultMetrics({ register: this.registry, prefix: 'switchyard_process_' })
  }

  /**
   * KV event plane metrics, read from the sources' counters and the indexes at scrape time:
   * events applied, gaps, replays and clears per worker, and the blocks the index holds for it.
   */
  watchKvPlane (plane: KvPlane): void {
    const registers = [this.registry]
    const counter = (name: string, help: string, field: 'events' | 'gaps' | 'replays' | 'clears'): void => {
      scraped('counter', { name, help, labelNames: ['model', 'worker'], registers }, (emit) => {
        for (const c of plane.counters()) emit({ model: c.model, worker: c.workerId }, c[field])
      })
    }
    counter('switchyard_kv_events_total', 'KV cache events applied to the index, per worker', 'events')
    counter('switchyard_kv_event_gaps_total', 'Gaps in a worker\'s KV event sequence', 'gaps')
    counter('switchyard_kv_event_replays_total', 'Replays requested to fill gaps', 'replays')
    counter('switchyard_kv_event_clears_total', 'Times a worker\'s blocks were cleared (engine restart or AllBlocksCleared)', 'clears')
    scraped('gauge', { name: 'switchyard_kv_index_blocks', help: 'KV blocks the gateway\'s index holds per worker', labelNames: ['model', 'worker'], registers }, (emit) => {
      for (const c of plane.counters()) {
        const index = plane.indexes.get(c.model)
        const slot = index === undefined ? -1 : index.slotOf(c.workerId)
        if (slot >= 0) emit({ model: c.model, worker: c.workerId }, index!.blockCount(slot))
      }
    })
  }

  /**
   * Router metrics: per-decision overhead by phase (tokenize is observed by the frontend; hash,
   * lookup and select come from the kv policy's last decision, read right after each dispatch),
   * the predicted hit ratio, load-guard interventions and session-affinity outcomes.
   * Returns the dispatch hook for Admission and the tokenize observer.
   */
  watchRouters (routers: RouterManager<Policy>): { onDispatch: (policy: Policy, route: RouteRequest) => void, tokenize: (model: string, seconds: number) => void } {
    const registers = [this.registry]
    const overhead = new FastHistogram({ name: 'switchyard_router_overhead_seconds', help: 'Routing work per decision, by phase: tokenize (chat template + tokenizer), hash (block hashes), lookup (KV index), select (cost and choice)', labelNames: ['model', 'phase'], buckets: OVERHEAD_BUCKETS })
    registerFast(this.registry, overhead)
    const children = new Map<string, { tokenize: { observe (v: number): void }, hash: { observe (v: number): void }, lookup: { observe (v: number): void }, select: { observe (v: number): void } }>()
    const forModel = (model: string): NonNullable<ReturnType<typeof children.get>> => {
      let c = children.get(model)
      if (c === undefined) {
        c = { tokenize: overhead.labels(model, 'tokenize'), hash: overhead.labels(model, 'hash'), lookup: overhead.labels(model, 'lookup'), select: overhead.labels(model, 'select') }
        children.set(model, c)
      }
      return c
    }
    // Decisions already observed per kv policy: an affinity hit dispatches without a kv decision.
    const seen = new WeakMap<KvPolicy, number>()
    const perKv = (kind: 'gauge' | 'counter', name: string, help: string, value: (kv: KvPolicy) => number | null): void => {
      scraped(kind, { name, help, labelNames: ['model'], registers }, (emit) => {
        for (const [model, r] of routers.routers) {
          const kv = kvPolicyOf(r.policy)
          const v = kv === null ? null : value(kv)
          if (v !== null) emit({ model }, v)
        }
      })
    }
    perKv('gauge', 'switchyard_router_predicted_hit_ratio', 'Share of prompt blocks the kv policy expected the chosen worker to hold in its cache, since start', kv => kv.stats.promptBlocks > 0 ? kv.stats.predictedBlocks / kv.stats.promptBlocks : null)
    perKv('counter', 'switchyard_router_load_guard_total', 'kv decisions the bounded-load guard changed (the cheapest worker carried too many requests)', kv => kv.stats.guarded)
    scraped('counter', { name: 'switchyard_session_affinity_total', help: 'Requests with an x-session-id, by outcome: hit (its previous worker), missing (gone, unhealthy or excluded), overloaded (the policy chose)', labelNames: ['model', 'outcome'], registers }, (emit) => {
      for (const [model, r] of routers.routers) {
        if (!(r.policy instanceof SessionAffinity)) continue
        const st = r.policy.stats
        emit({ model, outcome: 'hit' }, st.hits)
        emit({ model, outcome: 'missing' }, st.missingWorker)
        emit({ model, outcome: 'overloaded' }, st.overloaded)
      }
    })
    // The last policy seen and its kv policy: a router's policy rarely changes between requests.
    let lastPolicy: Policy | null = null
    let lastKv: KvPolicy | null = null
    return {
      onDispatch: (policy, route) => {
        if (policy !== lastPolicy) {
          lastPolicy = policy
          lastKv = kvPolicyOf(policy)
        }
        const kv = lastKv
        if (kv === null) return
        const st = kv.stats
        if (seen.get(kv) === st.decisions) return
        seen.set(kv, st.decisions)
        const c = forModel(route.model)
        c.hash.observe(st.lastHashUs / 1e6)
        c.lookup.observe(st.lastLookupUs / 1e6)
        c.select.observe(st.lastSelectUs / 1e6)
      },
      tokenize: (model, seconds) => { forModel(model).tokenize.observe(seconds) }
    }
  }

  forModel (model: string): ModelMetrics {
    let m = this.perModel.get(model)
    if (m === undefined) {
      m = {
        ttft: this.ttft.labels(model),
        itl: this.itl.labels(model),
        inflight: this.inflight.labels(model),
        e2e: { chat: this.e2e.labels(model, 'chat'), completions: this.e2e.labels(model, 'completions') },
        requests: { chat: [], completions: [] }
      }
      this.perModel.set(model, m)
    }
    return m
  }

  /** Counts one answered request (children cached: no label hashing per request). */
  countRequest (model: string, endpoint: 'chat' | 'completions', status: number, seconds: number): void {
    const m = this.forModel(model)
    const byStatus = m.requests[endpoint]
    let c = byStatus[status]
    if (c === undefined) {
      c = this.requests.labels(model, endpoint, String(status))
      byStatus[status] = c
    }
    c.inc()
    m.e2e[endpoint].observe(seconds)
  }
}
