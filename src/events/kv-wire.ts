/**
 * KV events on the `kv` topic: decoded once at the source (the mock engine's own events, or a
 * vLLM/SGLang ZMQ stream decoded by the registrar) and re-encoded in one compact form, so gateways
 * never parse vLLM's map-or-legacy-array variants again:
 *
 *   stored:  [1, hashes, parent, tokens, block_size, lora_name]
 *   removed: [2, hashes]
 *   cleared: [3]
 *
 * `hashes` is a bin of 8 bytes per block (engine hash, u64 big-endian), `parent` a bin of 8 bytes or
 * nil, `tokens` a bin of u32 little-endian token ids (all stored blocks', concatenated). Only GPU
 * blocks of KV cache group 0 are published (the source drops other tiers and groups).
 */
import { Buffer } from 'node:buffer'
import type { InProcessKvEvent } from '../kv/index.js'

const STORED = 1
const REMOVED = 2
const CLEARED = 3

const CLEARED_WIRE = Object.freeze([CLEARED])

export type WireKvEvent = unknown[]

function hashesToBin (hashes: readonly bigint[]): Buffer {
  const b = Buffer.allocUnsafe(8 * hashes.length)
  for (let i = 0; i < hashes.length; i++) b.writeBigUInt64BE(BigInt.asUintN(64, hashes[i]!), 8 * i)
  return b
}

function tokensToBin (tokens: ArrayLike<number>): Buffer {
  if (tokens instanceof Uint32Array) return Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength)
  const b = Buffer.allocUnsafe(4 * tokens.length)
  for (let i = 0; i < tokens.length; i++) b.writeUInt32LE(tokens[i]! >>> 0, 4 * i)
  return b
}

/** One event in wire form; null for events that are not published (another medium than the GPU). */
export function toWire (e: InProcessKvEvent): WireKvEvent | null {
  switch (e.type) {
    case 'BlockStored': {
      if (e.medium !== undefined && e.medium !== null && e.medium !== 'GPU') return null
      const parent = e.parentBlockHash === null ? null : hashesToBin([e.parentBlockHash])
      return [STORED, hashesToBin(e.blockHashes), parent, tokensToBin(e.tokenIds), e.blockSize, e.loraName ?? null]
    }
    case 'BlockRemoved':
      if (e.medium !== undefined && e.medium !== null && e.medium !== 'GPU') return null
      return [REMOVED, hashesToBin(e.blockHashes)]
    case 'AllBlocksCleared':
      return CLEARED_WIRE as WireKvEvent
    default:
      return null
  }
}

function binOf (v: unknown): Uint8Array | null {
  return v instanceof Uint8Array ? v : null
}

function readHashes (bin: Uint8Array): bigint[] {
  const n = bin.byteLength >>> 3
  const dv = new DataView(bin.buffer, bin.byteOffset, bin.byteLength)
  const out = new Array<bigint>(n)
  for (let i = 0; i < n; i++) out[i] = dv.getBigUint64(8 * i, false)
  return out
}

function readTokens (bin: Uint8Array): Uint32Array {
  const n = bin.byteLength >>> 2
  // A bin inside a msgpack message is rarely 4-byte aligned: copy it into an aligned array.
  const out = new Uint32Array(n)
  new Uint8Array(out.buffer).set(bin.subarray(0, 4 * n))
  if (!LITTLE_ENDIAN) for (let i = 0; i < n; i++) out[i] = new DataView(out.buffer).getUint32(4 * i, true)
  return out
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** Decodes one wire event; null when malformed. */
export function fromWire (w: unknown): InProcessKvEvent | null {
  if (!Array.isArray(w)) return null
  switch (w[0]) {
    case STORED: {
      const hashes = binOf(w[1])
      const tokens = binOf(w[3])
      const parent = binOf(w[2])
      const blockSize = w[4]
      if (hashes === null || tokens === null || typeof blockSize !== 'number') return null
      const lora = typeof w[5] === 'string' ? w[5] : null
      return { type: 'BlockStored', blockHashes: readHashes(hashes), parentBlockHash: parent === null ? null : readHashes(parent)[0] ?? null, tokenIds: readTokens(tokens), blockSize, loraName: lora, medium: null }
    }
    case REMOVED: {
      const hashes = binOf(w[1])
      if (hashes === null) return null
      return { type: 'BlockRemoved', blockHashes: readHashes(hashes), medium: null }
    }
    case CLEARED:
      return { type: 'AllBlocksCleared' }
    default:
      return null
  }
}

interface MirrorBlock {
  readonly parent: bigint | null
  readonly tokens: Uint32Array
  readonly blockSize: number
  readonly lora: string | null
}

/**
 * The blocks a worker holds, as its own events describe them: what a publisher answers a snapshot
 * request with. Kept beside the engine (one entry per cached block: its parent, its tokens), so
 * it works the same for the mock engine and for a vLLM followed over ZMQ.
 */
export class BlockMirror {
  private readonly blocks = new Map<bigint, MirrorBlock>()

  get size (): number {
    return this.blocks.size
  }

  apply (e: InProcessKvEvent): void {
    switch (e.type) {
      case 'BlockStored': {
        if (e.medium !== undefined && e.medium !== null && e.medium !== 'GPU') return
        const bs = e.blockSize
        const lora = e.loraName ?? null
        let parent = e.parentBlockHash
        const toks = e.tokenIds
        for (let i = 0; i < e.blockHashes.length; i++) {
          const h = e.blockHashes[i]!
          const t = new Uint32Array(bs)
          for (let j = 0; j < bs; j++) t[j] = toks[i * bs + j] ?? 0
          this.blocks.delete(h) // re-stored: moves to the end of the insertion order
          this.blocks.set(h, { parent, tokens: t, blockSize: bs, lora })
          parent = h
        }
        return
      }
      case 'BlockRemoved':
        if (e.medium !== undefined && e.medium !== null && e.medium !== 'GPU') return
        for (const h of e.blockHashes) this.blocks.delete(h)
        return
      case 'AllBlocksCleared':
        this.blocks.clear()
    }
  }

  /**
   * Every block as `stored` wire events, parents before children, consecutive chains merged into
   * one event; cut into chunks of at most `maxBytes` (approximately) so each fits a NATS message.
   */
  snapshot (maxBytes: number): WireKvEvent[][] {
    const chunks: WireKvEvent[][] = []
    let chunk: WireKvEvent[] = []
    let chunkBytes = 0
    const done = new Set<bigint>()
    let run: bigint[] = []
    let runTokens: Uint32Array[] = []
    let runParent: bigint | null = null
    let runBs = 0
    let runLora: string | null = null
    const flushRun = (): void => {
      if (run.length === 0) return
      const tokens = new Uint32Array(run.length * runBs)
      for (let i = 0; i < runTokens.length; i++) tokens.set(runTokens[i]!, i * runBs)
      chunk.push([STORED, hashesToBin(run), runParent === null ? null : hashesToBin([runParent]), tokensToBin(tokens), runBs, runLora])
      chunkBytes += 16 + 8 * run.length + tokens.byteLength
      run = []
      runTokens = []
      if (chunkBytes >= maxBytes) {
        chunks.push(chunk)
        chunk = []
        chunkBytes = 0
      }
    }
    const emit = (h: bigint, b: MirrorBlock): void => {
      done.add(h)
      const last = run.length > 0 ? run[run.length - 1]! : null
      if (last === null || b.parent !== last || b.blockSize !== runBs || b.lora !== runLora) {
        flushRun()
        runParent = b.parent
        runBs = b.blockSize
        runLora = b.lora
      }
      run.push(h)
      runTokens.push(b.tokens)
    }
    const stack: bigint[] = []
    for (const [h, b] of this.blocks) {
      if (done.has(h)) continue
      // Parents first (an explicit stack: chains can be thousands of blocks deep).
      stack.push(h)
      let p = b.parent
      while (p !== null && !done.has(p)) {
        const pb = this.blocks.get(p)
        if (pb === undefined) break
        stack.push(p)
        p = pb.parent
      }
      while (stack.length > 0) {
        const x = stack.pop()!
        if (!done.has(x)) emit(x, this.blocks.get(x)!)
      }
    }
    flushRun()
    if (chunk.length > 0 || chunks.length === 0) chunks.push(chunk)
    return chunks
  }
}
