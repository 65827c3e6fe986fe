/**
 * The discovery bucket: a JetStream KV bucket whose max age is the records' TTL.
 *
 * Why bucket-level max age and not per-key TTLs: per-key TTLs (and the delete markers that tell
 * watchers a key expired) need nats-server 2.11; Debian's is 2.9. With max age the server drops a
 * record that was not refreshed within the TTL, silently: watchers hear nothing, so gateways also
 * age records themselves (NatsDiscovery).
 */
import { Kvm, type KV } from '@nats-io/kv'
import type { NatsConnection } from '@nats-io/transport-node'

export interface BucketOptions {
  bucket: string
  /** Max age of the records, ms (used only when this call creates the bucket). */
  ttlMs: number
}

/** Opens the bucket, creating it when missing. An existing bucket keeps its own TTL (`ttlOf`). */
export async function openWorkerBucket (nc: NatsConnection, opts: BucketOptions): Promise<KV> {
  const kvm = new Kvm(nc)
  try {
    return await kvm.create(opts.bucket, { ttl: opts.ttlMs, history: 1 })
  } catch (err) {
    // Created by someone else with another configuration (another TTL): use it as it is.
    try {
      return await kvm.open(opts.bucket)
    } catch {
      throw err
    }
  }
}

/** The bucket's max age (ms); `fallback` when it has none. */
export async function ttlOf (kv: KV, fallback: number): Promise<number> {
  const st = await kv.status()
  return st.ttl > 0 ? st.ttl : fallback
}
