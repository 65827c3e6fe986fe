/**
 * The settings table: one entry per scalar setting of `switchyard serve`.
 *
 * The YAML key is the entry's name, the flag is the name in kebab case (`first_byte_timeout` ->
 * `--first-byte-timeout`) and the environment variable is `SWITCHYARD_` + the name in upper case.
 * docs/configuration.md is generated from this table (`node dist/src/config/doc.js`), and a test
 * checks that the README's reference matches it.
 */

export const POLICY_NAMES = ['round_robin', 'random', 'power_of_two', 'least_load', 'cache_aware', 'kv', 'kv_dynamo', 'kv_approx'] as const
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
  session_affinity: { kind: 'bool', default: true, doc: 'soft session affinity: a request with an `x-session-id` header goes to the worker that served the session last, unless it is gone or overloaded (every policy)' },
  api_key: { kind: 'secret', default: null, doc: 'when set, clients must send `Authorization: Bearer <key>` to /v1/*' },
  admin_key: { kind: 'secret', default: null, doc: 'when set, /workers requires `Authorization: Bearer <key>`' },
  log_level: { kind: 'enum', default: 'info', values: LOG_LEVELS, doc: 'pino log level' },
  max_body_size: { kind: 'bytes', default: 32 * 1024 * 1024, min: 1024, max: 1024 ** 3, doc: 'largest request body accepted (413 beyond)' },
  keep_alive_timeout: { kind: 'duration', default: 65_000, min: 1_000, max: DAY_MS, doc: 'an idle client connection (keep-alive, between requests) is closed after this long; clients are told in Keep-Alive: timeout=' },
  headers_timeout: { kind: 'duration', default: 60_000, min: 1_000, max: DAY_MS, doc: 'a client must send a request\'s head, and a body it started, within this long' },
  max_client_backlog: { kind: 'bytes', default: 4 * 1024 * 1024, min: 1024, max: 1024 ** 3, doc: 'a streaming client that falls this far behind (bytes queued for it in the gateway) is cut and its request cancelled at the worker: engines cannot pause one sequence, so the alternative is unbounded memory (native transport; HTTP upstreams pause instead)' },
  connect_timeout: { kind: 'duration', default: 5_000, min: 1, max: DAY_MS, doc: 'deadline to open a connection to a worker' },
  first_byte_timeout: { kind: 'duration', default: 300_000, min: 1, max: DAY_MS, doc: 'deadline for a worker\'s response headers (non-streaming requests wait for the whole completion)' },
  idle_timeout: { kind: 'duration', default: 60_000, min: 1, max: DAY_MS, doc: 'deadline between two chunks of a worker\'s response body' },
  request_timeout: { kind: 'duration', default: 0, min: 0, max: DAY_MS, doc: 'a request\'s whole budget from its arrival (0: none; first_byte_timeout and idle_timeout still apply). Past it: 504 before the first byte, an SSE error event after. Over the native transport the budget rides in the request and the worker stops generating when it passes; over HTTP the upstream request is aborted' },
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
  mock_transport: { kind: 'enum', default: 'native', values: ['native', 'http'], doc: 'how the gateway talks to the embedded mock engines: the native multiplexed transport (swy://) or HTTP/SSE' },
  native_connections: { kind: 'int', default: 2, min: 1, max: 1024, doc: 'connections kept to each native-transport worker (each multiplexes many streams)' },
  mock_speedup: { kind: 'number', default: 1, min: 0, max: 1_000_000, doc: 'speed-up of the embedded mock engines\' timing model (1: as fast as a real engine, about 170 tokens/s per stream; 0: no simulated time)' },
  shutdown_grace: { kind: 'duration', default: 30_000, min: 0, max: DAY_MS, doc: 'on SIGTERM/SIGINT, how long in-flight requests may finish before they are aborted' },
  nats: { kind: 'secret', default: null, doc: 'distributed mode: NATS server URL(s), comma-separated (may carry credentials); workers come from the discovery bucket and KV events from the event plane (docs/distributed.md)' },
  nats_creds: { kind: 'string', default: '', doc: 'distributed mode: a NATS .creds file (JWT + NKey seed, as nsc writes it); empty: none (user and password may also ride in the `nats` URL)' },
  nats_tls_ca: { kind: 'string', default: '', doc: 'distributed mode: connect to NATS over TLS, verifying the server with this CA file (`system` for the system CAs); empty: plain TCP unless `nats_tls_cert` is set' },
  nats_tls_cert: { kind: 'string', default: '', doc: 'distributed mode: client certificate for NATS servers that verify clients (mTLS), with `nats_tls_key`; implies TLS (server verified with `nats_tls_ca`, else the system CAs)' },
  nats_tls_key: { kind: 'string', default: '', doc: 'distributed mode: the private key of `nats_tls_cert`' },
  replica_sync: { kind: 'bool', default: true, doc: 'distributed mode: publish this gateway\'s in-flight load per worker on NATS and apply the other gateways\', so policies and windows see the whole fleet\'s load' },
  nats_namespace: { kind: 'string', default: 'default', doc: 'distributed mode: the event plane\'s namespace (subjects `switchyard.<namespace>.<topic>.<worker>`); gateways and workers of one fleet share it' },
  max_inflight_requests: { kind: 'int', default: 0, min: 0, max: 1 << 24, doc: 'dispatch window: most requests in flight on one worker (0: what the worker reports, such as the mock engine\'s max_num_seqs, else unlimited); per worker as `max_inflight_requests` in the config file\'s `workers` entries' },
  max_inflight_tokens: { kind: 'int', default: 0, min: 0, max: 2 ** 40, doc: 'dispatch window: most tokens (prompt + expected output) in flight on one worker (0: what the worker reports, such as the mock engine\'s KV cache, else unlimited); per worker as `max_inflight_tokens`' },
  expected_output_tokens: { kind: 'int', default: 256, min: 1, max: 1 << 24, doc: 'output tokens a request without `max_tokens` is assumed to produce, for windows and queue caps' },
  queue_policy: { kind: 'enum', default: 'wdrr', values: ['wdrr', 'strict', 'fifo'], doc: 'order in which waiting requests get freed windows: weighted deficit round robin over priority classes, strict priority, or one FIFO' },
  queue_weights: { kind: 'string', default: '4:2:1', doc: 'wdrr credit weights of the high:medium:low classes' },
  queue_quantum: { kind: 'int', default: 4096, min: 1, max: 1 << 30, doc: 'tokens of credit a weight of 1 earns per wdrr visit' },
  queue_max_requests: { kind: 'int', default: 4096, min: 0, max: 1 << 24, doc: 'most requests waiting per model; beyond it 429 queue_full with Retry-After (0: no queue, 429 as soon as no window has room)' },
  queue_max_tokens: { kind: 'int', default: 16 * 1024 * 1024, min: 0, max: 2 ** 40, doc: 'most tokens (prompt + expected output) waiting per model; beyond it 429 queue_full' },
  queue_timeout: { kind: 'duration', default: 60_000, min: 1, max: DAY_MS, doc: 'a request waiting longer for a window answers 503 queue_timeout with Retry-After' },
  aging_medium: { kind: 'duration', default: 10_000, min: 0, max: DAY_MS, doc: 'a medium-priority request waiting longer moves to the high class (0: never)' },
  aging_low: { kind: 'duration', default: 30_000, min: 0, max: DAY_MS, doc: 'a low-priority request waiting longer moves to the high class (0: never)' },
  priority_high_below: { kind: 'int', default: 0, min: -(2 ** 31), max: 2 ** 31, doc: 'a body `priority` (vLLM\'s: lower is more urgent) below this is high priority; the `x-priority: high|medium|low` header overrides the body' },
  priority_low_above: { kind: 'int', default: 0, min: -(2 ** 31), max: 2 ** 31, doc: 'a body `priority` above this is low priority' },
  max_requeues: { kind: 'int', default: 3, min: 0, max: 100, doc: 'times a request goes back to the queue when a worker pushes back (429/503 before any byte) before the client gets that answer' },
  sse_keepalive_ms: { kind: 'duration', default: 0, min: 0, max: DAY_MS, doc: 'a streaming request waiting in the queue this long gets its headers and an SSE comment every as often, so proxies do not time it out (0: off)' }
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
