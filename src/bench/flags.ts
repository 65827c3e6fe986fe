/**
 * `switchyard bench` flags: one table from flag to option, parsed once; unknown or malformed
 * flags are BadFlagError (exit code 2) with the accepted values in the message.
 */
import { BadFlagError } from './errors.js'
import type { LengthSpec, LoadOptionsInput, PriorityMix } from './options.js'

type Kind = 'int' | 'num' | 'str' | 'bool' | 'seconds' | 'json'

interface FlagSpec {
  /** Option key (a dotted key sets a field of isl/osl). */
  key: string
  kind: Kind
  values?: readonly string[]
  help: string
  arg?: string
}

/** Flags in help order. Keys not in LoadOptions (output, report, quiet) are the CLI's own. */
export const BENCH_FLAGS: Readonly<Record<string, FlagSpec>> = {
  url: { key: 'url', kind: 'str', arg: 'URL', help: 'server base URL, e.g. http://127.0.0.1:8000 (required)' },
  model: { key: 'model', kind: 'str', arg: 'NAME', help: 'model name sent in every request (required)' },
  endpoint: { key: 'endpoint', kind: 'str', values: ['chat', 'completions'], help: '/v1/chat/completions (one user message) or /v1/completions (prompt text); default chat' },
  stream: { key: 'stream', kind: 'bool', help: 'stream answers (SSE); needed for TTFT and inter-token latency' },
  'api-key': { key: 'apiKey', kind: 'str', arg: 'KEY', help: 'sent as Authorization: Bearer KEY' },
  concurrency: { key: 'concurrency', kind: 'int', arg: 'N', help: 'closed loop: keep N requests in flight (default 1 unless --request-rate or a trace)' },
  'request-rate': { key: 'requestRate', kind: 'num', arg: 'R', help: 'open loop: Poisson arrivals at R requests/s (multi-turn: R new sessions/s)' },
  'num-requests': { key: 'numRequests', kind: 'int', arg: 'N', help: 'requests to send (default: the workload\'s size; 100 for synthetic)' },
  duration: { key: 'durationS', kind: 'seconds', arg: 'T', help: 'stop starting requests after T (seconds, or 90s, 5m, 1h)' },
  warmup: { key: 'warmup', kind: 'int', arg: 'N', help: 'send N synthetic requests first and leave them out of the results' },
  isl: { key: 'isl.mean', kind: 'int', arg: 'N', help: 'input tokens per prompt, mean (default 512)' },
  'isl-stddev': { key: 'isl.stddev', kind: 'num', arg: 'S', help: 'input tokens, standard deviation (default 0: exact)' },
  osl: { key: 'osl.mean', kind: 'int', arg: 'N', help: 'max_tokens per request, mean (default 128)' },
  'osl-stddev': { key: 'osl.stddev', kind: 'num', arg: 'S', help: 'max_tokens, standard deviation (default 0: exact)' },
  'ignore-eos': { key: 'ignoreEos', kind: 'bool', help: 'send ignore_eos: true (vLLM) so answers run to max_tokens' },
  seed: { key: 'seed', kind: 'int', arg: 'N', help: 'seed of every random choice (default 42)' },
  workload: { key: 'workload', kind: 'str', values: ['synthetic', 'shared-prefix', 'multi-turn', 'trace'], help: 'what to send (default synthetic; trace when --trace is given)' },
  'num-prefixes': { key: 'numPrefixes', kind: 'int', arg: 'P', help: 'shared-prefix: groups sharing a prefix (default 10)' },
  'prompts-per-prefix': { key: 'promptsPerPrefix', kind: 'int', arg: 'Q', help: 'shared-prefix: prompts per group (default 10)' },
  'prefix-ratio': { key: 'prefixRatio', kind: 'num', arg: 'F', help: 'shared-prefix: share of the ISL that is the group prefix (default 0.5)' },
  'num-sessions': { key: 'numSessions', kind: 'int', arg: 'N', help: 'multi-turn: sessions (default 10)' },
  turns: { key: 'turns', kind: 'int', arg: 'N', help: 'multi-turn: turns per session (default 5)' },
  'turn-delay-ms': { key: 'turnDelayMs', kind: 'num', arg: 'MS', help: 'multi-turn: think time between turns (default 0)' },
  trace: { key: 'trace', kind: 'str', arg: 'FILE', help: 'replay a Mooncake JSONL or Azure CSV trace' },
  'trace-format': { key: 'traceFormat', kind: 'str', values: ['auto', 'mooncake', 'azure'], help: 'trace format (default auto: by extension)' },
  'trace-speedup': { key: 'traceSpeedup', kind: 'num', arg: 'X', help: 'divide trace times by X (default 1)' },
  'trace-block-size': { key: 'traceBlockSize', kind: 'int', arg: 'N', help: 'tokens per trace hash id (default 512, Mooncake\'s)' },
  'trace-start': { key: 'traceStartS', kind: 'seconds', arg: 'T', help: 'skip the trace\'s first T seconds' },
  'priority-mix': { key: 'priorityMix', kind: 'str', arg: 'MIX', help: 'shares of high,medium,low requests, e.g. 0.2,0.3,0.5 or high=1,low=3; sends body priority (high 0, medium 1, low 2) and x-priority' },
  'slo-ttft-ms': { key: 'sloTtftMs', kind: 'num', arg: 'MS', help: 'goodput: TTFT bound' },
  'slo-tpot-ms': { key: 'sloTpotMs', kind: 'num', arg: 'MS', help: 'goodput: TPOT bound' },
  'slo-e2e-ms': { key: 'sloE2eMs', kind: 'num', arg: 'MS', help: 'goodput: end-to-end bound' },
  tokenizer: { key: 'tokenizerDir', kind: 'str', arg: 'DIR', help: 'Hugging Face tokenizer directory (default: the built-in tokenizer)' },
  'request-timeout': { key: 'requestTimeoutS', kind: 'seconds', arg: 'T', help: 'per-request idle timeout for headers and between chunks (default 600)' },
  'drain-timeout': { key: 'drainTimeoutS', kind: 'seconds', arg: 'T', help: 'after --duration, cancel requests still in flight after T (default 120)' },
  'max-connections': { key: 'maxConnections', kind: 'int', arg: 'N', help: 'HTTP connections (default: concurrency, or 4096 in open loop)' },
  metrics: { key: 'scrapeMetrics', kind: 'bool', help: 'scrape GET /metrics for per-worker counts (default on; --no-metrics)' },
  'lag-warn-ms': { key: 'lagWarnMs', kind: 'num', arg: 'MS', help: 'warn when dispatch lag exceeds MS (default 10)' },
  'extra-body': { key: 'extraBody', kind: 'json', arg: 'JSON', help: 'fields merged into every body, e.g. \'{"temperature":0}\'' },
  'extra-headers': { key: 'extraHeaders', kind: 'json', arg: 'JSON', help: 'headers sent with every request, e.g. \'{"x-portkey-config":"{...}"}\'' },
  output: { key: 'output', kind: 'str', arg: 'FILE', help: 'write results (summary and every request) as JSON' },
  report: { key: 'report', kind: 'str', arg: 'FILE', help: 'write a self-contained HTML report' },
  quiet: { key: 'quiet', kind: 'bool', help: 'no progress line' }
}

export interface BenchCli {
  load: LoadOptionsInput
  output: string | null
  report: string | null
  quiet: boolean
  help: boolean
}

/** The flag that sets an option key (for error messages from option validation). */
export function flagForOption (key: string): string {
  const root = key.split('.')[0]!
  for (const [flag, spec] of Object.entries(BENCH_FLAGS)) if (spec.key === key) return '--' + flag
  for (const [flag, spec] of Object.entries(BENCH_FLAGS)) if (spec.key.split('.')[0] === root) return '--' + flag
  return '--' + key
}

function parseSeconds (flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim())
  if (m === null) throw new BadFlagError(`--${flag} takes a time like 30, 30s, 5m or 1h, got '${v}'`)
  const n = Number(m[1])
  const unit = m[2] ?? 's'
  return unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n
}

/** `0.2,0.3,0.5` (high,medium,low) or `high=0.2,low=0.8`. */
export function parsePriorityMix (v: string): PriorityMix {
  const mix = { high: 0, medium: 0, low: 0 }
  const parts = v.split(',').map((p) => p.trim()).filter((p) => p !== '')
  const bad = (): never => { throw new BadFlagError(`--priority-mix takes shares of high,medium,low like 0.2,0.3,0.5 or high=1,low=3, got '${v}'`) }
  if (parts.length === 0) bad()
  if (parts.every((p) => p.includes('='))) {
    for (const p of parts) {
      const [name, share] = p.split('=') as [string, string]
      if (name !== 'high' && name !== 'medium' && name !== 'low') bad()
      const n = Number(share)
      if (!Number.isFinite(n) || n < 0) bad()
      mix[name as keyof typeof mix] = n
    }
  } else {
    if (parts.length > 3) bad()
    const names = ['high', 'medium', 'low'] as const
    parts.forEach((p, i) => {
      const n = Number(p)
      if (!Number.isFinite(n) || n < 0) bad()
      mix[names[i]!] = n
    })
  }
  if (mix.high + mix.medium + mix.low <= 0) bad()
  return mix
}

function convert (flag: string, spec: FlagSpec, raw: string): unknown {
  switch (spec.kind) {
    case 'int': {
      const n = Number(raw)
      if (raw.trim() === '' || !Number.isInteger(n)) throw new BadFlagError(`--${flag} takes an integer, got '${raw}'`)
      return n
    }
    case 'num': {
      const n = Number(raw)
      if (raw.trim() === '' || !Number.isFinite(n)) throw new BadFlagError(`--${flag} takes a number, got '${raw}'`)
      return n
    }
    case 'seconds': return parseSeconds(flag, raw)
    case 'json': {
      let v: unknown
      try { v = JSON.parse(raw) } catch { throw new BadFlagError(`--${flag} takes a JSON object, got '${raw}'`) }
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new BadFlagError(`--${flag} takes a JSON object, got '${raw}'`)
      return v
    }
    case 'str':
      if (spec.values !== undefined && !spec.values.includes(raw)) throw new BadFlagError(`--${flag} must be one of ${spec.values.join(', ')}, got '${raw}'`)
      if (flag === 'priority-mix') return parsePriorityMix(raw)
      return raw
    case 'bool': {
      if (raw === 'true' || raw === '1' || raw === 'yes') return true
      if (raw === 'false' || raw === '0' || raw === 'no') return false
      throw new BadFlagError(`--${flag} is a switch; as --${flag}=VALUE it takes true or false, got '${raw}'`)
    }
  }
}

/**
 * @example
 * parseBenchFlags(['--url', 'http://127.0.0.1:8000', '--model', 'm', '--concurrency=8', '--stream'])
 */
export function parseBenchFlags (argv: readonly string[]): BenchCli {
  const values: Record<string, unknown> = {}
  const isl: Partial<LengthSpec> = {}
  const osl: Partial<LengthSpec> = {}
  let help = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--help' || arg === '-h') {
      help = true
      continue
    }
    if (!arg.startsWith('--')) throw new BadFlagError(`unexpected argument '${arg}' (flags start with --; see switchyard bench --help)`)
    let name = arg.slice(2)
    let inline: string | null = null
    const eq = name.indexOf('=')
    if (eq >= 0) {
      inline = name.slice(eq + 1)
      name = name.slice(0, eq)
    }
    let spec = BENCH_FLAGS[name]
    let raw: string
    if (spec === undefined && name.startsWith('no-') && BENCH_FLAGS[name.slice(3)]?.kind === 'bool' && inline === null) {
      name = name.slice(3)
      spec = BENCH_FLAGS[name]!
      raw = 'false'
    } else if (spec === undefined) {
      throw new BadFlagError(`unknown flag --${name} (see switchyard bench --help)`)
    } else if (inline !== null) {
      raw = inline
    } else if (spec.kind === 'bool') {
      raw = 'true'
    } else {
      const next = argv[++i]
      if (next === undefined) throw new BadFlagError(`--${name} needs a value (${spec.arg ?? spec.values?.join('|') ?? 'VALUE'})`)
      raw = next
    }
    const v = convert(name, spec, raw)
    if (spec.key.startsWith('isl.')) (isl as Record<string, unknown>)[spec.key.slice(4)] = v
    else if (spec.key.startsWith('osl.')) (osl as Record<string, unknown>)[spec.key.slice(4)] = v
    else values[spec.key] = v
  }
  const output = (values.output as string | undefined) ?? null
  const report = (values.report as string | undefined) ?? null
  const quiet = values.quiet === true
  delete values.output
  delete values.report
  delete values.quiet
  if (help) return { load: { url: '', model: '' }, output, report, quiet, help }
  if (values.url === undefined) throw new BadFlagError('--url is required (the server, e.g. http://127.0.0.1:8000)')
  if (values.model === undefined) throw new BadFlagError('--model is required')
  if (values.trace !== undefined && values.workload === undefined) values.workload = 'trace'
  const load = values as LoadOptionsInput
  if (Object.keys(isl).length > 0) load.isl = isl
  if (Object.keys(osl).length > 0) load.osl = osl
  return { load, output, report, quiet, help }
}

export function benchHelp (): string {
  const lines = [
    'Usage: switchyard bench --url URL --model NAME [flags]',
    '',
    'Load generator for OpenAI-compatible servers (the gateway, vLLM, SGLang, the mock engine).',
    'Prompts are built from token ids through the server\'s tokenizer, so their lengths are exact.',
    '',
    'Flags:'
  ]
  for (const [flag, spec] of Object.entries(BENCH_FLAGS)) {
    const arg = spec.kind === 'bool' ? '' : ' ' + (spec.arg ?? spec.values?.join('|') ?? 'VALUE')
    lines.push(`  --${flag}${arg}`.padEnd(34) + spec.help)
  }
  lines.push('', 'Exit codes: 0 done, 1 every request failed or the run failed, 2 bad flags.')
  return lines.join('\n')
}
