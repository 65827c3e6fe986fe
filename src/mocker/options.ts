/**
 * Mock engine options: defaults (vLLM's where vLLM has the knob, Dynamo's mocker's otherwise) and
 * validation once at creation, naming the bad key and what it accepts.
 */
import type { Tokenizer } from '../tokenize/index.js'
import { MockerOptionError } from './errors.js'

export interface MockEngineOptions {
  /** Served model name (GET /v1/models, `model` in responses, metric label). Default "mock-llm". */
  model?: string
  /** Identifies this engine in forward-pass metrics. Default "0". */
  workerId?: string
  /** Data-parallel rank written in KV event batches. Default 0. */
  dpRank?: number
  /** Tokens per KV block. Default 64 (Dynamo's mocker; vLLM uses 16). */
  blockSize?: number
  /** KV blocks in the simulated GPU cache. Default 16384. */
  numGpuBlocks?: number
  /** Sequence cap per pass. Default 256. */
  maxNumSeqs?: number
  /** Token budget per pass (prefill chunks + decode tokens). Default 8192. */
  maxNumBatchedTokens?: number
  /** Longest prompt + output accepted. Default and maximum: the whole KV cache (numGpuBlocks × blockSize). */
  maxModelLen?: number
  /**
   * Requests allowed to wait for a running slot; beyond it the servers refuse new ones (HTTP 429
   * with Retry-After, as SGLang's --max-queued-requests or TGI do). Default: unlimited (vLLM).
   */
  maxWaiting?: number
  /** Modeled pass time is divided by this; 0 runs passes as fast as possible. Default 1. */
  speedupRatio?: number
  /** "virtual": time advances by the modeled pass time without sleeping. Default "real". */
  clock?: 'real' | 'virtual'
  /** Seeds the generated tokens (mixed with the prompt, so one prompt gives one answer). Default 0. */
  seed?: number
  /** Per-token chance of sampling EOS unless ignore_eos (or before min_tokens). Default 1/1024. */
  eosProbability?: number
  /** max_tokens when a request gives none (vLLM would use the rest of max_model_len). Default 1024. */
  defaultMaxTokens?: number
  /** Prefix caching on/off. Default on. */
  enablePrefixCaching?: boolean
  /** Idle heartbeat interval for forward-pass metrics, ms (real clock only; 0 disables). Default 1000. */
  heartbeatMs?: number
  /** Default: the built-in tokenizer. */
  tokenizer?: Tokenizer
}

export interface ResolvedEngineOptions {
  model: string
  workerId: string
  dpRank: number
  blockSize: number
  numGpuBlocks: number
  maxNumSeqs: number
  maxNumBatchedTokens: number
  maxModelLen: number
  maxWaiting: number
  speedupRatio: number
  clock: 'real' | 'virtual'
  seed: number
  eosProbability: number
  defaultMaxTokens: number
  enablePrefixCaching: boolean
  heartbeatMs: number
}

const KEYS = new Set<string>([
  'model', 'workerId', 'dpRank', 'blockSize', 'numGpuBlocks', 'maxNumSeqs', 'maxNumBatchedTokens', 'maxModelLen', 'maxWaiting',
  'speedupRatio', 'clock', 'seed', 'eosProbability', 'defaultMaxTokens', 'enablePrefixCaching', 'heartbeatMs', 'tokenizer'
])

export function resolveEngineOptions (opts: MockEngineOptions = {}): ResolvedEngineOptions {
  for (const key of Object.keys(opts)) {
    if (!KEYS.has(key)) throw new MockerOptionError(`unknown mock engine option "${key}"; accepted: ${[...KEYS].join(', ')}`)
  }
  const blockSize = int(opts.blockSize, 'blockSize', 64, 1, 1 << 16)
  const numGpuBlocks = int(opts.numGpuBlocks, 'numGpuBlocks', 16384, 1, 1 << 26)
  const capacity = blockSize * numGpuBlocks
  const resolved: ResolvedEngineOptions = {
    model: str(opts.model, 'model', 'mock-llm'),
    workerId: str(opts.workerId, 'workerId', '0'),
    dpRank: int(opts.dpRank, 'dpRank', 0, 0, 1 << 16),
    blockSize,
    numGpuBlocks,
    maxNumSeqs: int(opts.maxNumSeqs, 'maxNumSeqs', 256, 1, 1 << 20),
    maxNumBatchedTokens: int(opts.maxNumBatchedTokens, 'maxNumBatchedTokens', 8192, 1, 1 << 30),
    maxModelLen: int(opts.maxModelLen, 'maxModelLen', capacity, 2, capacity),
    maxWaiting: opts.maxWaiting === undefined ? Infinity : int(opts.maxWaiting, 'maxWaiting', 0, 0, 1 << 30),
    speedupRatio: num(opts.speedupRatio, 'speedupRatio', 1, 0, 1e9),
    clock: opts.clock ?? 'real',
    seed: int(opts.seed, 'seed', 0, 0, 0xffffffff),
    eosProbability: num(opts.eosProbability, 'eosProbability', 1 / 1024, 0, 1),
    defaultMaxTokens: int(opts.defaultMaxTokens, 'defaultMaxTokens', 1024, 1, 1 << 30),
    enablePrefixCaching: opts.enablePrefixCaching ?? true,
    heartbeatMs: int(opts.heartbeatMs, 'heartbeatMs', 1000, 0, 1 << 30)
  }
  if (resolved.clock !== 'real' && resolved.clock !== 'virtual') {
    throw new MockerOptionError(`clock must be "real" or "virtual", got ${JSON.stringify(opts.clock)}`)
  }
  if (typeof resolved.enablePrefixCaching !== 'boolean') throw new MockerOptionError('enablePrefixCaching must be a boolean')
  return resolved
}

function int (value: number | undefined, key: string, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new MockerOptionError(`${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
  }
  return value
}

function num (value: number | undefined, key: string, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new MockerOptionError(`${key} must be a number from ${min} to ${max}, got ${JSON.stringify(value)}`)
  }
  return value
}

function str (value: string | undefined, key: string, dflt: string): string {
  if (value === undefined) return dflt
  if (typeof value !== 'string' || value.length === 0) throw new MockerOptionError(`${key} must be a non-empty string`)
  return value
}
