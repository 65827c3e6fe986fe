import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { ConfigError } from '../shared/errors.js'
import { resolveSettings, type Sources } from './resolve.js'
import { flagName, POLICY_NAMES, SERVE_SETTINGS, type PolicyName, type ServeSettings } from './settings.js'

/** A worker as configured (flag, file, env or POST /workers), before model discovery. */
export interface WorkerSpec {
  /** Explicit id, or null to derive one from the URL. */
  id: string | null
  url: string
  /** Model served; null means discover it from the worker's GET /v1/models. */
  model: string | null
  labels: Record<string, string>
  /** Bearer key the worker itself expects, if any. */
  api_key: string | null
  /** The engine's ZMQ KV event endpoint (vLLM's --kv-events-config endpoint), e.g. tcp://host:5557. */
  kv_events: string | null
  /** The engine's replay endpoint, e.g. tcp://host:5558. */
  kv_replay: string | null
  /** The engine's KV block size in tokens (vLLM's default is 16, the mock engine's 64). */
  block_size: number | null
  /**
   * swy://host:port: requests go over the native transport (src/transport/native) while health
   * probes and model discovery stay on `url`'s HTTP. Null: HTTP only.
   */
  native_url: string | null
  /**
   * 'native': requests go over the native transport, at `native_url` or, without one, at the
   * swy:// address the worker advertises in GET /v1/models (the mock engine does); 'http': HTTP
   * even when a native address is known. Absent/null: native when a native address is given.
   */
  transport?: 'http' | 'native' | null
  /** This worker's dispatch window; null: the global flags, else what the worker reports. */
  max_inflight_requests: number | null
  max_inflight_tokens: number | null
}

export interface ModelSpec {
  policy: PolicyName | null
  /** A Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json); null: built-in. */
  tokenizer: string | null
  block_size: number | null
  /** KV cache blocks per worker of the model (the kv policy turns active blocks into KV usage); null: what the workers report. */
  kv_capacity_blocks: number | null
}

export interface ServeConfig extends ServeSettings {
  workers: WorkerSpec[]
  models: Record<string, ModelSpec>
  config_file: string | null
}

const WORKER_KEYS = ['id', 'url', 'model', 'labels', 'api_key', 'kv_events', 'kv_replay', 'block_size', 'max_inflight_requests', 'max_inflight_tokens', 'native_url', 'transport'] as const
const MODEL_KEYS = ['policy', 'tokenizer', 'block_size', 'kv_capacity_blocks'] as const
const FILE_KEYS = [...Object.keys(SERVE_SETTINGS), 'workers', 'models'] as const

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Validates one worker entry (from the config file or POST /workers). Returns the spec, or pushes
 * messages prefixed with `where` and returns null.
 */
export function parseWorkerSpec (raw: unknown, where: string, errors: string[]): WorkerSpec | null {
  if (typeof raw === 'string') return parseWorkerFlag(raw, where, errors)
  if (!isRecord(raw)) {
    errors.push(`${where} must be an object with a 'url' (and optionally ${WORKER_KEYS.filter(k => k !== 'url').join(', ')})`)
    return null
  }
  const before = errors.length
  for (const k of Object.keys(raw)) {
    if (!(WORKER_KEYS as readonly string[]).includes(k)) errors.push(`${where} has unknown key '${k}' (accepted: ${WORKER_KEYS.join(', ')})`)
  }
  const url = checkUrl(raw.url, `${where}.url`, errors)
  const model = optionalString(raw.model, `${where}.model`, errors)
  const id = optionalString(raw.id, `${where}.id`, errors)
  const apiKey = optionalString(raw.api_key, `${where}.api_key`, errors)
  // It goes into the upstream head as is: visible ASCII only (no spaces, no line breaks).
  if (apiKey !== null && !/^[\x21-\x7e]+$/.test(apiKey)) errors.push(`${where}.api_key must be visible ASCII characters (no spaces or line breaks)`)
  const kvEvents = optionalZmq(raw.kv_events, `${where}.kv_events`, errors)
  const kvReplay = optionalZmq(raw.kv_replay, `${where}.kv_replay`, errors)
  const blockSize = optionalBlockSize(raw.block_size, `${where}.block_size`, errors)
  const maxRequests = optionalPositiveInt(raw.max_inflight_requests, `${where}.max_inflight_requests`, errors)
  const maxTokens = optionalPositiveInt(raw.max_inflight_tokens, `${where}.max_inflight_tokens`, errors)
  const nativeUrl = optionalString(raw.native_url, `${where}.native_url`, errors)
  if (nativeUrl !== null && !/^swy:\/\/[^/:]+:\d+\/?$/.test(nativeUrl)) errors.push(`${where}.native_url must be swy://host:port (got ${JSON.stringify(nativeUrl)})`)
  const labels: Record<string, string> = {}
  if (raw.labels !== undefined && raw.labels !== null) {
    if (!isRecord(raw.labels)) errors.push(`${where}.labels must be a map of strings`)
    else {
      for (const [k, v] of Object.entries(raw.labels)) {
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') labels[k] = String(v)
        else errors.push(`${where}.labels.${k} must be a string`)
      }
    }
  }
  let transport: 'http' | 'native' | null = null
  if (raw.transport !== undefined && raw.transport !== null) {
    if (raw.transport !== 'http' && raw.transport !== 'native') errors.push(`${where}.transport must be 'http' or 'native' (got ${JSON.stringify(raw.transport)})`)
    else transport = raw.transport
  }
  if (transport === 'http' && (nativeUrl !== null || (url !== null && url.startsWith('swy://')))) errors.push(`${where}: transport 'http' contradicts the swy:// address given; drop one`)
  if (url !== null && url.startsWith('swy://') && model === null) errors.push(`${where}: a swy:// worker has no HTTP to discover its models from: give 'model'`)
  if (errors.length > before || url === null) return null
  return { id, url, model, labels, api_key: apiKey, kv_events: kvEvents, kv_replay: kvReplay, block_size: blockSize, max_inflight_requests: maxRequests, max_inflight_tokens: maxTokens, native_url: nativeUrl, transport }
}

/** `URL` or `MODEL=URL`, as in `--worker`. */
export function parseWorkerFlag (raw: string, where: string, errors: string[]): WorkerSpec | null {
  const eq = raw.indexOf('=')
  // A '=' inside the URL's query is not a model separator: only split when the left side has no '/'.
  const hasModel = eq > 0 && !raw.slice(0, eq).includes('/')
  const model = hasModel ? raw.slice(0, eq) : null
  const url = checkUrl(hasModel ? raw.slice(eq + 1) : raw, where, errors)
  if (url === null) return null
  if (url.startsWith('swy://') && model === null) { errors.push(`${where}: a swy:// worker has no HTTP to discover its models from: use MODEL=swy://host:port`); return null }
  return { id: null, url, model, labels: {}, api_key: null, kv_events: null, kv_replay: null, block_size: null, max_inflight_requests: null, max_inflight_tokens: null, native_url: null }
}

function checkUrl (raw: unknown, where: string, errors: string[]): string | null {
  if (typeof raw !== 'string' || raw === '') {
    errors.push(`${where} must be a URL such as http://127.0.0.1:8000`)
    return null
  }
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    errors.push(`${where} is not a valid URL: ${JSON.stringify(raw)} (expected e.g. http://127.0.0.1:8000)`)
    return null
  }
  if (u.protocol === 'swy:') {
    // A native-transport-only worker: swy://host:port (no HTTP; probed by TCP connect).
    if (u.port === '') { errors.push(`${where} needs a port: swy://host:port`); return null }
    return `swy://${u.host}`
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    errors.push(`${where} must use http://, https:// or swy:// (got ${u.protocol})`)
    return null
  }
  // Keep a base path (e.g. behind a reverse proxy) but no trailing slash, so paths join cleanly.
  return u.origin + u.pathname.replace(/\/+$/, '')
}

function optionalZmq (raw: unknown, where: string, errors: string[]): string | null {
  const s = optionalString(raw, where, errors)
  if (s !== null && !/^(tcp|ipc|inproc):\/\/.+/.test(s)) {
    errors.push(`${where} must be a ZMQ endpoint such as tcp://10.0.0.5:5557 (got ${JSON.stringify(s)})`)
    return null
  }
  return s
}

function optionalBlockSize (raw: unknown, where: string, errors: string[]): number | null {
  if (raw === undefined || raw === null) return null
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > 65536) {
    errors.push(`${where} must be an integer from 1 to 65536`)
    return null
  }
  return raw
}

function optionalString (raw: unknown, where: string, errors: string[]): string | null {
  if (raw === undefined || raw === null) return null
  if (typeof raw !== 'string' || raw === '') {
    errors.push(`${where} must be a non-empty string`)
    return null
  }
  return raw
}

function readConfigFile (path: string, errors: string[]): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    errors.push(`--config: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    return {}
  }
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    errors.push(`${path}: invalid YAML: ${(err as Error).message.split('\n')[0]}`)
    return {}
  }
  if (doc === null || doc === undefined) return {}
  if (!isRecord(doc)) {
    errors.push(`${path}: the top level must be a map of settings`)
    return {}
  }
  for (const k of Object.keys(doc)) {
    if (!(FILE_KEYS as readonly string[]).includes(k)) errors.push(`${path}: unknown key '${k}' (accepted: ${FILE_KEYS.join(', ')})`)
  }
  return doc
}

export interface ParsedServeArgs {
  config: ServeConfig
  help: boolean
}

/**
 * Loads `serve`'s configuration from argv, the environment and the YAML file named by --config
 * (or SWITCHYARD_CONFIG), validated together. Throws one ConfigError listing every problem.
 */
export function loadServeConfig (argv: string[], env: Record<string, string | undefined> = process.env): ParsedServeArgs {
  const options: Record<string, { type: 'string' | 'boolean', multiple?: boolean, short?: string }> = {
    config: { type: 'string', short: 'c' },
    worker: { type: 'string', multiple: true, short: 'w' },
    tokenizer: { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' }
  }
  for (const key of Object.keys(SERVE_SETTINGS)) options[flagName(key)] = { type: 'string' }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false })
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\nRun 'switchyard serve --help' for the list of flags.`)
  }
  const flags = parsed.values as Record<string, unknown>
  const errors: string[] = []
  const configPath = (flags.config as string | undefined) ?? env.SWITCHYARD_CONFIG ?? null
  const file = configPath === null ? {} : readConfigFile(configPath, errors)
  const src: Sources = { flags, env, file, fileName: configPath }
  const settings = resolveSettings(SERVE_SETTINGS, src, errors)

  const workers: WorkerSpec[] = []
  if (file.workers !== undefined && file.workers !== null) {
    if (!Array.isArray(file.workers)) errors.push(`'workers' in ${configPath} must be a list`)
    else file.workers.forEach((w, i) => { const s = parseWorkerSpec(w, `workers[${i}] in ${configPath}`, errors); if (s) workers.push(s) })
  }
  for (const raw of env.SWITCHYARD_WORKERS?.split(',').map(s => s.trim()).filter(Boolean) ?? []) {
    const s = parseWorkerFlag(raw, 'SWITCHYARD_WORKERS', errors)
    if (s) workers.push(s)
  }
  for (const raw of (flags.worker as string[] | undefined) ?? []) {
    const s = parseWorkerFlag(raw, '--worker', errors)
    if (s) workers.push(s)
  }

  const models: Record<string, ModelSpec> = {}
  if (file.models !== undefined && file.models !== null) {
    if (!isRecord(file.models)) errors.push(`'models' in ${configPath} must be a map of model name to settings`)
    else {
      for (const [name, m] of Object.entries(file.models)) {
        const where = `models.${name} in ${configPath}`
        if (m === null) { models[name] = { policy: null, tokenizer: null, block_size: null, kv_capacity_blocks: null }; continue }
        if (!isRecord(m)) { errors.push(`${where} must be a map`); continue }
        for (const k of Object.keys(m)) if (!(MODEL_KEYS as readonly string[]).includes(k)) errors.push(`${where} has unknown key '${k}' (accepted: ${MODEL_KEYS.join(', ')})`)
        let policy: PolicyName | null = null
        if (m.policy !== undefined) {
          if (typeof m.policy === 'string' && (POLICY_NAMES as readonly string[]).includes(m.policy)) policy = m.policy as PolicyName
          else errors.push(`${where}.policy must be one of ${POLICY_NAMES.join(', ')} (got ${JSON.stringify(m.policy)})`)
        }
        models[name] = { policy, tokenizer: optionalString(m.tokenizer, `${where}.tokenizer`, errors), block_size: optionalBlockSize(m.block_size, `${where}.block_size`, errors), kv_capacity_blocks: optionalPositiveInt(m.kv_capacity_blocks, `${where}.kv_capacity_blocks`, errors) }
      }
    }
  }

  // --tokenizer MODEL=DIR (repeatable) and SWITCHYARD_TOKENIZERS=MODEL=DIR,...: the flag wins over the file.
  const tokenizerFlags = [
    ...(env.SWITCHYARD_TOKENIZERS?.split(',').map(s => s.trim()).filter(Boolean).map(v => ['SWITCHYARD_TOKENIZERS', v] as const) ?? []),
    ...((flags.tokenizer as string[] | undefined) ?? []).map(v => ['--tokenizer', v] as const)
  ]
  for (const [where, raw] of tokenizerFlags) {
    const eq = raw.indexOf('=')
    if (eq <= 0 || eq === raw.length - 1) { errors.push(`${where} takes MODEL=DIR (a Hugging Face tokenizer directory), got '${raw}'`); continue }
    const name = raw.slice(0, eq)
    models[name] = { ...(models[name] ?? { policy: null, tokenizer: null, block_size: null, kv_capacity_blocks: null }), tokenizer: raw.slice(eq + 1) }
  }
  parseQueueWeights(settings.queue_weights, errors)
  if (errors.length > 0) throw new ConfigError(`invalid configuration:\n  - ${errors.join('\n  - ')}`)
  return { config: { ...settings, workers, models, config_file: configPath }, help: flags.help === true }
}

/** `queue_weights` as `H:M:L` positive numbers, e.g. 4:2:1. */
export function parseQueueWeights (raw: string, errors: string[] = []): [number, number, number] {
  const parts = raw.split(':').map(Number)
  if (parts.length !== 3 || parts.some(n => !Number.isFinite(n) || n <= 0)) {
    errors.push(`queue_weights must be three positive numbers high:medium:low such as 4:2:1 (got '${raw}')`)
    return [4, 2, 1]
  }
  return parts as [number, number, number]
}

function optionalPositiveInt (raw: unknown, where: string, errors: string[]): number | null {
  if (raw === undefined || raw === null) return null
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1) {
    errors.push(`${where} must be a positive integer (got ${JSON.stringify(raw)})`)
    return null
  }
  return raw
}
