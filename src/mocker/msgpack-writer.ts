/**
 * A minimal MessagePack writer into one growing, reused buffer, for the few shapes the engine
 * publishes. Written by hand rather than with msgpackr so the wire types match what vLLM's msgspec
 * produces: floats always float64 (msgpackr writes 1.0 as an integer), 64-bit hashes always
 * uint64 (msgpackr writes BigInts below 2^63 as int64), maps as fixmaps. It also skips building an
 * object graph per batch.
 */
import { Buffer } from 'node:buffer'

const textEncoder = new TextEncoder()

export class MsgpackWriter {
  private buf: Uint8Array
  private view: DataView
  private pos: number
  private readonly strings: Map<string, Uint8Array>

  constructor (initialSize = 4096) {
    this.buf = new Uint8Array(initialSize)
    this.view = new DataView(this.buf.buffer)
    this.pos = 0
    this.strings = new Map()
  }

  reset (): void {
    this.pos = 0
  }

  /** A copy of what was written since the last reset (the internal buffer is reused). */
  toBuffer (): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos))
  }

  arrayHeader (n: number): void {
    this.ensure(5)
    if (n < 16) this.buf[this.pos++] = 0x90 | n
    else if (n < 0x10000) {
      this.buf[this.pos++] = 0xdc
      this.view.setUint16(this.pos, n)
      this.pos += 2
    } else {
      this.buf[this.pos++] = 0xdd
      this.view.setUint32(this.pos, n)
      this.pos += 4
    }
  }

  mapHeader (n: number): void {
    this.ensure(5)
    if (n < 16) this.buf[this.pos++] = 0x80 | n
    else if (n < 0x10000) {
      this.buf[this.pos++] = 0xde
      this.view.setUint16(this.pos, n)
      this.pos += 2
    } else {
      this.buf[this.pos++] = 0xdf
      this.view.setUint32(this.pos, n)
      this.pos += 4
    }
  }

  nil (): void {
    this.ensure(1)
    this.buf[this.pos++] = 0xc0
  }

  bool (v: boolean): void {
    this.ensure(1)
    this.buf[this.pos++] = v ? 0xc3 : 0xc2
  }

  /** A non-negative integer below 2^53 in the smallest unsigned form. */
  uint (n: number): void {
    this.ensure(9)
    const b = this.buf
    if (n < 0x80) b[this.pos++] = n
    else if (n < 0x100) {
      b[this.pos++] = 0xcc
      b[this.pos++] = n
    } else if (n < 0x10000) {
      b[this.pos++] = 0xcd
      this.view.setUint16(this.pos, n)
      this.pos += 2
    } else if (n < 0x100000000) {
      b[this.pos++] = 0xce
      this.view.setUint32(this.pos, n)
      this.pos += 4
    } else {
      b[this.pos++] = 0xcf
      this.view.setUint32(this.pos, Math.floor(n / 0x100000000))
      this.view.setUint32(this.pos + 4, n >>> 0)
      this.pos += 8
    }
  }

  /** Any integer that fits a double exactly. */
  int (n: number): void {
    if (n >= 0) {
      this.uint(n)
      return
    }
    this.ensure(9)
    if (n >= -32) this.buf[this.pos++] = n & 0xff
    else {
      this.buf[this.pos++] = 0xd3
      this.view.setBigInt64(this.pos, BigInt(n))
      this.pos += 8
    }
  }

  /** Always the fixed-width uint64 form: block hashes are 64-bit ids, not small numbers. */
  u64 (v: bigint): void {
    this.ensure(9)
    this.buf[this.pos++] = 0xcf
    this.view.setBigUint64(this.pos, v)
    this.pos += 8
  }

  float64 (x: number): void {
    this.ensure(9)
    this.buf[this.pos++] = 0xcb
    this.view.setFloat64(this.pos, x)
    this.pos += 8
  }

  str (s: string): void {
    let bytes = this.strings.get(s)
    if (bytes === undefined) {
      bytes = textEncoder.encode(s)
      // Keys and type names repeat every batch; arbitrary strings are not worth keeping.
      if (this.strings.size < 256) this.strings.set(s, bytes)
    }
    const n = bytes.length
    this.ensure(5 + n)
    if (n < 32) this.buf[this.pos++] = 0xa0 | n
    else if (n < 0x100) {
      this.buf[this.pos++] = 0xd9
      this.buf[this.pos++] = n
    } else if (n < 0x10000) {
      this.buf[this.pos++] = 0xda
      this.view.setUint16(this.pos, n)
      this.pos += 2
    } else {
      this.buf[this.pos++] = 0xdb
      this.view.setUint32(this.pos, n)
      this.pos += 4
    }
    this.buf.set(bytes, this.pos)
    this.pos += n
  }

  private ensure (extra: number): void {
    if (this.pos + extra <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + extra) size *= 2
    const bigger = new Uint8Array(size)
    bigger.set(this.buf.subarray(0, this.pos))
    this.buf = bigger
    this.view = new DataView(bigger.buffer)
  }
}
