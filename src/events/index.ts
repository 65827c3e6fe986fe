/**
 * Public surface of the event plane (DESIGN 4.6): the NATS connection helper, the envelope and
 * subjects, the `kv` and `load` topics' publishers and subscribers, and the registrar's ZMQ → NATS KV bridge.
 *
 * @example
 * import { connectNats, NatsKvPublisher } from '../events/index.js'
 * const nats = await connectNats({ servers: 'nats://127.0.0.1:4222' })
 * const pub = new NatsKvPublisher(nats.nc, { namespace: 'default', workerId: '10.0.0.5:8000' })
 */
export { connectNats, natsServers } from './nats.js'
export type { NatsHandle, NatsOptions } from './nats.js'
export {
  checkNamespace, EnvelopeWriter, fromSubjectToken, newPackr, newPublisherId, readEnvelope, subjectFor, subjectToken,
  TOPICS, unpack, wildcardFor, workerOfSubject
} from './envelope.js'
export type { Envelope, Topic } from './envelope.js'
export { BlockMirror, fromWire, toWire } from './kv-wire.js'
export type { WireKvEvent } from './kv-wire.js'
export { NatsKvPublisher } from './kv-publisher.js'
export type { NatsKvPublisherOptions } from './kv-publisher.js'
export { KvStreamCounters, NatsKvSubscriber, WorkerKvStream } from './kv-subscriber.js'
export type { NatsKvSubscriberOptions } from './kv-subscriber.js'
export { LoadBoard, NatsLoadPublisher } from './load.js'
export { InProcessEventCollector, ZmqNatsBridge } from './zmq-bridge.js'
export type { ZmqNatsBridgeOptions } from './zmq-bridge.js'
export type { LoadEntry, LoadReport, LoadSample } from './load.js'
