/**
 * Distributed mode for one gateway (`serve --nats URL`): connects to NATS, follows the discovery
 * bucket (workers appear and leave through the same functions as POST/DELETE /workers), and feeds
 * the KV indexes from the event plane for workers that publish there.
 *
 * The gateway calls `startDistributed` once in start() and `close()` once at shutdown; with
 * `nats` unset it returns null and nothing else changes.
 */
import type { Logger } from 'pino'
import type { RoutingSync } from '../events/routing-sync.js'
import type { WorkerSpec } from '../config/serve.js'
import { connectNats, checkNamespace, LoadBoard, NatsKvSubscriber, type NatsHandle } from '../events/index.js'
import { natsAuthFromFlags } from '../events/nats.js'
import type { InProcessKvEngine } from '../kv/index.js'
import type { Registry } from '../registry/registry.js'
import type { Worker } from '../registry/worker.js'
import { SwitchyardError } from '../shared/errors.js'
import { NatsDiscovery } from './nats-discovery.js'
import { DEFAULT_BUCKET, sameRouting, type WorkerRecord } from './record.js'

/** The mock engine's block size, for records that give none (vLLM's registrar always gives one). */
const DEFAULT_BLOCK_SIZE = 64

/** What distributed mode needs of the gateway (structural: discovery does not import frontend). */
export interface DistributedContext {
  readonly config: { readonly nats: string | null, readonly nats_namespace: string, readonly nats_creds: string, readonly nats_tls_ca: string, readonly nats_tls_cert: string, readonly nats_tls_key: string }
  readonly registry: Registry
  readonly plane: { attachInProcess (model: string, workerId: string, engine: InProcessKvEngine, blockSize: number): void }
  readonly log: Logger
}

export interface DistributedHooks<C> {
  /** Adds a worker and starts its first contact (workers-api's addWorker). */
  addWorker (ctx: C, spec: WorkerSpec, reported: { requests: number | null, tokens: number | null } | null): { worker: Worker, ready: Promise<void> }
  /** Removes a worker, letting its requests finish (workers-api's removeWorker). */
  removeWorker (ctx: C, id: string): unknown
}

export interface DistributedOptions {
  bucket?: string
  /** TTL if this gateway creates the bucket. */
  ttlMs?: number
}

export class Distributed implements AsyncDisposable {
  readonly nats: NatsHandle
  readonly discovery: NatsDiscovery
  readonly kv: NatsKvSubscriber
  readonly load: LoadBoard
  /** Replica sync of in-flight load between gateways (null when `replica_sync` is off). */
  routing: RoutingSync | null = null
  /** Workers this gateway added from the bucket, with the record they were added from. */
  readonly workers = new Map<string, WorkerRecord>()
  private closing: Promise<void> | null = null

  constructor (nats: NatsHandle, discovery: NatsDiscovery, kv: NatsKvSubscriber, load: LoadBoard) {
    this.nats = nats
    this.discovery = discovery
    this.kv = kv
    this.load = load
  }

  close (): Promise<void> {
    this.closing ??= (async () => {
      this.routing?.close()
      await this.discovery.close()
      await this.kv.close()
      this.load.close()
      await this.nats.close()
    })()
    return this.closing
  }

  [Symbol.asyncDispose] (): Promise<void> {
    return this.close()
  }
}

/**
 * @example
 * this.distributed = await startDistributed(this.ctx, { addWorker, removeWorker })
 */
export async function startDistributed<C extends DistributedContext> (ctx: C, hooks: DistributedHooks<C>, opts: DistributedOptions = {}): Promise<Distributed | null> {
  const url = ctx.config.nats
  if (url === null) return null
  const ns = checkNamespace(ctx.config.nats_namespace)
  const log = ctx.log.child({ component: 'nats' })
  let discovery: NatsDiscovery | null = null
  let kv: NatsKvSubscriber | null = null
  const c = ctx.config
  const nats = await connectNats({
    servers: url,
    name: 'switchyard-gateway',
    ...natsAuthFromFlags({ creds: c.nats_creds, tlsCa: c.nats_tls_ca, tlsCert: c.nats_tls_cert, tlsKey: c.nats_tls_key }),
    onStatus: (s) => {
      if (s.type === 'disconnect') {
        log.warn({ server: s.server }, 'NATS connection lost; serving the last-known fleet')
        discovery?.disconnected()
      } else if (s.type === 'reconnect') {
        log.info({ server: s.server }, 'NATS reconnected; resynchronising')
        discovery?.reconnected()
        kv?.resyncAll('reconnect')
      }
    }
  }).catch((err: unknown) => {
    throw new SwitchyardError('SWY_ERR_NATS_UNAVAILABLE', `cannot connect to NATS at ${url.replace(/\/\/[^@/]*@/g, '//***@')}: ${(err as Error).message} (is nats-server running? see docs/distributed.md)`, { status: 503, type: 'service_unavailable_error', apiCode: 'nats_unavailable', cause: err })
  })
  kv = new NatsKvSubscriber(nats.nc, { namespace: ns, onWarn: (msg, worker) => log.warn({ worker }, msg) })
  const load = new LoadBoard(nats.nc, { namespace: ns })
  let d: Distributed | null = null
  const kvSub = kv
  discovery = new NatsDiscovery(nats.nc, {
    bucket: opts.bucket ?? DEFAULT_BUCKET,
    ...(opts.ttlMs === undefined ? {} : { ttlMs: opts.ttlMs }),
    onUpsert: (rec) => { if (d !== null) upsert(ctx, hooks, d, rec) },
    onRemove: (id, reason) => {
      if (d === null || !d.workers.has(id)) return
      d.workers.delete(id)
      load.forget(id)
      log.info({ worker: id, reason }, 'worker record gone')
      hooks.removeWorker(ctx, id)
    },
    onWarn: (msg) => log.warn(msg)
  })
  d = new Distributed(nats, discovery, kvSub, load)
  try {
    await discovery.start()
  } catch (err) {
    await d.close()
    throw err
  }
  log.info({ servers: url.replace(/\/\/[^@/]*@/, '//***@'), namespace: ns, workers: d.workers.size, ttl_ms: discovery.ttlMs }, 'distributed mode: following the discovery bucket')
  return d
}

function upsert<C extends DistributedContext> (ctx: C, hooks: DistributedHooks<C>, d: Distributed, rec: WorkerRecord): void {
  const prev = d.workers.get(rec.id)
  if (prev !== undefined && sameRouting(prev, rec)) return
  if (prev !== undefined) {
    // Changed (another URL, models, or a restart): replace it.
    d.workers.delete(rec.id)
    hooks.removeWorker(ctx, rec.id)
  } else if (ctx.registry.get(rec.id) !== undefined) {
    ctx.log.warn({ worker: rec.id }, 'a worker with this id is already configured here; ignoring its NATS record')
    return
  }
  const spec: WorkerSpec = {
    id: rec.id,
    url: rec.url,
    model: rec.models.length === 1 ? rec.models[0]! : null,
    labels: { ...rec.labels, discovery: 'nats' },
    api_key: null,
    kv_events: rec.nats_events ? null : rec.kv_events,
    kv_replay: rec.nats_events ? null : rec.kv_replay,
    block_size: rec.block_size,
    max_inflight_requests: null,
    max_inflight_tokens: null,
    native_url: rec.native
  }
  let added: { worker: Worker, ready: Promise<void> }
  try {
    // The record's KV capacity is what the worker reports: the last resort for its token window.
    const reported = rec.kv_blocks !== null && rec.block_size !== null ? { requests: null, tokens: rec.kv_blocks * rec.block_size } : null
    added = hooks.addWorker(ctx, spec, reported)
  } catch (err) {
    ctx.log.warn({ worker: rec.id, err: (err as Error).message }, 'cannot add worker from its NATS record')
    return
  }
  d.workers.set(rec.id, rec)
  const { worker, ready } = added
  void ready.then(() => {
    if (!rec.nats_events || ctx.registry.get(rec.id) !== worker || worker.state === 'removed') return
    const engine = d.kv.engineFor(rec.id)
    for (const model of worker.models) ctx.plane.attachInProcess(model, rec.id, engine, rec.block_size ?? DEFAULT_BLOCK_SIZE)
  }, (err: unknown) => { ctx.log.warn({ worker: rec.id, err: (err as Error).message }, 'first contact failed') })
}
