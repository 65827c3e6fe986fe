/**
 * Counters of one KV event source (one worker), as plain numbers: the gateway reads them when it
 * renders /metrics (each is monotonic; export as Prometheus counters labelled by worker).
 */
export class KvSourceCounters {
  /** Batches applied (live and replayed). */
  batches: number
  /** Events applied (all kinds). */
  events: number
  /** BlockStored events applied, and the blocks they carried. */
  stores: number
  storedBlocks: number
  /** BlockRemoved events applied, and the blocks they named. */
  removals: number
  removedBlocks: number
  /** AllBlocksCleared events. */
  clears: number
  /** Events skipped on purpose: unknown type, non-GPU medium, KV cache group > 0, other block size. */
  ignoredEvents: number
  /** BlockStored whose token_ids do not cover its blocks (skipped). */
  malformedEvents: number
  /** Batches that failed to decode (msgpack or shape errors). */
  decodeErrors: number
  /** Sequence gaps seen on the live stream (after the first batch). */
  gaps: number
  /** Replay requests sent, and batches received through them. */
  replays: number
  replayedBatches: number
  /** Replay requests that timed out or failed. */
  replayFailures: number
  /** Batches lost for good (not in the engine's replay buffer, or no replay endpoint). */
  lostBatches: number
  /** Engine restarts detected (sequence went back): the worker's blocks were cleared. */
  restarts: number
  /** Batches dropped because the worker is no longer in the index (close the source when removing a worker). */
  orphanBatches: number

  constructor () {
    this.batches = 0
    this.events = 0
    this.stores = 0
    this.storedBlocks = 0
    this.removals = 0
    this.removedBlocks = 0
    this.clears = 0
    this.ignoredEvents = 0
    this.malformedEvents = 0
    this.decodeErrors = 0
    this.gaps = 0
    this.replays = 0
    this.replayedBatches = 0
    this.replayFailures = 0
    this.lostBatches = 0
    this.restarts = 0
    this.orphanBatches = 0
  }
}
