/**
 * Public surface of discovery in distributed mode (DESIGN 4.6): worker records in a JetStream KV
 * bucket, the registration that keeps one alive, the gateway's watcher, and the glue for
 * `serve --nats` and `mocker --nats`.
 *
 * @example
 * import { startDistributed } from '../discovery/index.js'
 * const d = await startDistributed(ctx, { addWorker, removeWorker }) // null without `nats`
 */
export { DEFAULT_BUCKET, DEFAULT_TTL_MS, idOfKey, keyOf, makeRecord, parseRecord, sameRouting } from './record.js'
export type { WorkerRecord, WorkerRecordInit } from './record.js'
export { openWorkerBucket, ttlOf } from './bucket.js'
export { WorkerRegistration } from './registration.js'
export type { WorkerRegistrationOptions } from './registration.js'
export { NatsDiscovery } from './nats-discovery.js'
export type { NatsDiscoveryOptions } from './nats-discovery.js'
export { Distributed, startDistributed } from './distributed.js'
export type { DistributedContext, DistributedHooks, DistributedOptions } from './distributed.js'
export { registerFleet } from './fleet.js'
export type { FleetEngine, FleetNats, FleetNatsOptions } from './fleet.js'
