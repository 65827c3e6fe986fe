import type { Worker } from '../registry/worker.js'
import { NativeUpstream, type NativeUpstreamOptions } from './native/index.js'

/** A native-transport worker's client, created on first use (kept until the worker drains, like the HTTP pool). */
export function nativeUpstreamFor (worker: Worker, opts: NativeUpstreamOptions): NativeUpstream {
  const c = worker.client
  if (c !== null) return c as NativeUpstream
  const up = new NativeUpstream(worker.nativeUrl!, opts)
  worker.client = up
  return up
}
