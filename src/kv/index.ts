/**
 * Public surface of the KV capability: block hashing, the KV index, event decoding and sources.
 * Other capabilities import from here only.
 *
 * @example
 * import { KvIndex, OverlapScores, ZmqKvEventSource } from '../kv/index.js'
 * const index = new KvIndex({ blockSize: 16 })
 * const source = new ZmqKvEventSource(index, { workerId: 'w0', endpoint: 'tcp://10.0.0.5:5557', replayEndpoint: 'tcp://10.0.0.5:5558' })
 * const scores = new OverlapScores()
 * index.lookupTokens(promptTokenIds, scores)
 */
export { BlockHasher, KV_HASH_SEED } from './hash.js'
export { BlockKeyer, BlockKeys, splitU64 } from './block-keys.js'
export { Xxh3, pairToBigInt } from './xxh3.js'
export { KvIndex } from './kv-index.js'
export type { KvIndexOptions } from './kv-index.js'
export { OverlapScores } from './overlap.js'
export { KvDecodeError, KvOptionError, KvWorkerNotFoundError, KV_ERROR_CODES } from './errors.js'
export { KvBatchDecoder, DecodedBlocks, isIndexedTier, loraOf } from './event-decoder.js'
export type { KvEventSink } from './event-decoder.js'
export { WorkerEventApplier } from './event-apply.js'
export { KvSourceCounters } from './counters.js'
export { ZmqKvEventSource } from './zmq-source.js'
export type { ZmqKvEventSourceOptions } from './zmq-source.js'
export { ZmqKvFollower } from './zmq-follower.js'
export type { ZmqKvFollowerOptions, ZmqKvTarget } from './zmq-follower.js'
export { InProcessKvEventSource } from './in-process-source.js'
export type {
  InProcessKvEngine, InProcessKvBatch, InProcessKvEvent, InProcessBlockStored, InProcessBlockRemoved,
  InProcessAllBlocksCleared, InProcessKvEventSourceOptions
} from './in-process-source.js'
