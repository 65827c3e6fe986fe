/**
 * A forward-only MessagePack reader over one buffer, for the few shapes KV events use. It builds no
 * object graph: callers read headers and scalars where they expect them and skip the rest, so a
 * batch decodes without allocating per block (msgpackr would allocate an array per event, a BigInt
 * per 64-bit hash and a number array for the tokens).
 *
 * Errors throw KvDecodeError with the byte offset.
 */
import { KvDecodeError } from './errors.js'

const utf8 = new TextDecoder()

export class MsgpackCursor {
  buf: Uint8Array
  view: DataView
  pos: number

  constructor () {
    this.buf = new Uint8Array(0)
    this.view = new DataView(this.buf.buffer)
    this.pos = 0
  }

  reset (buf: Uint8Array): void {
    this.buf = buf
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    this.pos = 0
  }

  fail (what: string): never {
    throw new KvDecodeError(what, this.pos)
  }

  peek (): number {
    if (this.pos >= this.buf.length) this.fail('unexpected end of batch')
    return this.buf[this.pos]!
  }

  /** True (and consumes it) when the next value is nil. */
  nil (): boolean {
    if (this.peek() !== 0xc0) return false
    this.pos++
    return true
  }

  /** Element count of an array header; −1 (nothing consumed) when the next value is not an array. */
  arrayHeader (): number {
    const b = this.peek()
    if (b >= 0x90 && b <= 0x9f) {
      this.pos++
      return b & 0x0f
    }
    if (b === 0xdc) return this.len16()
    if (b === 0xdd) return this.len32()
    return -1
  }

  /** Entry count of a map header; −1 (nothing consumed) when the next value is not a map. */
  mapHeader (): number {
    const b = this.peek()
    if (b >= 0x80 && b <= 0x8f) {
      this.pos++
      return b & 0x0f
    }
    if (b === 0xde) return this.len16()
    if (b === 0xdf) return this.len32()
    return -1
  }

  /** Byte length of a str or bin value, leaving `pos` at its first byte; −1 when it is neither. */
  bytesHeader (): number {
    const b = this.peek()
    if (b >= 0xa0 && b <= 0xbf) {
      this.pos++
      return b & 0x1f
    }
    switch (b) {
      case 0xd9: case 0xc4: return this.len8()
      case 0xda: case 0xc5: return this.len16()
      case 0xdb: case 0xc6: return this.len32()
      default: return -1
    }
  }

  /** A string value (allocates: used for rare fields such as lora_name). */
  str (): string {
    const n = this.bytesHeader()
    if (n < 0) this.fail('expected a string')
    const s = utf8.decode(this.buf.subarray(this.pos, this.pos + n))
    this.pos += n
    return s
  }

  /** Whether the next value is a str/bin equal to the ASCII `expect` (consumed either way when it is a str/bin). */
  bytesEqual (expect: Uint8Array): boolean {
    const n = this.bytesHeader()
    if (n < 0) {
      this.skip()
      return false
    }
    const at = this.pos
    this.need(n)
    this.pos += n
    if (n !== expect.length) return false
    const buf = this.buf
    for (let i = 0; i < n; i++) if (buf[at + i] !== expect[i]) return false
    return true
  }

  /** An integer that fits a double exactly (the `uint`/`int` families); fails otherwise. */
  int (): number {
    const b = this.peek()
    if (b <= 0x7f) {
      this.pos++
      return b
    }
    if (b >= 0xe0) {
      this.pos++
      return b - 0x100
    }
    const v = this.view
    const p = this.pos + 1
    switch (b) {
      case 0xcc: this.need(2); this.pos += 2; return this.buf[p]!
      case 0xcd: this.need(3); this.pos += 3; return v.getUint16(p)
      case 0xce: this.need(5); this.pos += 5; return v.getUint32(p)
      case 0xd0: this.need(2); this.pos += 2; return v.getInt8(p)
      case 0xd1: this.need(3); this.pos += 3; return v.getInt16(p)
      case 0xd2: this.need(5); this.pos += 5; return v.getInt32(p)
      case 0xcf: case 0xd3: {
        this.need(9)
        const hi = b === 0xcf ? v.getUint32(p) : v.getInt32(p)
        const n = hi * 0x100000000 + v.getUint32(p + 4)
        if (!Number.isSafeInteger(n)) this.fail('integer out of range')
        this.pos += 9
        return n
      }
      default: return this.fail('expected an integer')
    }
  }

  /** A number (float64, float32 or integer). */
  num (): number {
    const b = this.peek()
    if (b === 0xcb) {
      this.need(9)
      const x = this.view.getFloat64(this.pos + 1)
      this.pos += 9
      return x
    }
    if (b === 0xca) {
      this.need(5)
      const x = this.view.getFloat32(this.pos + 1)
      this.pos += 5
      return x
    }
    return this.int()
  }

  /**
   * An opaque 64-bit id (an engine's block hash) as int32 (hi, lo) into out[at], out[at+1]:
   * integers by their 64-bit two's-complement bits (uint64 and int64 alike, no BigInt); byte
   * strings of up to 8 bytes as a big-endian number; longer ones (e.g. SHA-256 digests) folded to
   * 64 bits by `foldBytes`.
   */
  hash (out: Int32Array, at: number): void {
    const b = this.peek()
    const v = this.view
    const p = this.pos + 1
    if (b <= 0x7f || b >= 0xe0) {
      out[at] = b >= 0xe0 ? -1 : 0
      out[at + 1] = b >= 0xe0 ? b - 0x100 : b
      this.pos++
      return
    }
    switch (b) {
      case 0xcf: case 0xd3:
        this.need(9)
        out[at] = v.getInt32(p)
        out[at + 1] = v.getInt32(p + 4)
        this.pos += 9
        return
      case 0xcc: case 0xcd: case 0xce: case 0xd0: case 0xd1: case 0xd2: {
        const n = this.int()
        out[at] = n < 0 ? -1 : 0
        out[at + 1] = n | 0
        return
      }
    }
    const n = this.bytesHeader()
    if (n < 0) this.fail('expected a block hash (integer or bytes)')
    this.need(n)
    const buf = this.buf
    const start = this.pos
    if (n <= 8) {
      let hi = 0
      let lo = 0
      for (let i = 0; i < n; i++) {
        hi = (hi << 8) | (lo >>> 24)
        lo = (lo << 8) | buf[start + i]!
      }
      out[at] = hi
      out[at + 1] = lo
    } else {
      foldBytes(buf, start, n, out, at)
    }
    this.pos += n
  }

  /** Skips one value of any type. */
  skip (): void {
    let pending = 1
    while (pending > 0) {
      pending--
      const b = this.peek()
      if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
        this.pos++
        continue
      }
      let n = this.arrayHeader()
      if (n >= 0) {
        pending += n
        continue
      }
      n = this.mapHeader()
      if (n >= 0) {
        pending += 2 * n
        continue
      }
      n = this.bytesHeader()
      if (n >= 0) {
        this.need(n)
        this.pos += n
        continue
      }
      switch (b) {
        case 0xcc: case 0xd0: this.advance(2); break
        case 0xcd: case 0xd1: this.advance(3); break
        case 0xce: case 0xd2: case 0xca: this.advance(5); break
        case 0xcf: case 0xd3: case 0xcb: this.advance(9); break
        case 0xd4: this.advance(3); break
        case 0xd5: this.advance(4); break
        case 0xd6: this.advance(6); break
        case 0xd7: this.advance(10); break
        case 0xd8: this.advance(18); break
        case 0xc7: { const len = this.len8(); this.advance(1 + len); break }
        case 0xc8: { const len = this.len16(); this.advance(1 + len); break }
        case 0xc9: { const len = this.len32(); this.advance(1 + len); break }
        default: this.fail(`invalid msgpack byte 0x${b.toString(16)}`)
      }
    }
  }

  need (n: number): void {
    if (this.pos + n > this.buf.length) this.fail('unexpected end of batch')
  }

  private advance (n: number): void {
    this.need(n)
    this.pos += n
  }

  private len8 (): number {
    this.need(2)
    const n = this.buf[this.pos + 1]!
    this.pos += 2
    return n
  }

  private len16 (): number {
    this.need(3)
    const n = this.view.getUint16(this.pos + 1)
    this.pos += 3
    return n
  }

  private len32 (): number {
    this.need(5)
    const n = this.view.getUint32(this.pos + 1)
    this.pos += 5
    return n
  }
}

/**
 * Folds a long byte string into 64 bits: two independent 32-bit multiply-rotate lanes (murmur3's
 * mixing constants) over 4-byte words, then a final avalanche of each lane with the length. Engine
 * hashes only need to stay distinct within one worker's cache, so 64 well-mixed bits suffice.
 */
export function foldBytes (buf: Uint8Array, start: number, n: number, out: Int32Array, at: number): void {
  let h1 = 0x9747b28c ^ n
  let h2 = 0x85ebca6b ^ n
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const k = buf[start + i]! | (buf[start + i + 1]! << 8) | (buf[start + i + 2]! << 16) | (buf[start + i + 3]! << 24)
    h1 = Math.imul(rotl(Math.imul(k, 0xcc9e2d51), 15), 0x1b873593) ^ h1
    h1 = Math.imul(rotl(h1, 13), 5) + 0xe6546b64
    h2 = Math.imul(rotl(Math.imul(k ^ h1, 0x85ebca77), 17), 0xc2b2ae3d) ^ h2
    h2 = Math.imul(rotl(h2, 11), 9) + 0x27d4eb2f
  }
  let tail = 0
  for (let s = 0; i < n; i++, s += 8) tail |= buf[start + i]! << s
  h1 ^= Math.imul(rotl(Math.imul(tail, 0xcc9e2d51), 15), 0x1b873593)
  h2 ^= Math.imul(tail, 0x9e3779b1)
  out[at] = fmix(h1 ^ h2)
  out[at + 1] = fmix(h2 + h1)
}

function rotl (x: number, r: number): number {
  return (x << r) | (x >>> (32 - r))
}

function fmix (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}
