/**
 * Applies one worker's decoded KV events to the index: computes our block keys from the event's
 * token ids (DESIGN 4.3 — whatever hash the engine uses, the router's lookups agree with us) and
 * keeps the engine's hashes only as ids for parents and removals.
 *
 * Skipped on purpose (counted in `ignoredEvents`): unknown event types; blocks on another medium
 * than the GPU (vLLM's CPU offload tier reports the same hashes, and removing them from one tier
 * must not drop the other); KV cache groups other than 0 (hybrid models publish one stream per
 * group for the same tokens); events whose block size differs from the index's.
 */
import { BlockKeys } from './block-keys.js'
import type { BlockKeyer } from './block-keys.js'
import type { KvSourceCounters } from './counters.js'
import { isIndexedTier, loraOf, type DecodedBlocks, type KvEventSink } from './event-decoder.js'
import type { KvIndex } from './kv-index.js'

export class WorkerEventApplier implements KvEventSink {
  readonly index: KvIndex
  readonly slot: number
  readonly counters: KvSourceCounters
  private readonly keyer: BlockKeyer
  private readonly keys: BlockKeys

  constructor (index: KvIndex, slot: number, keyer: BlockKeyer, counters: KvSourceCounters) {
    this.index = index
    this.slot = slot
    this.keyer = keyer
    this.counters = counters
    this.keys = new BlockKeys(128)
  }

  stored (ev: DecodedBlocks): void {
    const counters = this.counters
    counters.events++
    const bs = ev.blockSize > 0 ? ev.blockSize : this.keyer.blockSize
    if (!isIndexedTier(ev) || bs !== this.keyer.blockSize) {
      counters.ignoredEvents++
      return
    }
    const n = ev.count
    if (ev.tokenCount !== n * bs) {
      counters.malformedEvents++
      return
    }
    const keys = this.keys
    keys.ensure(n)
    this.keyer.keysOfWords(ev.tokens, 0, n, keys.data, 0)
    const lora = loraOf(ev)
    const root = lora === null ? this.index.baseRoot : this.index.rootFor(lora, true)
    this.index.storeBlocks(this.slot, ev.engine, keys.data, n, ev.hasParent ? ev.parent : null, root)
    counters.stores++
    counters.storedBlocks += n
  }

  removed (ev: DecodedBlocks): void {
    const counters = this.counters
    counters.events++
    if (!isIndexedTier(ev)) {
      counters.ignoredEvents++
      return
    }
    this.index.removeBlocks(this.slot, ev.engine, ev.count)
    counters.removals++
    counters.removedBlocks += ev.count
  }

  cleared (): void {
    this.counters.events++
    this.index.clearWorker(this.slot)
    this.counters.clears++
  }

  unknown (): void {
    this.counters.events++
    this.counters.ignoredEvents++
  }
}
