/**
 * The load generator's options: the resolved shape (`LoadOptions`, every field present), the
 * input shape callers pass (`LoadOptionsInput`, only url and model required), defaults and the
 * one validation pass that turns one into the other.
 */
import type { Tokenizer } from '../tokenize/index.js'
import { BadOptionError } from './errors.js'

export type Endpoint = 'chat' | 'completions'
export type WorkloadKind = 'synthetic' | 'shared-prefix' | 'multi-turn' | 'trace'
export type TraceFormat = 'auto' | 'mooncake' | 'azure'
export type PriorityName = 'high' | 'medium' | 'low'

export const PRIORITY_NAMES: readonly PriorityName[] = ['high', 'medium', 'low']

/**
 * Body field `priority` sent for each class. vLLM's priority scheduling takes an integer where
 * lower is more urgent (ties by arrival); the gateway reads the same field or `x-priority`.
 */
export const PRIORITY_VALUES: Readonly<Record<PriorityName, number>> = { high: 0, medium: 1, low: 2 }

/** Token lengths: normal(mean, stddev) rounded and clamped to [min, max]; stddev 0 is exact. */
export interface LengthSpec {
  mean: number
  stddev: number
  min: number
  max: number
}

export type PriorityMix = Readonly<Record<PriorityName, number>>

export interface LoadOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:8000` (a trailing `/v1` is accepted). */
  url: string
  model: string
  endpoint: Endpoint
  stream: boolean
  apiKey: string | null
  /** Closed loop: this many requests in flight at all times. Exclusive with requestRate. */
  concurrency: number | null
  /** Open loop: Poisson arrivals at this many requests (multi-turn: sessions) per second. */
  requestRate: number | null
  /** Requests to send; null: the workload's natural size (its trace, P×Q prompts, sessions×turns, else 100). */
  numRequests: number | null
  /** Stop starting requests after this many seconds. */
  durationS: number | null
  /** Requests sent before measuring (synthetic, other seeds), left out of the results. */
  warmup: number
  isl: LengthSpec
  osl: LengthSpec
  ignoreEos: boolean
  seed: number
  workload: WorkloadKind
  numPrefixes: number
  promptsPerPrefix: number
  /** Share of each prompt's tokens that is its group's shared prefix. */
  prefixRatio: number
  numSessions: number
  turns: number
  /** Think time between a turn's answer and the next turn. */
  turnDelayMs: number
  trace: string | null
  traceFormat: TraceFormat
  traceSpeedup: number
  traceBlockSize: number
  /** Skip trace records before this many seconds into the trace; times are shifted to start at 0. */
  traceStartS: number
  priorityMix: PriorityMix | null
  sloTtftMs: number | null
  sloTpotMs: number | null
  sloE2eMs: number | null
  /** HF tokenizer directory; null: the built-in tokenizer (what the mock engine uses). */
  tokenizerDir: string | null
  /** A tokenizer instance (library use); wins over tokenizerDir. */
  tokenizer: Tokenizer | null
  /** Idle deadline for response headers and between body chunks. */
  requestTimeoutS: number
  /** After the last request is started, how long in-flight requests may take before they are cancelled. */
  drainTimeoutS: number
  /** Connections to the server; null: concurrency for a closed loop, else 4096. */
  maxConnections: number | null
  /** Scrape GET /metrics before and after the run for per-worker request counts. */
  scrapeMetrics: boolean
  /** Dispatch lag p99 above which the run is flagged as behind schedule. */
  lagWarnMs: number
  /** Extra fields merged into every request body (temperature, ...). */
  extraBody: Readonly<Record<string, unknown>>
  /** Extra headers sent with every request (a peer gateway's routing header, ...). */
  extraHeaders: Readonly<Record<string, string>>
  /** Progress on stderr. */
  progress: boolean
}

export type LoadOptionsInput = Partial<Omit<LoadOptions, 'isl' | 'osl'>> & {
  url: string
  model: string
  isl?: Partial<LengthSpec> | number
  osl?: Partial<LengthSpec> | number
}

const DEFAULTS: Omit<LoadOptions, 'url' | 'model' | 'isl' | 'osl'> = {
  endpoint: 'chat',
  stream: false,
  apiKey: null,
  concurrency: null,
  requestRate: null,
  numRequests: null,
  durationS: null,
  warmup: 0,
  ignoreEos: false,
  seed: 42,
  workload: 'synthetic',
  numPrefixes: 10,
  promptsPerPrefix: 10,
  prefixRatio: 0.5,
  numSessions: 10,
  turns: 5,
  turnDelayMs: 0,
  trace: null,
  traceFormat: 'auto',
  traceSpeedup: 1,
  traceBlockSize: 512,
  traceStartS: 0,
  priorityMix: null,
  sloTtftMs: null,
  sloTpotMs: null,
  sloE2eMs: null,
  tokenizerDir: null,
  tokenizer: null,
  requestTimeoutS: 600,
  drainTimeoutS: 120,
  maxConnections: null,
  scrapeMetrics: true,
  lagWarnMs: 10,
  extraBody: {},
  extraHeaders: {},
  progress: false
}

const DEFAULT_ISL = 512
const DEFAULT_OSL = 128
/** Hard cap on one prompt: far above any model's context, low enough to catch a typo. */
const MAX_TOKENS_CAP = 4_000_000

function lengthSpec (name: string, v: Partial<LengthSpec> | number | undefined, mean: number): LengthSpec {
  const given = typeof v === 'number' ? { mean: v } : (v ?? {})
  const spec = { mean: given.mean ?? mean, stddev: given.stddev ?? 0, min: given.min ?? 1, max: given.max ?? MAX_TOKENS_CAP }
  positiveInt(name + '.mean', spec.mean)
  if (!Number.isFinite(spec.stddev) || spec.stddev < 0) throw new BadOptionError(name + '.stddev', `${name}.stddev must be ≥ 0, got ${spec.stddev}`)
  positiveInt(name + '.min', spec.min)
  positiveInt(name + '.max', spec.max)
  if (spec.min > spec.max) throw new BadOptionError(name + '.min', `${name}.min (${spec.min}) is above ${name}.max (${spec.max})`)
  return spec
}

function positiveInt (name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new BadOptionError(name, `${name} must be a positive integer, got ${String(v)}`)
}

function positive (name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new BadOptionError(name, `${name} must be a positive number, got ${String(v)}`)
}

function nonNegative (name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new BadOptionError(name, `${name} must be ≥ 0, got ${String(v)}`)
}

function oneOf<T extends string> (name: string, v: unknown, allowed: readonly T[]): void {
  if (!allowed.includes(v as T)) throw new BadOptionError(name, `${name} must be one of ${allowed.join(', ')}, got ${String(v)}`)
}

/**
 * Fills defaults and validates once; throws BadOptionError naming the option.
 *
 * @example
 * const opts = resolveLoadOptions({ url: 'http://127.0.0.1:8000', model: 'm', concurrency: 8, stream: true })
 */
export function resolveLoadOptions (input: LoadOptionsInput): LoadOptions {
  for (const key of Object.keys(input)) {
    if (!(key in DEFAULTS) && key !== 'url' && key !== 'model' && key !== 'isl' && key !== 'osl') {
      throw new BadOptionError(key, `unknown option ${key}`)
    }
  }
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as LoadOptionsInput
  const o: LoadOptions = {
    ...DEFAULTS,
    ...defined,
    isl: lengthSpec('isl', input.isl, DEFAULT_ISL),
    osl: lengthSpec('osl', input.osl, DEFAULT_OSL)
  }
  if (typeof o.url !== 'string' || !/^https?:\/\//.test(o.url)) throw new BadOptionError('url', `url must be an http:// or https:// URL, got ${String(o.url)}`)
  try { new URL(o.url) } catch { throw new BadOptionError('url', `url is not a valid URL: ${o.url}`) }
  if (typeof o.model !== 'string' || o.model === '') throw new BadOptionError('model', 'model is required')
  oneOf('endpoint', o.endpoint, ['chat', 'completions'])
  oneOf('workload', o.workload, ['synthetic', 'shared-prefix', 'multi-turn', 'trace'])
  oneOf('traceFormat', o.traceFormat, ['auto', 'mooncake', 'azure'])
  if (o.concurrency !== null && o.requestRate !== null) throw new BadOptionError('concurrency', 'concurrency (closed loop) and requestRate (open loop) exclude each other: give one')
  if (o.concurrency !== null) positiveInt('concurrency', o.concurrency)
  if (o.requestRate !== null) positive('requestRate', o.requestRate)
  if (o.numRequests !== null) positiveInt('numRequests', o.numRequests)
  if (o.durationS !== null) positive('durationS', o.durationS)
  if (o.warmup !== 0) positiveInt('warmup', o.warmup)
  if (!Number.isInteger(o.seed)) throw new BadOptionError('seed', `seed must be an integer, got ${o.seed}`)
  positiveInt('numPrefixes', o.numPrefixes)
  positiveInt('promptsPerPrefix', o.promptsPerPrefix)
  if (!(o.prefixRatio >= 0 && o.prefixRatio < 1)) throw new BadOptionError('prefixRatio', `prefixRatio must be in [0, 1), got ${o.prefixRatio}`)
  positiveInt('numSessions', o.numSessions)
  positiveInt('turns', o.turns)
  nonNegative('turnDelayMs', o.turnDelayMs)
  if (o.workload === 'trace' && o.trace === null) throw new BadOptionError('trace', 'workload trace needs a trace file')
  if (o.workload !== 'trace' && o.trace !== null) throw new BadOptionError('trace', `a trace file was given but the workload is ${o.workload}`)
  positive('traceSpeedup', o.traceSpeedup)
  positiveInt('traceBlockSize', o.traceBlockSize)
  nonNegative('traceStartS', o.traceStartS)
  if (o.priorityMix !== null) o.priorityMix = normalisePriorityMix(o.priorityMix)
  for (const k of ['sloTtftMs', 'sloTpotMs', 'sloE2eMs'] as const) if (o[k] !== null) positive(k, o[k])
  positive('requestTimeoutS', o.requestTimeoutS)
  nonNegative('drainTimeoutS', o.drainTimeoutS)
  if (o.maxConnections !== null) positiveInt('maxConnections', o.maxConnections)
  positive('lagWarnMs', o.lagWarnMs)
  for (const [k, v] of Object.entries(o.extraHeaders)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) || typeof v !== 'string') throw new BadOptionError('extraHeaders', `extraHeaders must map header names to strings, got ${JSON.stringify(k)}: ${typeof v}`)
  }
  if (o.workload !== 'trace' && o.concurrency === null && o.requestRate === null) o.concurrency = 1
  return o
}

function normalisePriorityMix (mix: Partial<PriorityMix>): PriorityMix {
  let total = 0
  for (const name of PRIORITY_NAMES) {
    const v = mix[name] ?? 0
    nonNegative('priorityMix.' + name, v)
    total += v
  }
  if (total <= 0) throw new BadOptionError('priorityMix', 'priorityMix needs at least one class with a positive share')
  return { high: (mix.high ?? 0) / total, medium: (mix.medium ?? 0) / total, low: (mix.low ?? 0) / total }
}

/** `http://h:p/v1/` → `http://h:p`: endpoints and /metrics are appended to this. */
export function baseUrl (url: string): string {
  let u = url.replace(/\/+$/, '')
  if (u.endsWith('/v1')) u = u.slice(0, -3)
  return u
}

/** The options as they go into results.json: no tokenizer instance. */
export function describeOptions (o: LoadOptions): Record<string, unknown> {
  const { tokenizer, apiKey, extraHeaders, ...rest } = o
  // Header values may carry credentials: only their names go into results.json.
  return { ...rest, tokenizer: tokenizer?.name ?? (o.tokenizerDir === null ? 'builtin' : 'hf:' + o.tokenizerDir), apiKey: apiKey === null ? null : '(set)', extraHeaders: Object.keys(extraHeaders) }
}
