/**
 * Public surface of the mock engine. Other capabilities import from here only.
 *
 * @example
 * import { createMockEngine, startMockServer } from '../mocker/index.js'
 * const engine = createMockEngine({ model: 'mock-llm', speedupRatio: 10 })
 * const server = await startMockServer(engine, { port: 0 })
 */
export { createMockEngine, MockEngine } from './engine.js'
export type { GenerateInput, GenerateOptions, GenerateResult } from './engine.js'
export type { MockEngineOptions, ResolvedEngineOptions } from './options.js'
export { startMockServer } from './server.js'
export type { MockServer, MockServerOptions } from './server.js'
export { startMockFleet } from './fleet.js'
export { MockNativeEngine, startMockNativeServer } from './native.js'
export type { MockFleet, MockFleetOptions, MockWorker } from './fleet.js'
export { runMocker, parseMockerFlags, MOCKER_USAGE } from './cli.js'
export type { RunningMocker, RunMockerIo, MockerFlagOptions } from './cli.js'
export { KvEventPublisher, LoadPublisher } from './zmq-publisher.js'
export type { KvEventPublisherOptions, LoadPublisherOptions } from './zmq-publisher.js'
export { KvBatchEncoder, PassMetricsEncoder } from './event-codec.js'
export type { KvEventFormat } from './event-codec.js'
export { AllBlocksCleared, BlockRemoved, BlockStored, KvEventBatch } from './kv-events.js'
export type { KvEvent, KvEventListener } from './kv-events.js'
export { ForwardPassMetrics } from './pass-metrics.js'
export type { PassListener } from './pass-metrics.js'
export { EngineRequest, RequestState } from './request.js'
export type { FinishReason, RequestSink, RequestUsage } from './request.js'
export { Scheduler, PassPlan } from './scheduler.js'
export { BlockManager } from './block-manager.js'
export { prefillMs, decodeMs, passMs } from './timing.js'
export { BadFlagError, MockerClosedError, MockerOptionError, MockerRequestError, MOCKER_ERROR_CODES } from './errors.js'

/**
 * Speed-up for an embedded fleet behind `switchyard serve`: at 10× a 1k-token prompt prefills in
 * ~3 ms and decode runs at ~1,700 tokens/s per request — faster than a reader, so replies feel
 * instantaneous yet keep realistic ratios (TTFT vs ITL, queueing under load) that routing and
 * admission react to. 1× would feel sluggish in a demo; 0 (no simulated time) hides load effects.
 */
export const EMBEDDED_FLEET_SPEEDUP = 10
