import { InProcessKvEventSource, KvIndex, ZmqKvEventSource, type InProcessKvEngine } from '../kv/index.js'
import type { KvEventCoverage } from './kv.js'

interface Source { readonly model: string, readonly counters: { gaps: number, replays: number, clears: number, events: number }, close (): Promise<void> }

/**
 * The gateway's side of the KV event plane: one KV index per model, and one event source per
 * worker that publishes events (ZMQ for vLLM/SGLang/mocker processes, in-process for the embedded
 * fleet). The kv policies read the indexes; sources write them beside the request path.
 */
export class KvPlane implements KvEventCoverage {
  readonly indexes = new Map<string, KvIndex>()
  private readonly sources = new Map<string, Source>()

  indexFor (model: string, blockSize: number): KvIndex {
    let index = this.indexes.get(model)
    if (index === undefined) {
      index = new KvIndex({ blockSize })
      this.indexes.set(model, index)
    }
    return index
  }

  hasEvents (workerId: string): boolean {
    return this.sources.has(workerId)
  }

  attachInProcess (model: string, workerId: string, engine: InProcessKvEngine, blockSize: number): void {
    if (this.sources.has(workerId)) return
    const src = new InProcessKvEventSource(this.indexFor(model, blockSize), engine, { workerId })
    this.sources.set(workerId, Object.assign(src, { model }))
  }

  attachZmq (model: string, workerId: string, endpoint: string, replayEndpoint: string | null, blockSize: number): void {
    if (this.sources.has(workerId)) return
    const src = new ZmqKvEventSource(this.indexFor(model, blockSize), { workerId, endpoint, replayEndpoint })
    this.sources.set(workerId, Object.assign(src, { model }))
  }

  /** A worker left: stop its source and forget its blocks. */
  async detach (workerId: string): Promise<void> {
    const src = this.sources.get(workerId)
    this.sources.delete(workerId)
    await src?.close()
    for (const index of this.indexes.values()) index.removeWorker(workerId)
  }

  /** Event counters summed per model, for /metrics. */
  counters (): Array<{ model: string, workerId: string, events: number, gaps: number, replays: number, clears: number }> {
    return [...this.sources].map(([workerId, s]) => ({ model: s.model, workerId, events: s.counters.events, gaps: s.counters.gaps, replays: s.counters.replays, clears: s.counters.clears }))
  }

  async close (): Promise<void> {
    await Promise.all([...this.sources.values()].map(s => s.close()))
    this.sources.clear()
  }
}
