/**
 * The settings table: one entry per scalar setting of `switchyard serve`.
 *
 * The YAML key is the entry's name, the flag is the name in kebab case (`first_byte_timeout` ->
 * `--first-byte-timeout`) and the environment variable is `SWITCHYARD_` + the name in upper case.
 * docs/configuration.md is generated from this table (`node dist/src/config/doc.js`), and a test
 * checks that the README's reference matches it.
 */

export const POLICY_NAMES = ['round_robin', 'random', 'power_of_two', 'least_load', 'cache_aware', 'kv', 'kv_approx'] as const
export type PolicyName = typeof POLICY_NAMES[number]

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

const DAY_MS = 86_400_000

export type SettingSpec =
  | { kind: 'string', default: string, doc: string }
  | { kind: 'secret', default: null, doc: string }
  | { kind: 'int', default: number, min: number, max: number, doc: string }
  | { kind: 'number', default: number, min: number, max: number, doc: string }
  | { kind: 'duration', default: number, min: number, max: number, doc: string }
  | { kind: 'bytes', default: number, min: number, max: number, doc: string }
  | { kind: 'bool', default: boolean, doc: string }
  | { kind: 'enum', default: string, values: readonly string[], doc: string }

export const SERVE_SETTINGS = {
  host: { kind: 'string', default: '127.0.0.1', doc: 'address to listen on' },
  port: { kind: 'int', default: 8080, min: 0, max: 65535, doc: 'port to listen on (0 picks a free one)' },
  policy: { kind: 'enum', default: 'round_robin', values: POLICY_NAMES, doc: 'default routing policy; per model in the config file under `models`' },
  api_key: { kind: 'secret', default: null, doc: 'when set, clients must send `Authorization: Bearer <key>` to /v1/*' },
  admin_key: { kind: 'secret', default: null, doc: 'when set, /workers requires `Authorization: Bearer <key>`' },
  log_level: { kind: 'enum', default: 'info', values: LOG_LEVELS, doc: 'pino log level' },
  max_body_size: { kind: 'bytes', default: 32 * 1024 * 1024, min: 1024, max: 1024 ** 3, doc: 'largest request body accepted (413 beyond)' },
  connect_timeout: { kind: 'duration', default: 5_000, min: 1, max: DAY_MS, doc: 'deadline to open a connection to a worker' },
  first_byte_timeout: { kind: 'duration', default: 300_000, min: 1, max: DAY_MS, doc: 'deadline for a worker\'s response headers (non-streaming requests wait for the whole completion)' },
  idle_timeout: { kind: 'duration', default: 60_000, min: 1, max: DAY_MS, doc: 'deadline between two chunks of a worker\'s response body' },
  retry_attempts: { kind: 'int', default: 3, min: 1, max: 20, doc: 'attempts per request (first try included) when a worker fails before the first byte' },
  retry_backoff: { kind: 'duration', default: 25, min: 0, max: 60_000, doc: 'base of the exponential backoff between attempts (full jitter)' },
  retry_backoff_max: { kind: 'duration', default: 1_000, min: 0, max: 600_000, doc: 'cap of the backoff between attempts' },
  health_interval: { kind: 'duration', default: 5_000, min: 10, max: DAY_MS, doc: 'time between active health probes of each worker (GET /health)' },
  health_timeout: { kind: 'duration', default: 2_000, min: 1, max: 600_000, doc: 'deadline of one health probe' },
  health_failure_threshold: { kind: 'int', default: 3, min: 1, max: 1000, doc: 'consecutive failed probes that mark a worker unhealthy' },
  health_success_threshold: { kind: 'int', default: 2, min: 1, max: 1000, doc: 'consecutive good probes that bring an unhealthy worker back' },
  discovery_timeout: { kind: 'duration', default: 5_000, min: 1, max: 600_000, doc: 'deadline of one GET /v1/models when a worker registers' },
  discovery_retries: { kind: 'int', default: 3, min: 1, max: 100, doc: 'attempts at model discovery at registration; then it goes on at each health probe' },
  upstream_connections: { kind: 'int', default: 1024, min: 1, max: 65536, doc: 'most keep-alive connections to one worker' },
  mock_workers: { kind: 'int', default: 4, min: 0, max: 256, doc: 'with no worker configured, how many mock engines to start in-process (0: none, and serve refuses to start without workers)' },
  mock_model: { kind: 'string', default: 'mock-llm', doc: 'model name the embedded mock engines serve' },
  mock_speedup: { kind: 'number', default: 1, min: 0, max: 1_000_000, doc: 'speed-up of the embedded mock engines\' timing model (1: as fast as a real engine, about 170 tokens/s per stream; 0: no simulated time)' },
  shutdown_grace: { kind: 'duration', default: 30_000, min: 0, max: DAY_MS, doc: 'on SIGTERM/SIGINT, how long in-flight requests may finish before they are aborted' }
} as const satisfies Record<string, SettingSpec>

type ValueOf<S extends SettingSpec> =
  S extends { kind: 'string' } ? string
    : S extends { kind: 'secret' } ? string | null
      : S extends { kind: 'bool' } ? boolean
        : S extends { kind: 'enum', values: readonly (infer V)[] } ? V
          : number

export type SettingValues<T extends Record<string, SettingSpec>> = { -readonly [K in keyof T]: ValueOf<T[K]> }
export type ServeSettings = SettingValues<typeof SERVE_SETTINGS>

export function flagName (key: string): string {
  return key.replaceAll('_', '-')
}

export function envName (key: string): string {
  return 'SWITCHYARD_' + key.toUpperCase()
}
