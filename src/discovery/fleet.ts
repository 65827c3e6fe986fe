/**
 * `switchyard mocker --nats URL`: every engine of the fleet registers in the discovery bucket and
 * publishes its KV events and per-pass load on the event plane. The engines are described
 * structurally (the mocker's MockWorker fits) so discovery does not depend on the mocker.
 */
import { workerIdFromUrl } from '../registry/worker.js'
import { connectNats, checkNamespace, NatsKvPublisher, NatsLoadPublisher, type LoadSample, type NatsHandle, type NatsOptions } from '../events/index.js'
import type { InProcessKvBatch } from '../kv/index.js'
import { WorkerRegistration } from './registration.js'

export interface FleetEngine {
  readonly url: string
  readonly engine: {
    readonly model: string
    readonly options: { readonly blockSize: number, readonly numGpuBlocks: number, readonly maxNumBatchedTokens: number }
    onKvEvents (listener: (batch: InProcessKvBatch) => void): () => void
    onPass (listener: (m: LoadSample) => void): () => void
  }
}

export interface FleetNatsOptions extends Omit<NatsOptions, 'servers'> {
  servers: string
  namespace?: string
  bucket?: string
  ttlMs?: number
  refreshMs?: number
  labels?: Record<string, string>
  /** The native transport address of engine i, when it has one. */
  nativeOf?: (index: number) => string | null
  onWarn?: (msg: string) => void
}

export interface FleetNats {
  readonly nats: NatsHandle
  readonly registrations: readonly WorkerRegistration[]
  readonly kv: readonly NatsKvPublisher[]
  /** Withdraws the records, stops publishing, closes the connection. Idempotent. */
  close (): Promise<void>
}

/**
 * @example
 * const fleet = await startMockFleet({ numWorkers: 2, port: 0 })
 * const reg = await registerFleet(fleet.workers, { servers: 'nats://127.0.0.1:4222' })
 * await reg.close(); await fleet.close()
 */
export async function registerFleet (workers: readonly FleetEngine[], opts: FleetNatsOptions): Promise<FleetNats> {
  const ns = checkNamespace(opts.namespace ?? 'default')
  const { namespace: _ns, bucket, ttlMs, refreshMs, labels, nativeOf, onWarn, ...natsOpts } = opts
  const nats = await connectNats({ name: 'switchyard-mocker', ...natsOpts })
  const registrations: WorkerRegistration[] = []
  const kv: NatsKvPublisher[] = []
  const loads: NatsLoadPublisher[] = []
  const unsubscribe: Array<() => void> = []
  let closing: Promise<void> | null = null
  const close = (): Promise<void> => {
    closing ??= (async () => {
      for (const u of unsubscribe) u()
      for (const l of loads) l.close()
      await Promise.all(registrations.map(async (r) => { await r.close() }))
      await Promise.all(kv.map(async (p) => { await p.close() }))
      await nats.close()
    })()
    return closing
  }
  try {
    for (let i = 0; i < workers.length; i++) {
      const w = workers[i]!
      const id = workerIdFromUrl(w.url)
      const e = w.engine
      const pub = new NatsKvPublisher(nats.nc, { namespace: ns, workerId: id })
      kv.push(pub)
      unsubscribe.push(e.onKvEvents((batch) => { pub.publish(batch.events) }))
      const load = new NatsLoadPublisher(nats.nc, { namespace: ns, workerId: id })
      loads.push(load)
      unsubscribe.push(e.onPass((m) => { load.update(m) }))
      const reg = new WorkerRegistration(nats.nc, {
        record: {
          id,
          url: w.url,
          models: [e.model],
          native: nativeOf?.(i) ?? null,
          block_size: e.options.blockSize,
          kv_blocks: e.options.numGpuBlocks,
          max_batched_tokens: e.options.maxNumBatchedTokens,
          nats_events: true,
          labels: { engine: 'mocker', ...labels }
        },
        ...(bucket === undefined ? {} : { bucket }),
        ...(ttlMs === undefined ? {} : { ttlMs }),
        ...(refreshMs === undefined ? {} : { refreshMs }),
        ...(onWarn === undefined ? {} : { onWarn })
      })
      registrations.push(reg)
      await reg.start()
    }
  } catch (err) {
    await close()
    throw err
  }
  return { nats, registrations, kv, close }
}
