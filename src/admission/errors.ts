import { SwitchyardError } from '../shared/errors.js'

export function queueFull (model: string, retryAfter: number, what: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_QUEUE_FULL', `the queue for model '${model}' is full (${what}); retry after ${retryAfter} s`, { status: 429, type: 'rate_limit_error', apiCode: 'queue_full', retryAfter })
}

export function queueTimeout (model: string, waitedMs: number, retryAfter: number): SwitchyardError {
  return new SwitchyardError('SWY_ERR_QUEUE_TIMEOUT', `waited ${Math.round(waitedMs)} ms in the queue for model '${model}' without a worker freeing room`, { status: 503, type: 'service_unavailable_error', apiCode: 'queue_timeout', retryAfter })
}

export function requestTooLarge (model: string, tokens: number, window: number): SwitchyardError {
  return new SwitchyardError('SWY_ERR_REQUEST_TOO_LARGE', `the request needs about ${tokens} tokens (prompt + max_tokens) but no worker of model '${model}' takes more than ${window} tokens at once`, { status: 400, type: 'invalid_request_error', apiCode: 'context_length_exceeded', param: 'max_tokens' })
}
