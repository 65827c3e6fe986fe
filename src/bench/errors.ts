/**
 * Errors the load generator throws. Bench may import only `tokenize`, so these do not extend the
 * gateway's SwitchyardError; they carry the same kind of stable `code` so the CLI can switch on it.
 *
 * Failures of individual benchmark requests are never thrown: they are recorded per request
 * (see `RequestError` in records.ts) and counted in the results.
 */

export const BENCH_ERROR_CODES = {
  SWY_ERR_BAD_FLAG: 'a command-line flag is unknown or malformed',
  SWY_ERR_BENCH_BAD_OPTION: 'a load-generator option passed to runLoad is missing, out of range or contradicts another',
  SWY_ERR_BENCH_TRACE: 'the trace file cannot be read or a record in it is malformed'
} as const

export type BenchErrorCode = keyof typeof BENCH_ERROR_CODES

export class BenchError extends Error {
  readonly code: BenchErrorCode

  constructor (code: BenchErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'BenchError'
    this.code = code
  }
}

/** A flag the CLI cannot accept; `switchyard` prints the message and exits with code 2. */
export class BadFlagError extends BenchError {
  constructor (message: string) {
    super('SWY_ERR_BAD_FLAG', message)
    this.name = 'BadFlagError'
  }
}

/** An option of `runLoad` that is invalid; `option` names it (the CLI maps it back to its flag). */
export class BadOptionError extends BenchError {
  readonly option: string

  constructor (option: string, message: string) {
    super('SWY_ERR_BENCH_BAD_OPTION', message)
    this.name = 'BadOptionError'
    this.option = option
  }
}

export class TraceError extends BenchError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('SWY_ERR_BENCH_TRACE', message, options)
    this.name = 'TraceError'
  }
}
