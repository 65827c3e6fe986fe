/**
 * Block keys: our local block hashes (DESIGN 4.3, the values `hash.ts` computes as BigInts) held as
 * int32 (hi, lo) pairs in one reusable Int32Array, and the keyer that computes them from token ids.
 *
 * The index, the event decoder and request lookups all speak this form, so no BigInt is made on the
 * hot path: the keyer runs XXH3 in JavaScript (xxh3.ts) straight from the token words, and
 * `fromBigInts` / `toBigInts` convert at the edges (hash.ts users, tests).
 *
 * @example
 * const keyer = new BlockKeyer(16)
 * const keys = keyer.keys(promptTokenIds, new BlockKeys()) // one key per full block
 * index.lookup(keys, scores)
 */
import { KV_HASH_SEED } from './hash.js'
import { Xxh3, pairToBigInt } from './xxh3.js'
import { KvOptionError } from './errors.js'

export class BlockKeys {
  /** [hi0, lo0, hi1, lo1, ...]: key i at 2i, 2i+1. */
  data: Int32Array
  /** Keys in use. */
  length: number

  constructor (capacity = 64) {
    this.data = new Int32Array(2 * Math.max(1, capacity))
    this.length = 0
  }

  /** Makes room for `n` keys (contents up to `length` are kept). */
  ensure (n: number): void {
    if (2 * n <= this.data.length) return
    let cap = this.data.length
    while (cap < 2 * n) cap *= 2
    const d = new Int32Array(cap)
    d.set(this.data.subarray(0, 2 * this.length))
    this.data = d
  }

  /** Fills from BigInt hashes (e.g. `BlockHasher.localHashes`). */
  fromBigInts (hashes: readonly bigint[]): this {
    this.ensure(hashes.length)
    for (let i = 0; i < hashes.length; i++) splitU64(hashes[i]!, this.data, 2 * i)
    this.length = hashes.length
    return this
  }

  toBigInts (): bigint[] {
    const out: bigint[] = []
    for (let i = 0; i < this.length; i++) out.push(pairToBigInt(this.data[2 * i]!, this.data[2 * i + 1]!))
    return out
  }
}

const splitView = new DataView(new ArrayBuffer(8))

/** Writes a u64 BigInt (taken modulo 2^64) as int32 (hi, lo) to out[at], out[at+1]; no allocation. */
export function splitU64 (h: bigint, out: Int32Array, at: number): void {
  splitView.setBigUint64(0, h)
  out[at] = splitView.getInt32(0)
  out[at + 1] = splitView.getInt32(4)
}

/** Computes local block keys of token sequences for one block size. */
export class BlockKeyer {
  readonly blockSize: number
  private readonly xxh: Xxh3
  /** Scratch for tokens that do not arrive as a Uint32Array. */
  private words: Uint32Array

  constructor (blockSize: number, seed: bigint = KV_HASH_SEED) {
    if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 1 << 16) {
      throw new KvOptionError(`block size must be an integer from 1 to 65536, got ${String(blockSize)}`)
    }
    this.blockSize = blockSize
    this.xxh = new Xxh3(seed)
    this.words = new Uint32Array(1024)
  }

  /** Replaces `out` with the keys of every full block of `tokens`; returns `out`. */
  keys (tokens: ArrayLike<number>, out: BlockKeys): BlockKeys {
    const bs = this.blockSize
    const blocks = Math.floor(tokens.length / bs)
    out.ensure(blocks)
    let words: Uint32Array
    if (tokens instanceof Uint32Array) words = tokens
    else {
      const n = blocks * bs
      if (this.words.length < n) this.words = new Uint32Array(Math.max(n, 2 * this.words.length))
      words = this.words
      for (let i = 0; i < n; i++) words[i] = tokens[i]!
    }
    this.keysOfWords(words, 0, blocks, out.data, 0)
    out.length = blocks
    return out
  }

  /** Writes the keys of `blocks` consecutive blocks starting at words[start] to out[at...]. */
  keysOfWords (words: Uint32Array, start: number, blocks: number, out: Int32Array, at: number): void {
    const bs = this.blockSize
    for (let b = 0; b < blocks; b++) this.xxh.hashWords(words, start + b * bs, bs, out, at + 2 * b)
  }
}
