/**
 * Error classes with stable codes, shared by every capability.
 *
 * Each error carries the HTTP status and the OpenAI error `type`/`code`/`param` it maps to, so the
 * frontend turns any of them into `{"error":{message,type,param,code}}` without a lookup table.
 * Codes are documented in docs/errors.md; test/shared/errors.test.ts checks that the two agree.
 */

export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable_error'
  | 'timeout_error'

export interface SwitchyardErrorOptions {
  status: number
  type: OpenAIErrorType
  /** The OpenAI `code` field: a short snake_case reason clients can switch on. */
  apiCode: string
  param?: string | null
  cause?: unknown
  /** Seconds, for 429/503 answers. */
  retryAfter?: number | null
}

export class SwitchyardError extends Error {
  /** Stable internal code, `SWY_ERR_*`. */
  readonly code: string
  readonly status: number
  readonly type: OpenAIErrorType
  readonly apiCode: string
  readonly param: string | null
  readonly retryAfter: number | null

  constructor (code: string, message: string, opts: SwitchyardErrorOptions) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'SwitchyardError'
    this.code = code
    this.status = opts.status
    this.type = opts.type
    this.apiCode = opts.apiCode
    this.param = opts.param ?? null
    this.retryAfter = opts.retryAfter ?? null
  }

  toJSON (): { error: { message: string, type: string, param: string | null, code: string } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.apiCode } }
  }
}

/** Every code this package raises, with a one-line meaning (kept in step with docs/errors.md). */
export const ERROR_CODES = {
  SWY_ERR_INVALID_JSON: 'the request body is not valid JSON',
  SWY_ERR_INVALID_BODY: 'a field the gateway relies on is missing or has the wrong type',
  SWY_ERR_BODY_TOO_LARGE: 'the request body exceeds the body size limit',
  SWY_ERR_UNAUTHORIZED: 'missing or wrong API key or admin key',
  SWY_ERR_NOT_FOUND: 'no such route',
  SWY_ERR_METHOD_NOT_ALLOWED: 'the route exists but not for this method',
  SWY_ERR_MODEL_NOT_FOUND: 'no registered worker serves the requested model',
  SWY_ERR_MODEL_REQUIRED: 'the request names no model and the gateway serves more than one',
  SWY_ERR_NO_HEALTHY_WORKER: 'the model is registered but no healthy worker can take the request',
  SWY_ERR_UPSTREAM_TIMEOUT: 'the worker did not connect, answer or continue within its deadline',
  SWY_ERR_UPSTREAM_UNAVAILABLE: 'the worker could not be reached or failed before answering, after retries',
  SWY_ERR_UPSTREAM_STREAM: 'the worker failed after the response had started',
  SWY_ERR_SHUTTING_DOWN: 'the gateway is shutting down',
  SWY_ERR_ENGINE_OVERLOADED: 'the mock engine has max_waiting requests waiting already (429; the gateway requeues such pushback)',
  SWY_ERR_QUEUE_FULL: 'no worker had room and the model\'s queue is at its request or token cap (429, with Retry-After)',
  SWY_ERR_QUEUE_TIMEOUT: 'the request waited in the queue longer than queue_timeout (503, with Retry-After)',
  SWY_ERR_REQUEST_TOO_LARGE: 'prompt plus max_tokens exceed every worker\'s token window (400 context_length_exceeded)',
  SWY_ERR_WORKER_EXISTS: 'a worker with this id or URL is already registered',
  SWY_ERR_WORKER_NOT_FOUND: 'no worker with this id',
  SWY_ERR_INTERNAL: 'an unexpected error inside the gateway (a bug: please report it)',
  SWY_ERR_BAD_CONFIG: 'a setting from flags, the config file or the environment is invalid',
  SWY_ERR_BAD_FLAG: 'a command-line flag is unknown or malformed',
  SWY_ERR_NATIVE_CONNECTION: 'the native-transport connection to a worker failed, closed, or the worker is tombstoned after a failure; its open streams fail with this (retryable)',
  SWY_ERR_NATIVE_TIMEOUT: 'a native stream passed its connect, accept, first-item, idle or request deadline',
  SWY_ERR_NATIVE_PROTOCOL: 'a native-transport peer sent a corrupt frame, an unexpected kind or an unsupported version; the connection is closed',
  SWY_ERR_NATIVE_FRAME_TOO_LARGE: 'a native frame exceeds the receiver\'s frame size limit (a request too large for the worker fails alone; a received oversized frame closes the connection)',
  SWY_ERR_NATIVE_WORKER: 'the worker refused or failed a native stream (its own code, status and message are kept)',
  SWY_ERR_NATIVE_CANCELLED: 'the native stream was cancelled by its caller (or its handler threw)',
  SWY_ERR_NATS_UNAVAILABLE: 'distributed mode: no NATS server answered at start (later drops reconnect by themselves)',
  SWY_ERR_KV_EVENT_DECODE: 'a KV event batch from an engine is not msgpack of the vLLM event shape (counted by the source, never sent to a client)',
  SWY_ERR_BENCH_BAD_OPTION: 'a load generator option (runLoad) is invalid',
  SWY_ERR_BENCH_TRACE: 'a trace file is unreadable or malformed (the message names file:line)'
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export function invalidBody (message: string, param: string | null = null): SwitchyardError {
  return new SwitchyardError('SWY_ERR_INVALID_BODY', message, { status: 400, type: 'invalid_request_error', apiCode: 'invalid_value', param })
}

export function notFound (message: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_NOT_FOUND', message, { status: 404, type: 'not_found_error', apiCode: 'not_found' })
}

export function unauthorized (message: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_UNAUTHORIZED', message, { status: 401, type: 'authentication_error', apiCode: 'invalid_api_key' })
}

/** Configuration problems found at start; the CLI prints the message and exits with code 2. */
export class ConfigError extends SwitchyardError {
  constructor (message: string) {
    super('SWY_ERR_BAD_CONFIG', message, { status: 400, type: 'invalid_request_error', apiCode: 'bad_config' })
    this.name = 'ConfigError'
  }
}

export class MethodNotAllowedError extends SwitchyardError {
  readonly allow: string
  constructor (method: string, path: string, allow: readonly string[]) {
    super('SWY_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; allowed: ${allow.join(', ')}`, { status: 405, type: 'invalid_request_error', apiCode: 'method_not_allowed' })
    this.name = 'MethodNotAllowedError'
    this.allow = allow.join(', ')
  }
}
