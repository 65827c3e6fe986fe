/** The shape of a run's results (results.json, the input of the report). */
import type { Stats } from './stats.js'
import type { PriorityName } from './options.js'
import type { RequestRecord } from './records.js'
import type { Cdfs, RunSummary, Timeline } from './summary.js'
import type { WorkerCounts } from './gateway-metrics.js'
import type { ArrivalMode } from './run.js'

export const RESULTS_VERSION = 1

export interface GeneratorHealth {
  /** How late scheduled requests went out (open loop and replay); null in a closed loop. */
  dispatchLagMs: Stats | null
  /** Event-loop delay of the generator during the run (ms): high values mean it was CPU-bound. */
  eventLoopDelayMs: { p50: number, p99: number, max: number }
  /** CPU the generator process used during the measured run (includes anything else in the process). */
  cpuMs: { user: number, system: number }
  /** True when the dispatch lag p99 exceeded the threshold: the offered load was lower than asked. */
  behindSchedule: boolean
  warnings: string[]
}

export interface LoadResult {
  version: typeof RESULTS_VERSION
  startedAt: string
  /** The resolved options (API key masked). */
  options: Record<string, unknown>
  mode: ArrivalMode
  workload: {
    kind: string
    tokenizer: string
    /** True when prompt token counts are exact (the built-in tokenizer). */
    exactPromptLengths: boolean
    naturalRequests: number
  }
  /** Body field `priority` sent per class (lower = more urgent, as vLLM); null without a priority mix. */
  priorityValues: Readonly<Record<PriorityName, number>> | null
  warmupRequests: number
  summary: RunSummary
  perPriority: Partial<Record<PriorityName, RunSummary>> | null
  generator: GeneratorHealth
  /** Per-worker request counts scraped from the gateway's /metrics; null when it exposes none. */
  workers: WorkerCounts | null
  timeline: Timeline
  cdf: Cdfs
  records: RequestRecord[]
}
