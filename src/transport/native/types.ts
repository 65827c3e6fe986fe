/**
 * Shapes carried by the native transport (docs/native-protocol.md). Shared by the gateway-side
 * client, the worker runtime and the OpenAI writer.
 */

import { Buffer } from 'node:buffer'

export type NativeEndpoint = 'chat' | 'completions'

/** Why generation stopped. "abort": the engine dropped the request (closing, cancelled). */
export type NativeFinishReason = 'stop' | 'length' | 'abort' | (string & {})

export interface NativeUsage {
  promptTokens: number
  completionTokens: number
  /** Prompt tokens served from the engine's prefix cache. */
  cachedTokens: number
}

/** Sampling knobs; absent means the engine's default. Unknown knobs go in `NativeRequest.extra`. */
export interface NativeSampling {
  maxTokens?: number
  minTokens?: number
  temperature?: number
  topP?: number
  seed?: number
  stop?: readonly string[]
  ignoreEos?: boolean
}

export interface NativeMessage {
  role: string
  content?: unknown
  [field: string]: unknown
}

/**
 * One generation request. Give `tokenIds` when the gateway already tokenized (the worker then need
 * not); otherwise `prompt` (completions) or `messages` (chat).
 */
export interface NativeRequest {
  model: string
  endpoint: NativeEndpoint
  tokenIds?: Uint32Array | null
  prompt?: string | null
  messages?: readonly NativeMessage[] | null
  sampling?: NativeSampling
  /** Lower runs first (vLLM's convention). Default 0. */
  priority?: number
  /**
   * Budget in ms from the moment the request is sent; 0 or absent: none. Relative rather than a
   * wall-clock instant so gateway and worker clocks need not agree (gRPC's grpc-timeout does this).
   */
  deadlineMs?: number
  /** The gateway's request id, for logs on both sides. */
  requestId?: string
  /** Ask the worker to include generated token ids in items. Default false. */
  returnTokenIds?: boolean
  /** Fields the gateway does not interpret, passed to the engine untouched. */
  extra?: Record<string, unknown> | null
}

/**
 * One response item. The client hands the same object to every `onItem` call of a connection and
 * overwrites it afterwards: copy what you keep (the strings and arrays themselves are never reused).
 */
export interface ResponseItem {
  /** Text delta; null when this item carries none. */
  text: string | null
  tokenIds: Uint32Array | null
  /** Set on the last item of a stream. */
  finishReason: NativeFinishReason | null
  /** Set on the last item. */
  usage: NativeUsage | null
  /**
   * The text's UTF-8 bytes inside the received frame, `raw[rawStart, rawEnd)`: set by the gateway
   * side's decoder, valid only during the onItem call. A handler that declares `rawText` gets
   * `text` null for deltas and only these (writers that emit bytes skip a UTF-8 decode per item).
   */
  raw?: Buffer | null
  rawStart?: number
  rawEnd?: number
  /**
   * When the bytes carrying this item were read (performance.now()), set by the gateway side's
   * decoder: one clock read per socket read, not per item, for the inter-token histogram.
   */
  receivedAt?: number
}
