/**
 * /metrics for one engine, with vLLM's metric names so dashboards and scrapers written for vLLM
 * work unchanged. A Registry per engine (never prom-client's global one): several engines live in
 * one process. Counters carry vLLM's exposed `_total` suffix (Python's client appends it; prom-client
 * does not), e.g. `vllm:prefix_cache_queries_total`.
 *
 * Gauges are computed at scrape time; per-token work is one histogram observation on a child bound
 * to the model label once.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Scheduler, SchedulerObserver } from './scheduler.js'
import type { EngineRequest } from './request.js'

// vLLM's buckets, with finer low ends: a sped-up mock produces sub-millisecond gaps.
const TTFT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560]
const ITL_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80]
const E2E_BUCKETS = [0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680]

interface Observe { observe (value: number): void }
interface Inc { inc (value?: number): void }

export class EngineMetrics implements SchedulerObserver {
  readonly registry: Registry
  private readonly ttft: Observe
  private readonly itl: Observe
  private readonly e2e: Observe
  private readonly queries: Inc
  private readonly hits: Inc
  private readonly preemptions: Inc
  private readonly promptTokens: Inc
  private readonly generationTokens: Inc
  private readonly success: Inc

  constructor (model: string, getScheduler: () => Scheduler) {
    const registry = new Registry()
    this.registry = registry
    const labelNames = ['model_name'] as const
    const gauge = (name: string, help: string, read: (s: Scheduler) => number): void => {
      const g: Gauge<'model_name'> = new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        collect () {
          g.set({ model_name: model }, read(getScheduler()))
        }
      })
    }
    gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', (s) => s.running.length)
    gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', (s) => s.numWaiting)
    gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', (s) => s.blocks.usage)
    const counter = (name: string, help: string): Inc => {
      const child = new Counter({ name, help, labelNames, registers: [registry] }).labels(model)
      // Exposed as 0 from the start, as vLLM does, rather than missing until the first event.
      child.inc(0)
      return child
    }
    this.queries = counter('vllm:prefix_cache_queries_total', 'Prefix cache queries, in terms of number of queried tokens.')
    this.hits = counter('vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.')
    this.preemptions = counter('vllm:num_preemptions_total', 'Cumulative number of preemption from the engine.')
    this.promptTokens = counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.')
    this.generationTokens = counter('vllm:generation_tokens_total', 'Number of generation tokens processed.')
    this.success = counter('vllm:request_success_total', 'Count of successfully processed requests.')
    const histogram = (name: string, help: string, buckets: number[]): Observe =>
      new Histogram({ name, help, labelNames, buckets, registers: [registry] }).labels(model)
    this.ttft = histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', TTFT_BUCKETS)
    this.itl = histogram('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', ITL_BUCKETS)
    this.e2e = histogram('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', E2E_BUCKETS)
  }

  onAdmitted (_req: EngineRequest, queriedTokens: number, hitTokens: number): void {
    this.queries.inc(queriedTokens)
    if (hitTokens > 0) this.hits.inc(hitTokens)
  }

  onPreempted (_req: EngineRequest): void {
    this.preemptions.inc()
  }

  onToken (req: EngineRequest, nowMs: number): void {
    this.generationTokens.inc()
    if (req.lastTokenMs < 0) {
      this.ttft.observe((nowMs - req.arrivalMs) / 1000)
      this.promptTokens.inc(req.numPromptTokens)
    } else {
      this.itl.observe((nowMs - req.lastTokenMs) / 1000)
    }
  }

  onFinished (req: EngineRequest, nowMs: number): void {
    if (req.finishReason === 'abort') return
    this.success.inc()
    this.e2e.observe((nowMs - req.arrivalMs) / 1000)
  }

  async text (): Promise<string> {
    return await this.registry.metrics()
  }
}
