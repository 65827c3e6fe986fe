/**
 * The KV capability's errors. Option and lookup mistakes reuse the shared codes; malformed event
 * batches get their own code, since they come from an engine, not from a client or a setting.
 * None of these reaches an HTTP client: event sources count decode errors and carry on.
 */
import { SwitchyardError } from '../shared/errors.js'

/** The codes kv raises, and what each means here. */
export const KV_ERROR_CODES = {
  SWY_ERR_KV_EVENT_DECODE: 'a KV event batch from an engine is not msgpack of the vLLM event shape (KvDecodeError)',
  SWY_ERR_BAD_CONFIG: 'a KV index or KV event source option is missing or out of range (KvOptionError)',
  SWY_ERR_WORKER_NOT_FOUND: 'a KV index call names a worker slot the index does not have (KvWorkerNotFoundError)'
} as const

/** A KV event batch that cannot be decoded; `offset` is where the decoder stopped. */
export class KvDecodeError extends SwitchyardError {
  readonly offset: number
  constructor (message: string, offset: number) {
    super('SWY_ERR_KV_EVENT_DECODE', `${message} (at byte ${offset})`, { status: 502, type: 'server_error', apiCode: 'kv_event_decode' })
    this.name = 'KvDecodeError'
    this.offset = offset
  }
}

/** An index or source option that fails validation; names the option and what it accepts. */
export class KvOptionError extends SwitchyardError {
  constructor (message: string) {
    super('SWY_ERR_BAD_CONFIG', message, { status: 400, type: 'invalid_request_error', apiCode: 'bad_config' })
    this.name = 'KvOptionError'
  }
}

export class KvWorkerNotFoundError extends SwitchyardError {
  constructor (slot: number) {
    super('SWY_ERR_WORKER_NOT_FOUND', `the KV index has no worker in slot ${slot}`, { status: 404, type: 'not_found_error', apiCode: 'worker_not_found' })
    this.name = 'KvWorkerNotFoundError'
  }
}
