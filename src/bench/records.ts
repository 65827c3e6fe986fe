/** What the generator records per request, as written to results.json. */
import type { PriorityName } from './options.js'

/**
 * Why a request failed:
 * - `http`: an error status (body in the OpenAI error shape when the server sent one);
 * - `network`: no response or the connection broke (refused, reset, closed mid-body);
 * - `timeout`: no headers or no body bytes within the request timeout;
 * - `stream`: the server ended a started stream with an SSE error event;
 * - `incomplete`: the stream ended without `data: [DONE]`, or a body that is not JSON;
 * - `cancelled`: the run was stopped (drain timeout, abort signal) while it was in flight.
 */
export type RequestErrorKind = 'http' | 'network' | 'timeout' | 'stream' | 'incomplete' | 'cancelled'

export interface RequestError {
  kind: RequestErrorKind
  status: number | null
  /** OpenAI `error.type`, or the network error's code (ECONNRESET, UND_ERR_SOCKET, ...). */
  type: string | null
  code: string | null
  message: string
}

export interface RequestRecord {
  /** Send order in the measured run. */
  index: number
  job: number
  turn: number
  sessionId: string | null
  priority: PriorityName | null
  /** Planned start, ms from the run's start (open loop and replay); null in a closed loop. */
  scheduledMs: number | null
  /** Actual send, ms from the run's start. */
  startMs: number
  /** startMs − scheduledMs: how late the generator was. */
  lagMs: number | null
  /** Time to the first chunk with content (streaming only). */
  ttftMs: number | null
  /** Time to the end of the answer, or to the failure. */
  e2eMs: number
  itlMeanMs: number | null
  itlMaxMs: number | null
  /** (e2e − ttft) / (outputTokens − 1). */
  tpotMs: number | null
  /** Chunks that carried content. */
  contentChunks: number
  /** Prompt tokens as the client built them (no chat template). */
  inputTokens: number
  /** usage.prompt_tokens (includes the chat template). */
  promptTokens: number | null
  /** usage.prompt_tokens_details.cached_tokens */
  cachedTokens: number | null
  outputTokens: number
  outputTokensFrom: 'usage' | 'chunks' | 'text'
  maxTokens: number
  finishReason: string | null
  status: number | null
  ok: boolean
  error: RequestError | null
}
