/**
 * Public surface of the worker runtime: serve an engine over the native transport.
 *
 * @example
 * import { startNativeWorker } from '../worker/index.js'
 * const worker = await startNativeWorker(engine, { port: 9000 })
 */
export { NativeWorkerServer, WorkerStream, iterableEngine, startNativeWorker } from './server.js'
export type { NativeEngine, NativeWorkerOptions, NativeWorkerStats } from './server.js'
