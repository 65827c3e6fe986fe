/**
 * The mock engine's errors. They reuse the project's shared codes (src/shared/errors.ts,
 * docs/errors.md) so that the gateway and the engine answer alike; each class narrows the meaning.
 */
import { SwitchyardError } from '../shared/errors.js'

/** The shared codes the mock engine raises, and what each means here. */
export const MOCKER_ERROR_CODES = {
  SWY_ERR_BAD_CONFIG: 'a mock engine option is unknown or out of range (MockerOptionError)',
  SWY_ERR_INVALID_BODY: 'a generate request the engine cannot serve: bad field, prompt too long for the KV cache (MockerRequestError)',
  SWY_ERR_SHUTTING_DOWN: 'the mock engine is closed and takes no new requests (MockerClosedError)',
  SWY_ERR_INTERNAL: 'an unexpected failure inside the mock engine (a bug)',
  SWY_ERR_BAD_FLAG: 'a `switchyard mocker` flag is unknown or malformed (BadFlagError)'
} as const

/** An engine option that fails validation; names the option and what it accepts. */
export class MockerOptionError extends SwitchyardError {
  constructor (message: string) {
    super('SWY_ERR_BAD_CONFIG', message, { status: 400, type: 'invalid_request_error', apiCode: 'bad_config' })
    this.name = 'MockerOptionError'
  }
}

/** A request the engine refuses; maps to an OpenAI 400. */
export class MockerRequestError extends SwitchyardError {
  constructor (message: string, param: string | null = null) {
    super('SWY_ERR_INVALID_BODY', message, { status: 400, type: 'invalid_request_error', apiCode: 'invalid_value', param })
    this.name = 'MockerRequestError'
  }
}

export class MockerClosedError extends SwitchyardError {
  constructor () {
    super('SWY_ERR_SHUTTING_DOWN', 'the mock engine is closed', { status: 503, type: 'service_unavailable_error', apiCode: 'engine_closed' })
    this.name = 'MockerClosedError'
  }
}

/** A bad command-line flag; the CLI prints the message and exits with code 2. */
export class BadFlagError extends SwitchyardError {
  constructor (message: string, cause?: unknown) {
    super('SWY_ERR_BAD_FLAG', message, { status: 400, type: 'invalid_request_error', apiCode: 'bad_flag', cause })
    this.name = 'BadFlagError'
  }
}
