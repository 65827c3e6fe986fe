/**
 * Public surface of bench: the load generator (`runLoad`), the `switchyard bench` entry
 * (`runBench`), the report renderer and the null server used to measure the generator itself.
 */
export { runBench } from './cli.js'
export { runLoad, type RunHooks } from './load.js'
export { resolveLoadOptions, PRIORITY_VALUES, PRIORITY_NAMES } from './options.js'
export type { LoadOptions, LoadOptionsInput, LengthSpec, PriorityMix, PriorityName, Endpoint, WorkloadKind, TraceFormat } from './options.js'
export type { LoadResult, GeneratorHealth } from './results.js'
export type { RequestRecord, RequestError, RequestErrorKind } from './records.js'
export type { RunSummary, Timeline, Cdfs, Slo } from './summary.js'
export type { Stats } from './stats.js'
export { renderReport } from './report/html.js'
export { formatSummary } from './table.js'
export { NullServer, type NullServerOptions } from './null-server.js'
export { readTrace, type TraceRecord } from './trace-file.js'
export { BenchError, BadFlagError, BadOptionError, TraceError, BENCH_ERROR_CODES } from './errors.js'
