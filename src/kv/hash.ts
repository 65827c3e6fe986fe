/**
 * Block hashing shared by the router's KV index and the mock engine (DESIGN 4.3).
 *
 * - local hash of a full block = XXH3-64(seed 1337) over its token ids as little-endian u32;
 * - sequence hash: seq[0] = local[0]; seq[i] = XXH3-64(seed 1337, LE u64 seq[i-1] ‖ LE u64 local[i]).
 *
 * These are Dynamo's definitions, so hashes agree with its tools. Only full blocks are hashed.
 *
 * Cost notes: the native xxh3 returns a BigInt, so each hash allocates exactly one; everything else
 * (the token bytes, the 16-byte chain input) goes through buffers owned by the hasher and reused.
 *
 * @example
 * const hasher = new BlockHasher(64)
 * const hashes = hasher.sequenceHashes(tokenIds) // one bigint per full block
 */
import { xxh3 } from '@node-rs/xxhash'
import { endianness } from 'node:os'

export const KV_HASH_SEED = 1337n

const LITTLE_ENDIAN_HOST = endianness() === 'LE'

export class BlockHasher {
  readonly blockSize: number
  readonly seed: bigint
  // Token bytes of one block; on little-endian hosts the Uint32Array view writes them in wire order.
  private readonly blockWords: Uint32Array
  private readonly blockBytes: Uint8Array
  private readonly blockView: DataView
  private readonly pair: Uint8Array
  private readonly pairView: DataView

  constructor (blockSize: number, seed: bigint = KV_HASH_SEED) {
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`block size must be a positive integer, got ${blockSize}`)
    this.blockSize = blockSize
    this.seed = seed
    this.blockWords = new Uint32Array(blockSize)
    this.blockBytes = new Uint8Array(this.blockWords.buffer)
    this.blockView = new DataView(this.blockWords.buffer)
    this.pair = new Uint8Array(16)
    this.pairView = new DataView(this.pair.buffer)
  }

  /** Local hash of the block starting at `start` (tokens[start .. start+blockSize) must exist). */
  localHash (tokens: ArrayLike<number>, start: number): bigint {
    const bs = this.blockSize
    if (LITTLE_ENDIAN_HOST) {
      const words = this.blockWords
      for (let i = 0; i < bs; i++) words[i] = tokens[start + i]!
    } else {
      const view = this.blockView
      for (let i = 0; i < bs; i++) view.setUint32(i * 4, tokens[start + i]!, true)
    }
    return xxh3.xxh64(this.blockBytes, this.seed)
  }

  /** seq[i] from seq[i-1] and local[i]. */
  chain (parentSeqHash: bigint, localHash: bigint): bigint {
    this.pairView.setBigUint64(0, parentSeqHash, true)
    this.pairView.setBigUint64(8, localHash, true)
    return xxh3.xxh64(this.pair, this.seed)
  }

  /**
   * Appends the sequence hashes of full blocks `out.length .. floor(numTokens / blockSize)` to `out`
   * and returns it, so a growing sequence is hashed incrementally (`out` holds the earlier ones).
   */
  extendSequenceHashes (tokens: ArrayLike<number>, numTokens: number, out: bigint[]): bigint[] {
    const bs = this.blockSize
    const full = Math.floor(Math.min(numTokens, tokens.length) / bs)
    for (let i = out.length; i < full; i++) {
      const local = this.localHash(tokens, i * bs)
      out.push(i === 0 ? local : this.chain(out[i - 1]!, local))
    }
    return out
  }

  /** Sequence hashes of every full block of `tokens`. */
  sequenceHashes (tokens: ArrayLike<number>): bigint[] {
    return this.extendSequenceHashes(tokens, tokens.length, [])
  }

  /** Local hashes of every full block (what the KV index keys its radix tree by). */
  localHashes (tokens: ArrayLike<number>): bigint[] {
    const out: bigint[] = []
    const full = Math.floor(tokens.length / this.blockSize)
    for (let i = 0; i < full; i++) out.push(this.localHash(tokens, i * this.blockSize))
    return out
  }
}
