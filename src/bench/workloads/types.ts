/**
 * What a workload hands the runner: jobs, each one request or a session of sequential turns.
 * Jobs are produced lazily and build their prompt text only when asked for a request, so a long
 * trace never holds every prompt in memory and the runner can build the next body ahead of its
 * arrival time.
 */
import type { ChatMessage } from '../../tokenize/index.js'
import type { PriorityName } from '../options.js'
import type { Prompt } from '../prompts.js'

export interface RequestSpec {
  /** The new text of this request (the whole prompt unless it is a later turn of a session). */
  prompt: Prompt
  /** Completions: the full prompt text. Chat sends `messages` instead when set. */
  fullText: string
  /** Chat: the conversation so far plus the new user message; null sends one user message with `fullText`. */
  messages: ChatMessage[] | null
  /** Prompt tokens of the whole request as the client built it (before any chat template). */
  inputTokens: number
  maxTokens: number
}

export interface Job {
  /** Index of the job in workload order. */
  readonly index: number
  /** Arrival offset in ms from the start of the replay (traces); null when the runner schedules it. */
  readonly atMs: number | null
  /** Requests in this job: 1, or the turns of a session. */
  readonly turns: number
  readonly sessionId: string | null
  readonly priority: PriorityName | null
  /** True when the job needs each answer's text (the next turn resends it). */
  readonly wantsText: boolean
  request (turn: number): RequestSpec
  /** The answer text of `turn` (only called when wantsText). */
  answer (turn: number, text: string): void
}

export interface Workload {
  readonly kind: string
  /** Requests in the workload's natural size (its trace, P×Q prompts, sessions × turns, ...). */
  readonly naturalRequests: number
  /** True when jobs carry arrival times (trace replay). */
  readonly timed: boolean
  /** Jobs in order; endless for generated workloads (the runner stops at its request limit). */
  jobs (): Iterator<Job>
}
