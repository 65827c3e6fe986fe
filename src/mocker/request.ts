/**
 * One generation request inside the engine. Every field is assigned in the constructor (stable
 * shape: the scheduler touches these on every pass).
 */
import type { StopMatcher } from './stop-strings.js'

export const RequestState = {
  WAITING: 0,
  RUNNING: 1,
  FINISHED: 2,
  CANCELLED: 3
} as const
export type RequestStateValue = typeof RequestState[keyof typeof RequestState]

/** "length": max_tokens reached; "stop": EOS or a stop string; "abort": cancelled or engine closed. */
export type FinishReason = 'length' | 'stop' | 'abort'

export interface RequestUsage {
  promptTokens: number
  completionTokens: number
  /** Prompt tokens served from the prefix cache at first scheduling. */
  cachedTokens: number
}

/**
 * Receives a request's output, synchronously at the end of the pass that produced it.
 * `text` may be empty when a possible stop string is being held back.
 */
export interface RequestSink {
  onToken (req: EngineRequest, tokenId: number, text: string): void
  /** `text` is any held-back text released at the end (empty after a stop string). */
  onFinish (req: EngineRequest, reason: FinishReason, text: string): void
}

export class EngineRequest {
  readonly id: string
  /** Arrival order; breaks priority ties first-come first-served. */
  readonly arrival: number
  /** Lower runs first (vLLM's convention). */
  readonly priority: number
  readonly numPromptTokens: number
  readonly maxTokens: number
  readonly minTokens: number
  readonly ignoreEos: boolean
  readonly stop: StopMatcher | null
  readonly sink: RequestSink
  readonly arrivalMs: number
  /** Prompt then output ids; grows by doubling. */
  tokens: Uint32Array
  numTokens: number
  numComputed: number
  numOutputTokens: number
  state: RequestStateValue
  /** True once the prompt (and any recomputed output) is in the cache and each pass adds one token. */
  decoding: boolean
  /** Block table: block ids holding this request's tokens, in order. */
  blocks: number[]
  /** Sequence hashes of the full blocks of `tokens`, extended as output fills blocks. */
  blockHashes: bigint[]
  /** Leading blocks already registered in (or taken from) the prefix cache. */
  numCachedBlocks: number
  /** Prefix-cache hit at first scheduling, in tokens; -1 before. */
  numCachedTokens: number
  numPreemptions: number
  rngState: number
  firstTokenMs: number
  lastTokenMs: number
  finishReason: FinishReason | null
  /** Free for the owner of the sink (e.g. the HTTP response state). */
  context: unknown

  constructor (
    id: string, arrival: number, prompt: ArrayLike<number>, maxTokens: number, minTokens: number, ignoreEos: boolean,
    priority: number, stop: StopMatcher | null, rngState: number, arrivalMs: number, sink: RequestSink, context: unknown
  ) {
    this.id = id
    this.arrival = arrival
    this.priority = priority
    this.numPromptTokens = prompt.length
    this.maxTokens = maxTokens
    this.minTokens = minTokens
    this.ignoreEos = ignoreEos
    this.stop = stop
    this.sink = sink
    this.arrivalMs = arrivalMs
    this.tokens = new Uint32Array(prompt.length + Math.min(maxTokens, 256))
    for (let i = 0; i < prompt.length; i++) this.tokens[i] = prompt[i]!
    this.numTokens = prompt.length
    this.numComputed = 0
    this.numOutputTokens = 0
    this.state = RequestState.WAITING
    this.decoding = false
    this.blocks = []
    this.blockHashes = []
    this.numCachedBlocks = 0
    this.numCachedTokens = -1
    this.numPreemptions = 0
    this.rngState = rngState
    this.firstTokenMs = -1
    this.lastTokenMs = -1
    this.finishReason = null
    this.context = context
  }

  get usage (): RequestUsage {
    return {
      promptTokens: this.numPromptTokens,
      completionTokens: this.numOutputTokens,
      cachedTokens: this.numCachedTokens < 0 ? 0 : this.numCachedTokens
    }
  }

  appendToken (id: number): void {
    if (this.numTokens === this.tokens.length) {
      const bigger = new Uint32Array(this.tokens.length * 2)
      bigger.set(this.tokens)
      this.tokens = bigger
    }
    this.tokens[this.numTokens++] = id
    this.numOutputTokens++
  }

  /** Uniform in [0, 1), mulberry32 on the request's own state: output depends on nothing else. */
  random (): number {
    this.rngState = (this.rngState + 0x6d2b79f5) >>> 0
    let t = this.rngState
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
