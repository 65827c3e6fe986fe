/**
 * N mock engines in one process, each with its HTTP server and (optionally) its ZMQ publishers.
 * Used by `switchyard mocker` and by `switchyard serve`'s embedded fleet.
 */
import { createMockEngine } from './engine.js'
import type { MockEngine } from './engine.js'
import type { MockEngineOptions } from './options.js'
import { startMockServer } from './server.js'
import type { MockServer } from './server.js'
import { KvEventPublisher, LoadPublisher } from './zmq-publisher.js'
import { startMockNativeServer } from './native.js'
import type { NativeWorkerServer } from '../worker/index.js'

export interface MockFleetOptions extends Omit<MockEngineOptions, 'workerId'> {
  /** Engines to start; default 1. */
  numWorkers?: number
  /** HTTP interface; default 127.0.0.1 (ZMQ sockets bind the same host). */
  host?: string
  /** Engine i serves HTTP on port + i; 0 gives every engine a free port. Default 8000. */
  port?: number
  /** Engine i publishes KV events on kvEventsPort + i; 0: free ports; null/absent: no ZMQ at all. */
  kvEventsPort?: number | null
  /** Engine i answers replay on kvReplayPort + i; default kvEventsPort + numWorkers (0 when kvEventsPort is 0). */
  kvReplayPort?: number | null
  /** Engine i publishes forward-pass metrics on loadPort + i; default kvEventsPort + 2 × numWorkers (0 when kvEventsPort is 0). */
  loadPort?: number | null
  /** Engine i also serves the native transport on nativePort + i; 0: free ports; null/absent: HTTP only. */
  nativePort?: number | null
  /** KV events topic; default "". */
  kvTopic?: string
  /** Publish vLLM's legacy tagged-array events instead of maps. */
  legacyEvents?: boolean
  /** Called with one line per started worker. */
  log?: (line: string) => void
}

export interface MockWorker {
  readonly index: number
  readonly engine: MockEngine
  readonly server: MockServer
  /** http://host:port */
  readonly url: string
  readonly kvEvents: KvEventPublisher | null
  readonly load: LoadPublisher | null
  /** The native transport server, when the fleet was started with nativePort. */
  readonly native: NativeWorkerServer | null
  /** swy://host:port, or null without nativePort. */
  readonly nativeUrl: string | null
}

export interface MockFleet {
  readonly workers: readonly MockWorker[]
  /** Closes servers, publishers and engines. Idempotent. */
  close (): Promise<void>
}

/**
 * Starts `numWorkers` engines. Worker ids are "0", "1", ...
 *
 * @example
 * const fleet = await startMockFleet({ numWorkers: 4, port: 0, speedupRatio: 10 })
 * fleet.workers.map((w) => w.url)
 */
export async function startMockFleet (opts: MockFleetOptions = {}): Promise<MockFleet> {
  const {
    numWorkers = 1, host = '127.0.0.1', port = 8000, kvEventsPort = null, kvReplayPort, loadPort,
    kvTopic = '', legacyEvents = false, nativePort = null, log, ...engineOpts
  } = opts
  const derived = (k: number): number | null => kvEventsPort === null ? null : kvEventsPort === 0 ? 0 : kvEventsPort + k * numWorkers
  const replayBase = kvReplayPort !== undefined ? kvReplayPort : derived(1)
  const loadBase = loadPort !== undefined ? loadPort : derived(2)
  const offset = (base: number, i: number): number => base === 0 ? 0 : base + i
  const workers: MockWorker[] = []
  const engines: MockEngine[] = []
  const started: Array<{ close: () => Promise<void> }> = []
  const closeAll = async (): Promise<void> => {
    // Engines first: in-flight answers end with an error event instead of a cut connection; then
    // servers (which now have nothing in flight) and publishers.
    await Promise.all(engines.map(async (e) => { await e.close() }))
    await Promise.all(started.map(async (c) => { await c.close() }))
    started.length = 0
  }
  try {
    for (let i = 0; i < numWorkers; i++) {
      const engine = createMockEngine({ ...engineOpts, workerId: String(i) })
      engines.push(engine)
      let kvEvents: KvEventPublisher | null = null
      let load: LoadPublisher | null = null
      if (kvEventsPort !== null) {
        kvEvents = await KvEventPublisher.start(engine, {
          host,
          port: offset(kvEventsPort, i),
          replayPort: replayBase === null ? null : offset(replayBase, i),
          topic: kvTopic,
          format: legacyEvents ? 'legacy' : 'map'
        })
        started.push(kvEvents)
      }
      if (loadBase !== null) {
        load = await LoadPublisher.start(engine, { host, port: offset(loadBase, i) })
        started.push(load)
      }
      // The native server first: the HTTP server advertises its address in GET /v1/models.
      let native: NativeWorkerServer | null = null
      if (nativePort !== null) {
        const n = await startMockNativeServer(engine, { host, port: offset(nativePort, i) })
        native = n
        started.push({ close: async () => { await n.close() } })
      }
      const server = await startMockServer(engine, { host, port: offset(port, i), nativeUrl: native?.url ?? null })
      started.push(server)
      const worker: MockWorker = { index: i, engine, server, url: server.url, kvEvents, load, native, nativeUrl: native?.url ?? null }
      workers.push(worker)
      log?.(describeWorker(worker))
    }
  } catch (err) {
    await closeAll()
    throw err
  }
  let closing: Promise<void> | null = null
  return {
    workers,
    async close () {
      closing ??= closeAll()
      await closing
    }
  }
}

function describeWorker (w: MockWorker): string {
  let line = `worker ${w.index}: ${w.url} (model ${w.engine.model})`
  if (w.nativeUrl !== null) line += `, native ${w.nativeUrl}`
  if (w.kvEvents !== null) {
    line += `, kv events ${w.kvEvents.endpoint}`
    if (w.kvEvents.replayEndpoint !== null) line += `, replay ${w.kvEvents.replayEndpoint}`
  }
  if (w.load !== null) line += `, load ${w.load.endpoint}`
  return line
}
