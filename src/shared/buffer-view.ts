/**
 * Views of one long-lived buffer (a socket read buffer) made for less than Buffer#subarray costs.
 *
 * Why: a proxied request cuts several views out of its read buffers (each read, its body, the
 * worker's answer body), and subarray is dear on node 20: the species lookup, a call into C++
 * for the source's ArrayBuffer, node's FastBuffer constructor. A view made from the ArrayBuffer
 * and offset read once, as an instance of a plain Uint8Array subclass, costs 0.41x the user-space
 * instructions of a subarray, and a copy out of the buffer 0.56x of Buffer.from(subarray)
 * (`npm run bench -- primitives`). Its prototype is Buffer.prototype, so it is a Buffer to every
 * caller (Buffer.isBuffer, toString, copy...).
 */
import { Buffer } from 'node:buffer'

class BufferView extends Uint8Array {}
Object.setPrototypeOf(BufferView.prototype, Buffer.prototype)

export class BufferViews {
  /** The buffer the views are cut from. */
  readonly base: Buffer
  private readonly bytes: ArrayBuffer
  private readonly offset: number

  constructor (base: Buffer) {
    this.base = base
    this.bytes = base.buffer as ArrayBuffer
    this.offset = base.byteOffset
  }

  /** base[start, end) as a Buffer sharing its memory. */
  view (start: number, end: number): Buffer {
    return new BufferView(this.bytes, this.offset + start, end - start) as unknown as Buffer
  }

  /** A copy of base[start, end) in a Buffer of its own. */
  copy (start: number, end: number): Buffer {
    const out = Buffer.allocUnsafe(end - start)
    out.set(this.view(start, end))
    return out
  }
}

/**
 * `b` as a view (itself when it is one already), for code whose loops should see one kind of
 * buffer: V8 compiles a loop that has seen both node's Buffers and these views with a map check
 * per access (~3.5% more instructions per answer head when one parse in 128 got a Buffer). A
 * call into C++ for the ArrayBuffer: for the rare inputs that are not views of a read.
 */
export function asView (b: Buffer): Buffer {
  return b instanceof BufferView ? b : new BufferView(b.buffer as ArrayBuffer, b.byteOffset, b.length) as unknown as Buffer
}
