import { SwitchyardError } from '../shared/errors.js'

/**
 * A tokenizer directory that cannot be loaded. The directory is a setting (flag or config), hence
 * the shared SWY_ERR_BAD_CONFIG code; the message names the file and the problem.
 */
export class TokenizerError extends SwitchyardError {
  constructor (message: string, cause?: unknown) {
    super('SWY_ERR_BAD_CONFIG', message, { status: 400, type: 'invalid_request_error', apiCode: 'bad_config', cause })
    this.name = 'TokenizerError'
  }
}
