/**
 * Errors of the native transport. Every stream failure is one NativeStreamError with a stable
 * `code` (SWY_ERR_NATIVE_*), a `reason` (the metrics label) and the two facts the proxy's retry
 * decision needs: `retryable` (another worker may succeed) and `received` (items already reached
 * the caller, so a retry would duplicate output).
 */
import { SwitchyardError } from '../../shared/errors.js'
import type { OpenAIErrorType } from '../../shared/errors.js'

/** Failure reasons: stats() counts failures by these, and NativeStreamError.reason is one of them. */
export const NativeFailure = {
  CONNECT_TIMEOUT: 'connect_timeout',
  ACCEPT_TIMEOUT: 'accept_timeout',
  FIRST_ITEM_TIMEOUT: 'first_item_timeout',
  IDLE_TIMEOUT: 'idle_timeout',
  DEADLINE: 'deadline',
  CONNECTION_LOST: 'connection_lost',
  PROTOCOL: 'protocol',
  WORKER_ERROR: 'worker_error',
  CANCELLED: 'cancelled',
  CLOSED: 'closed',
  TOMBSTONED: 'tombstoned',
  REQUEST_TOO_LARGE: 'request_too_large'
} as const
export type NativeFailureReason = typeof NativeFailure[keyof typeof NativeFailure]

export type NativeErrorCode =
  | 'SWY_ERR_NATIVE_CONNECTION'
  | 'SWY_ERR_NATIVE_TIMEOUT'
  | 'SWY_ERR_NATIVE_PROTOCOL'
  | 'SWY_ERR_NATIVE_FRAME_TOO_LARGE'
  | 'SWY_ERR_NATIVE_WORKER'
  | 'SWY_ERR_NATIVE_CANCELLED'

interface Mapping { code: NativeErrorCode, status: number, type: OpenAIErrorType, apiCode: string }

const TIMEOUT: Mapping = { code: 'SWY_ERR_NATIVE_TIMEOUT', status: 504, type: 'timeout_error', apiCode: 'upstream_timeout' }
const UNAVAILABLE: Mapping = { code: 'SWY_ERR_NATIVE_CONNECTION', status: 502, type: 'server_error', apiCode: 'upstream_unavailable' }

const MAPPING: Record<NativeFailureReason, Mapping> = {
  connect_timeout: TIMEOUT,
  accept_timeout: TIMEOUT,
  first_item_timeout: TIMEOUT,
  idle_timeout: TIMEOUT,
  deadline: TIMEOUT,
  connection_lost: UNAVAILABLE,
  closed: UNAVAILABLE,
  tombstoned: UNAVAILABLE,
  protocol: { code: 'SWY_ERR_NATIVE_PROTOCOL', status: 502, type: 'server_error', apiCode: 'upstream_protocol_error' },
  request_too_large: { code: 'SWY_ERR_NATIVE_FRAME_TOO_LARGE', status: 413, type: 'invalid_request_error', apiCode: 'request_too_large' },
  worker_error: { code: 'SWY_ERR_NATIVE_WORKER', status: 502, type: 'server_error', apiCode: 'upstream_error' },
  cancelled: { code: 'SWY_ERR_NATIVE_CANCELLED', status: 499, type: 'server_error', apiCode: 'cancelled' }
}

/**
 * Retryable by default: reasons where the worker cannot have produced anything the caller saw.
 * First-item and idle timeouts are not: the worker may still be computing (same rule as the HTTP
 * transport's first-byte timeout); the proxy may still retry them before the first item if it wants.
 */
const RETRYABLE: Record<NativeFailureReason, boolean> = {
  connect_timeout: true,
  accept_timeout: true,
  first_item_timeout: false,
  idle_timeout: false,
  deadline: false,
  connection_lost: true,
  closed: true,
  tombstoned: true,
  protocol: true,
  request_too_large: false,
  worker_error: false,
  cancelled: false
}

export interface WorkerErrorInfo {
  /** The worker's own code (e.g. SWY_ERR_INVALID_BODY), kept for logs. */
  code: string
  message: string
  retryable: boolean
  /** HTTP status the worker suggests (400 for a bad request); 0 when it gave none. */
  status: number
  param: string | null
  /** OpenAI error `code` the worker suggests, or null. */
  apiCode: string | null
}

export class NativeStreamError extends SwitchyardError {
  readonly reason: NativeFailureReason
  /** Another worker may succeed (nothing was lost on this one except time). */
  readonly retryable: boolean
  /** At least one item reached the handler before the failure. */
  readonly received: boolean
  /** The worker's code when reason is worker_error (e.g. SWY_ERR_INVALID_BODY), else null. */
  readonly workerCode: string | null

  constructor (reason: NativeFailureReason, message: string, received: boolean, cause?: unknown, worker?: WorkerErrorInfo) {
    const m = MAPPING[reason]
    const status = worker !== undefined && worker.status >= 400 ? worker.status : m.status
    // The worker's status decides the class: its 4xx are the request's fault, its 504 a deadline
    // it enforced (the same request_timeout the gateway enforces, whichever side saw it first).
    const type: OpenAIErrorType = worker === undefined ? m.type : status >= 400 && status < 500 ? 'invalid_request_error' : status === 504 ? 'timeout_error' : m.type
    super(m.code, message, {
      status,
      type,
      apiCode: worker?.apiCode ?? m.apiCode,
      param: worker?.param ?? null,
      cause
    })
    this.name = 'NativeStreamError'
    this.reason = reason
    this.retryable = worker !== undefined ? worker.retryable : RETRYABLE[reason]
    this.received = received
    this.workerCode = worker?.code ?? null
  }
}

/** A connection-level problem (bad frame, size limit, version): the connection is closed. */
export class NativeProtocolError extends SwitchyardError {
  constructor (message: string, tooLarge = false) {
    super(tooLarge ? 'SWY_ERR_NATIVE_FRAME_TOO_LARGE' : 'SWY_ERR_NATIVE_PROTOCOL', message, {
      status: 502, type: 'server_error', apiCode: 'upstream_protocol_error'
    })
    this.name = 'NativeProtocolError'
  }
}
