/**
 * Forward-pass metrics (Dynamo's ForwardPassMetrics, flattened): what one pass scheduled, what is
 * queued after it, and KV usage. Emitted after every pass and, while idle, as a heartbeat.
 *
 * Listeners receive the same object every time (no allocation per pass): read it during the
 * callback, copy it to keep it.
 */
export class ForwardPassMetrics {
  workerId: string
  dpRank: number
  /** Passes run so far; a heartbeat repeats the last pass's index. */
  passIndex: number
  /** Engine clock (ms) when emitted. */
  timestampMs: number
  /** True for an idle heartbeat (nothing scheduled). */
  idle: boolean
  /** Modeled pass duration after the speed-up ratio, ms. */
  passMs: number
  scheduledRequests: number
  scheduledPrefillTokens: number
  scheduledDecodeTokens: number
  preemptions: number
  runningRequests: number
  waitingRequests: number
  /** Tokens of the waiting requests (prompts, plus output to recompute after preemption). */
  waitingTokens: number
  kvActiveBlocks: number
  kvTotalBlocks: number
  /** kvActiveBlocks / kvTotalBlocks. */
  kvUsage: number
  /** Cumulative prefix-cache hit tokens / queried tokens (0 before any query). */
  prefixCacheHitRate: number

  constructor (workerId: string, dpRank: number, kvTotalBlocks: number) {
    this.workerId = workerId
    this.dpRank = dpRank
    this.passIndex = 0
    this.timestampMs = 0
    this.idle = true
    this.passMs = 0
    this.scheduledRequests = 0
    this.scheduledPrefillTokens = 0
    this.scheduledDecodeTokens = 0
    this.preemptions = 0
    this.runningRequests = 0
    this.waitingRequests = 0
    this.waitingTokens = 0
    this.kvActiveBlocks = 0
    this.kvTotalBlocks = kvTotalBlocks
    this.kvUsage = 0
    this.prefixCacheHitRate = 0
  }
}

export type PassListener = (metrics: ForwardPassMetrics) => void
