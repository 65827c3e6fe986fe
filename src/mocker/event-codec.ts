/**
 * Wire encodings the engine publishes (DESIGN 4.2):
 * - KV event batch: msgpack `[ts float64, events[], dp_rank]`; each event a map with a `type` key
 *   (default) or vLLM's legacy tagged array `[type, ...fields in order]`.
 * - Forward-pass metrics: a msgpack map with snake_case keys (our own format, topic "load").
 * Both reuse one writer per publisher.
 */
import { Buffer } from 'node:buffer'
import type { KvEvent, KvEventBatch } from './kv-events.js'
import { MsgpackWriter } from './msgpack-writer.js'
import type { ForwardPassMetrics } from './pass-metrics.js'

export type KvEventFormat = 'map' | 'legacy'

export class KvBatchEncoder {
  private readonly w: MsgpackWriter
  private readonly format: KvEventFormat

  constructor (format: KvEventFormat = 'map') {
    this.w = new MsgpackWriter()
    this.format = format
  }

  encode (batch: KvEventBatch): Buffer {
    const w = this.w
    w.reset()
    w.arrayHeader(3)
    w.float64(batch.ts)
    w.arrayHeader(batch.events.length)
    for (const e of batch.events) {
      if (this.format === 'map') writeMapEvent(w, e)
      else writeLegacyEvent(w, e)
    }
    w.uint(batch.dpRank)
    return w.toBuffer()
  }
}

function writeHashes (w: MsgpackWriter, hashes: readonly bigint[]): void {
  w.arrayHeader(hashes.length)
  for (const h of hashes) w.u64(h)
}

function writeTokens (w: MsgpackWriter, tokens: Uint32Array): void {
  w.arrayHeader(tokens.length)
  for (let i = 0; i < tokens.length; i++) w.uint(tokens[i]!)
}

function writeMapEvent (w: MsgpackWriter, e: KvEvent): void {
  switch (e.type) {
    case 'BlockStored':
      w.mapHeader(8)
      w.str('type'); w.str('BlockStored')
      w.str('block_hashes'); writeHashes(w, e.blockHashes)
      w.str('parent_block_hash')
      if (e.parentBlockHash === null) w.nil()
      else w.u64(e.parentBlockHash)
      w.str('token_ids'); writeTokens(w, e.tokenIds)
      w.str('block_size'); w.uint(e.blockSize)
      w.str('lora_id'); w.nil()
      w.str('medium'); w.str(e.medium)
      w.str('lora_name'); w.nil()
      return
    case 'BlockRemoved':
      w.mapHeader(3)
      w.str('type'); w.str('BlockRemoved')
      w.str('block_hashes'); writeHashes(w, e.blockHashes)
      w.str('medium'); w.str(e.medium)
      return
    case 'AllBlocksCleared':
      w.mapHeader(1)
      w.str('type'); w.str('AllBlocksCleared')
  }
}

function writeLegacyEvent (w: MsgpackWriter, e: KvEvent): void {
  switch (e.type) {
    case 'BlockStored':
      w.arrayHeader(8)
      w.str('BlockStored')
      writeHashes(w, e.blockHashes)
      if (e.parentBlockHash === null) w.nil()
      else w.u64(e.parentBlockHash)
      writeTokens(w, e.tokenIds)
      w.uint(e.blockSize)
      w.nil()
      w.str(e.medium)
      w.nil()
      return
    case 'BlockRemoved':
      w.arrayHeader(3)
      w.str('BlockRemoved')
      writeHashes(w, e.blockHashes)
      w.str(e.medium)
      return
    case 'AllBlocksCleared':
      w.arrayHeader(1)
      w.str('AllBlocksCleared')
  }
}

/** Keys of the load message, in order (documented in the README). */
export class PassMetricsEncoder {
  private readonly w: MsgpackWriter

  constructor () {
    this.w = new MsgpackWriter(512)
  }

  encode (m: ForwardPassMetrics, unixSeconds: number): Buffer {
    const w = this.w
    w.reset()
    w.mapHeader(18)
    w.str('worker_id'); w.str(m.workerId)
    w.str('dp_rank'); w.uint(m.dpRank)
    w.str('ts'); w.float64(unixSeconds)
    w.str('pass_index'); w.uint(m.passIndex)
    w.str('idle'); w.bool(m.idle)
    w.str('pass_ms'); w.float64(m.passMs)
    w.str('scheduled_requests'); w.uint(m.scheduledRequests)
    w.str('scheduled_prefill_tokens'); w.uint(m.scheduledPrefillTokens)
    w.str('scheduled_decode_tokens'); w.uint(m.scheduledDecodeTokens)
    w.str('preemptions'); w.uint(m.preemptions)
    w.str('running_requests'); w.uint(m.runningRequests)
    w.str('waiting_requests'); w.uint(m.waitingRequests)
    w.str('waiting_tokens'); w.uint(m.waitingTokens)
    w.str('kv_active_blocks'); w.uint(m.kvActiveBlocks)
    w.str('kv_total_blocks'); w.uint(m.kvTotalBlocks)
    w.str('kv_usage'); w.float64(m.kvUsage)
    w.str('prefix_cache_hit_rate'); w.float64(m.prefixCacheHitRate)
    w.str('timestamp_ms'); w.float64(m.timestampMs)
    return w.toBuffer()
  }
}
