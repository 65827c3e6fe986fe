/**
 * XXH3-64 with a seed, in plain JavaScript, over inputs made of little-endian u32 words (token ids,
 * or the LE u64 pair of a chain step). It returns the same values as the native `xxh3.xxh64` that
 * `hash.ts` uses (test/kv/xxh3.test.ts checks every length class against it), but as two int32
 * halves written into a caller's Int32Array instead of a BigInt.
 *
 * Why not the native function: on the machines we measure, one N-API call plus its BigInt result
 * costs 0.5–0.9 µs per 16-token block, which alone caps event ingestion below 2 M blocks/s; this
 * version does a 16-token block in about a tenth of that and allocates nothing.
 *
 * 64-bit values are (hi, lo) pairs of uint32 numbers; products are built from 16-bit limbs so every
 * intermediate stays an exact double. Inputs are whole words, so lengths 1–3 never occur.
 * Algorithm: xxHash 0.8 (XXH3_64bits_withSeed), scalar path.
 *
 * @example
 * const h = new Xxh3(1337n)
 * const out = new Int32Array(2)
 * h.hashWords(Uint32Array.of(1, 2, 3, 4), 0, 4, out, 0) // out = [hi, lo] of xxh3.xxh64(bytes, 1337n)
 */

const K_SECRET = Uint8Array.from([
  0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
  0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
  0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
  0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
  0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
  0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
  0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
  0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
  0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
  0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
  0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
  0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e
])
const SECRET_SIZE = 192
const SECRET_SIZE_MIN = 136
const MASK64 = (1n << 64n) - 1n

// Primes as (hi, lo).
const P32_1 = 0x9e3779b1
const P32_2 = 0x85ebca77
const P32_3 = 0xc2b2ae3d
const P64_1_HI = 0x9e3779b1; const P64_1_LO = 0x85ebca87
const P64_2_HI = 0xc2b2ae3d; const P64_2_LO = 0x27d4eb4f
const P64_3_HI = 0x165667b1; const P64_3_LO = 0x9e3779f9
const P64_4_HI = 0x85ebca77; const P64_4_LO = 0xc2b2ae63
const P64_5_HI = 0x27d4eb2f; const P64_5_LO = 0x165667c5
const AVAL_HI = 0x16566791; const AVAL_LO = 0x9e3779f9
const RRMX_HI = 0x9fb21c65; const RRMX_LO = 0x1e98df25

// Registers of the 64-bit helpers. Helpers exchange 64-bit values through these typed arrays,
// never through arguments or return values: a uint32 above 2^30 that crosses a call boundary V8 did
// not inline (or lands in a module-level `let`) is boxed as a heap number — measured at ~130 bytes
// of garbage and a 3× slowdown per hash before this layout.
/** Result [hi, lo]. */
const R = new Uint32Array(2)
/** Operands of mulFold: [aHi, aLo, bHi, bLo]. */
const F = new Uint32Array(4)
/** Running accumulator [hi, lo] of the mid-size paths. */
const A = new Uint32Array(2)

const TWO16 = 0x10000
const TWO32 = 0x100000000
// Multiplying by an exact power-of-two reciprocal is exact and avoids a division.
const INV16 = 1 / TWO16
const INV32 = 1 / TWO32

// 32×32-bit products: a × (b split in 16-bit limbs) keeps each partial product below 2^48, exact in
// a double; `>>> 0` takes a double modulo 2^32 exactly.

/** R = (hi ^ lo) of the 128-bit product F[0..1] × F[2..3] (XXH3_mul128_fold64). */
function mulFold (): void {
  const aHi = F[0]!
  const aLo = F[1]!
  const bHi = F[2]!
  const bLo = F[3]!
  const bLoL = bLo & 0xffff
  const bLoH = bLo >>> 16
  const bHiL = bHi & 0xffff
  const bHiH = bHi >>> 16
  // lo_lo = aLo × bLo
  let p1 = aLo * bLoH
  let low = aLo * bLoL + (p1 & 0xffff) * TWO16
  const llL = low >>> 0
  const llH = Math.floor(p1 * INV16) + Math.floor(low * INV32)
  // hi_lo = aHi × bLo
  p1 = aHi * bLoH
  low = aHi * bLoL + (p1 & 0xffff) * TWO16
  const hlL = low >>> 0
  const hlH = Math.floor(p1 * INV16) + Math.floor(low * INV32)
  // lo_hi = aLo × bHi
  p1 = aLo * bHiH
  low = aLo * bHiL + (p1 & 0xffff) * TWO16
  const lhL = low >>> 0
  const lhH = Math.floor(p1 * INV16) + Math.floor(low * INV32)
  // hi_hi = aHi × bHi
  p1 = aHi * bHiH
  low = aHi * bHiL + (p1 & 0xffff) * TWO16
  const hhL = low >>> 0
  const hhH = Math.floor(p1 * INV16) + Math.floor(low * INV32)
  // cross = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFF) + lo_hi; upper = (hi_lo >> 32) + (cross >> 32) + hi_hi
  const crossLoSum = llH + hlL + lhL
  const crossHi = lhH + Math.floor(crossLoSum * INV32)
  const upLoSum = hlH + crossHi + hhL
  // lower = (cross << 32) | (lo_lo & 0xFFFFFFFF); result = lower ^ upper
  R[0] = crossLoSum ^ (hhH + Math.floor(upLoSum * INV32))
  R[1] = llL ^ upLoSum
}

/** R = low 64 bits of R × (cHi, cLo) for a constant c (the constants are Smis or inlined). */
function mulConstR (cHi: number, cLo: number): void {
  const hi = R[0]!
  const lo = R[1]!
  const p1 = lo * (cLo >>> 16)
  const low = lo * (cLo & 0xffff) + (p1 & 0xffff) * TWO16
  R[1] = low >>> 0
  R[0] = Math.floor(p1 * INV16) + Math.floor(low * INV32) + Math.imul(hi, cLo) + Math.imul(lo, cHi)
}

/** R = XXH3_avalanche(R). */
function avalancheR (): void {
  R[1] = R[1]! ^ (R[0]! >>> 5) // h ^= h >> 37
  mulConstR(AVAL_HI, AVAL_LO)
  R[1] = R[1]! ^ R[0]! // h ^= h >> 32
}

/** R = len × PRIME64_1 (the mid-size and long paths' starting value). */
function lenTimesPrime (len: number): void {
  R[0] = 0
  R[1] = len
  mulConstR(P64_1_HI, P64_1_LO)
}

function bswap32 (x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0
}

function read64 (bytes: Uint8Array, at: number, hiOut: Uint32Array, loOut: Uint32Array, index: number): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  loOut[index] = v.getUint32(at, true)
  hiOut[index] = v.getUint32(at + 4, true)
}

function splitSeed (seed: bigint): [number, number] {
  const s = BigInt.asUintN(64, seed)
  return [Number(s >> 32n), Number(s & 0xffffffffn)]
}

export class Xxh3 {
  readonly seed: bigint
  private readonly seedHi: number
  private readonly seedLo: number
  // For mix16B at every byte offset o of the default secret: (secret[o..o+8) + seed) and
  // (secret[o+8..o+16) − seed), precomputed because they depend on the seed only.
  private readonly mixAHi: Uint32Array
  private readonly mixALo: Uint32Array
  private readonly mixBHi: Uint32Array
  private readonly mixBLo: Uint32Array
  // The seeded custom secret of the long path, as a u64 at every byte offset (reads are unaligned).
  private readonly secHi: Uint32Array
  private readonly secLo: Uint32Array
  // Short-input constants.
  private readonly b4Hi: number
  private readonly b4Lo: number
  private readonly b9aHi: number
  private readonly b9aLo: number
  private readonly b9bHi: number
  private readonly b9bLo: number
  /** Long-path accumulators, [hi, lo] per lane (see `stripe`). */
  private readonly acc: Float64Array
  private readonly chainWords: Uint32Array

  constructor (seed: bigint) {
    this.seed = seed
    const [sHi, sLo] = splitSeed(seed)
    this.seedHi = sHi
    this.seedLo = sLo
    const s = BigInt.asUintN(64, seed)
    const u64 = (bytes: Uint8Array, at: number): bigint => new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(at, true)
    const n = SECRET_SIZE - 15
    this.mixAHi = new Uint32Array(n)
    this.mixALo = new Uint32Array(n)
    this.mixBHi = new Uint32Array(n)
    this.mixBLo = new Uint32Array(n)
    const tmp = new Uint8Array(16)
    const tmpView = new DataView(tmp.buffer)
    for (let o = 0; o < n; o++) {
      tmpView.setBigUint64(0, (u64(K_SECRET, o) + s) & MASK64, true)
      tmpView.setBigUint64(8, (u64(K_SECRET, o + 8) - s) & MASK64, true)
      read64(tmp, 0, this.mixAHi, this.mixALo, o)
      read64(tmp, 8, this.mixBHi, this.mixBLo, o)
    }
    // XXH3_initCustomSecret: 16-byte rounds of (+seed, −seed).
    const custom = new Uint8Array(SECRET_SIZE)
    const cv = new DataView(custom.buffer)
    for (let i = 0; i < SECRET_SIZE / 16; i++) {
      cv.setBigUint64(16 * i, (u64(K_SECRET, 16 * i) + s) & MASK64, true)
      cv.setBigUint64(16 * i + 8, (u64(K_SECRET, 16 * i + 8) - s) & MASK64, true)
    }
    this.secHi = new Uint32Array(SECRET_SIZE - 7)
    this.secLo = new Uint32Array(SECRET_SIZE - 7)
    for (let o = 0; o < SECRET_SIZE - 7; o++) read64(custom, o, this.secHi, this.secLo, o)
    // len 4..8: seed ^= swap32(seed_lo) << 32; bitflip = (s[8..16) ^ s[16..24)) − seed
    const seed4 = (s ^ (BigInt(bswap32(sLo)) << 32n)) & MASK64
    const b4 = ((u64(K_SECRET, 8) ^ u64(K_SECRET, 16)) - seed4) & MASK64
    this.b4Hi = Number(b4 >> 32n)
    this.b4Lo = Number(b4 & 0xffffffffn)
    // len 9..16: bitflip1 = (s[24..32) ^ s[32..40)) + seed; bitflip2 = (s[40..48) ^ s[48..56)) − seed
    const b9a = ((u64(K_SECRET, 24) ^ u64(K_SECRET, 32)) + s) & MASK64
    const b9b = ((u64(K_SECRET, 40) ^ u64(K_SECRET, 48)) - s) & MASK64
    this.b9aHi = Number(b9a >> 32n)
    this.b9aLo = Number(b9a & 0xffffffffn)
    this.b9bHi = Number(b9b >> 32n)
    this.b9bLo = Number(b9b & 0xffffffffn)
    this.acc = new Float64Array(16)
    this.chainWords = new Uint32Array(4)
  }

  /**
   * Hashes `words[start .. start+count)` (count ≥ 1, each a u32 read as 4 little-endian bytes) and
   * writes the 64-bit result as int32 (hi, lo) to `out[at]`, `out[at+1]`.
   */
  hashWords (words: Uint32Array, start: number, count: number, out: Int32Array, at: number): void {
    const len = count * 4
    if (len <= 16) {
      if (len > 8) this.len9to16(words, start, count)
      else this.len4to8(words, start, count)
    } else if (len <= 128) {
      this.len17to128(words, start, len)
    } else if (len <= 240) {
      this.len129to240(words, start, len)
    } else {
      this.hashLong(words, start, len)
    }
    out[at] = R[0]! | 0
    out[at + 1] = R[1]! | 0
  }

  /** The sequence-hash step of DESIGN 4.3: XXH3(LE u64 parent ‖ LE u64 local), all as int32 halves. */
  chain (parentHi: number, parentLo: number, localHi: number, localLo: number, out: Int32Array, at: number): void {
    const w = this.chainWords
    w[0] = parentLo
    w[1] = parentHi
    w[2] = localLo
    w[3] = localHi
    this.len9to16(w, 0, 4)
    out[at] = R[0]! | 0
    out[at + 1] = R[1]! | 0
  }

  private len4to8 (w: Uint32Array, start: number, count: number): void {
    // input64 = input2 + (input1 << 32), keyed = input64 ^ bitflip
    const hi = (w[start]! ^ this.b4Hi) >>> 0
    const lo = (w[start + count - 1]! ^ this.b4Lo) >>> 0
    // rrmxmx: h ^= rotl(h, 49) ^ rotl(h, 24); h *= C
    R[0] = hi ^ ((lo << 17) | (hi >>> 15)) ^ ((hi << 24) | (lo >>> 8))
    R[1] = lo ^ ((hi << 17) | (lo >>> 15)) ^ ((lo << 24) | (hi >>> 8))
    mulConstR(RRMX_HI, RRMX_LO)
    // h ^= (h >> 35) + len (no carry: (h >> 35) < 2^29); h *= C
    R[1] = R[1]! ^ ((R[0]! >>> 3) + count * 4)
    mulConstR(RRMX_HI, RRMX_LO)
    // h ^= h >> 28
    R[1] = R[1]! ^ ((R[1]! >>> 28) | (R[0]! << 4))
    R[0] = R[0]! ^ (R[0]! >>> 28)
  }

  private len9to16 (w: Uint32Array, start: number, count: number): void {
    const inLoLo = (w[start]! ^ this.b9aLo) >>> 0
    const inLoHi = (w[start + 1]! ^ this.b9aHi) >>> 0
    const inHiLo = (w[start + count - 2]! ^ this.b9bLo) >>> 0
    const inHiHi = (w[start + count - 1]! ^ this.b9bHi) >>> 0
    // acc = len + swap64(input_lo) + input_hi + mul128_fold64(input_lo, input_hi)
    F[0] = inLoHi
    F[1] = inLoLo
    F[2] = inHiHi
    F[3] = inHiLo
    mulFold()
    const lo = count * 4 + bswap32(inLoHi) + inHiLo + R[1]!
    R[0] = bswap32(inLoLo) + inHiHi + R[0]! + Math.floor(lo / TWO32)
    R[1] = lo
    avalancheR()
  }

  /** A += mix16B(input word `wordAt`, secret byte `sec`). mulFold is inlined by hand: this is the hot loop of 16–60-token blocks. */
  private mix16 (w: Uint32Array, wordAt: number, sec: number): void {
    const aLo = (w[wordAt]! ^ this.mixALo[sec]!) >>> 0
    const aHi = (w[wordAt + 1]! ^ this.mixAHi[sec]!) >>> 0
    const bLo = (w[wordAt + 2]! ^ this.mixBLo[sec]!) >>> 0
    const bHi = (w[wordAt + 3]! ^ this.mixBHi[sec]!) >>> 0
    const bLoL = bLo & 0xffff
    const bLoH = bLo >>> 16
    const bHiL = bHi & 0xffff
    const bHiH = bHi >>> 16
    let p1 = aLo * bLoH
    let low = aLo * bLoL + (p1 & 0xffff) * TWO16
    const llL = low >>> 0
    const llH = Math.floor(p1 * INV16) + Math.floor(low * INV32)
    p1 = aHi * bLoH
    low = aHi * bLoL + (p1 & 0xffff) * TWO16
    const hlL = low >>> 0
    const hlH = Math.floor(p1 * INV16) + Math.floor(low * INV32)
    p1 = aLo * bHiH
    low = aLo * bHiL + (p1 & 0xffff) * TWO16
    const lhL = low >>> 0
    const lhH = Math.floor(p1 * INV16) + Math.floor(low * INV32)
    p1 = aHi * bHiH
    low = aHi * bHiL + (p1 & 0xffff) * TWO16
    const hhL = low >>> 0
    const hhH = Math.floor(p1 * INV16) + Math.floor(low * INV32)
    const crossLoSum = llH + hlL + lhL
    const crossHi = lhH + Math.floor(crossLoSum * INV32)
    const upLoSum = hlH + crossHi + hhL
    const foldHi = (crossLoSum ^ (hhH + Math.floor(upLoSum * INV32))) >>> 0
    const foldLo = (llL ^ upLoSum) >>> 0
    const sum = A[1]! + foldLo
    A[1] = sum
    A[0] = A[0]! + foldHi + (sum > 0xffffffff ? 1 : 0)
  }

  private len17to128 (w: Uint32Array, s: number, len: number): void {
    lenTimesPrime(len)
    A[0] = R[0]!
    A[1] = R[1]!
    const end = s + (len >>> 2)
    if (len > 32) {
      if (len > 64) {
        if (len > 96) {
          this.mix16(w, s + 12, 96)
          this.mix16(w, end - 16, 112)
        }
        this.mix16(w, s + 8, 64)
        this.mix16(w, end - 12, 80)
      }
      this.mix16(w, s + 4, 32)
      this.mix16(w, end - 8, 48)
    }
    this.mix16(w, s, 0)
    this.mix16(w, end - 4, 16)
    R[0] = A[0]!
    R[1] = A[1]!
    avalancheR()
  }

  private len129to240 (w: Uint32Array, s: number, len: number): void {
    lenTimesPrime(len)
    A[0] = R[0]!
    A[1] = R[1]!
    for (let i = 0; i < 8; i++) this.mix16(w, s + 4 * i, 16 * i)
    R[0] = A[0]!
    R[1] = A[1]!
    avalancheR()
    A[0] = R[0]!
    A[1] = R[1]!
    const rounds = len >>> 4
    for (let i = 8; i < rounds; i++) this.mix16(w, s + 4 * i, 16 * (i - 8) + 3)
    this.mix16(w, s + (len >>> 2) - 4, SECRET_SIZE_MIN - 17)
    R[0] = A[0]!
    R[1] = A[1]!
    avalancheR()
  }

  /**
   * XXH3_accumulate_512 on the stripe at word `at`, secret at byte `sec`. Acc layout: [hi0, lo0,
   * hi1, lo1, ...] as doubles that are *sums*, not yet reduced modulo 2^32: a stripe adds less than
   * 2^33 to each half, and at most 16 stripes run before `normalize`, so the sums stay exact (< 2^38)
   * and the carries are settled once per block instead of once per addition.
   */
  private stripe (w: Uint32Array, at: number, sec: number): void {
    const acc = this.acc
    const sHi = this.secHi
    const sLo = this.secLo
    for (let lane = 0; lane < 8; lane++) {
      const dLo = w[at + 2 * lane]!
      const dHi = w[at + 2 * lane + 1]!
      const kLo = (dLo ^ sLo[sec + 8 * lane]!) >>> 0
      const kHi = (dHi ^ sHi[sec + 8 * lane]!) >>> 0
      // acc[lane ^ 1] += data_val
      const o = (lane ^ 1) * 2
      acc[o] = acc[o]! + dHi
      acc[o + 1] = acc[o + 1]! + dLo
      // acc[lane] += (data_key & 0xFFFFFFFF) * (data_key >> 32)
      const p1 = kLo * (kHi >>> 16)
      const low = kLo * (kHi & 0xffff) + (p1 & 0xffff) * TWO16
      acc[lane * 2] = acc[lane * 2]! + Math.floor(p1 * INV16) + Math.floor(low * INV32)
      acc[lane * 2 + 1] = acc[lane * 2 + 1]! + (low >>> 0)
    }
  }

  /** Settles the carries of the accumulator sums: each lane becomes (hi, lo) uint32 again. */
  private normalize (): void {
    const acc = this.acc
    for (let lane = 0; lane < 8; lane++) {
      const lo = acc[2 * lane + 1]!
      acc[2 * lane] = (acc[2 * lane]! + Math.floor(lo * INV32)) >>> 0
      acc[2 * lane + 1] = lo >>> 0
    }
  }

  private scramble (): void {
    this.normalize()
    const acc = this.acc
    const sec = SECRET_SIZE - 64
    for (let lane = 0; lane < 8; lane++) {
      const hi = acc[2 * lane]!
      // acc ^= acc >> 47; acc ^= secret; acc *= PRIME32_1
      const lo = (acc[2 * lane + 1]! ^ (hi >>> 15) ^ this.secLo[sec + 8 * lane]!) >>> 0
      const h2 = hi ^ this.secHi[sec + 8 * lane]!
      const p1 = lo * (P32_1 >>> 16)
      const low = lo * (P32_1 & 0xffff) + (p1 & 0xffff) * TWO16
      acc[2 * lane + 1] = low >>> 0
      acc[2 * lane] = (Math.floor(p1 * INV16) + Math.floor(low * INV32) + Math.imul(h2, P32_1)) >>> 0
    }
  }

  private hashLong (w: Uint32Array, s: number, len: number): void {
    const acc = this.acc
    acc[0] = 0; acc[1] = P32_3
    acc[2] = P64_1_HI; acc[3] = P64_1_LO
    acc[4] = P64_2_HI; acc[5] = P64_2_LO
    acc[6] = P64_3_HI; acc[7] = P64_3_LO
    acc[8] = P64_4_HI; acc[9] = P64_4_LO
    acc[10] = 0; acc[11] = P32_2
    acc[12] = P64_5_HI; acc[13] = P64_5_LO
    acc[14] = 0; acc[15] = P32_1
    const stripesPerBlock = (SECRET_SIZE - 64) / 8
    const blockWords = 16 * stripesPerBlock
    const blocks = Math.floor((len - 1) / (4 * blockWords))
    for (let b = 0; b < blocks; b++) {
      const base = s + b * blockWords
      for (let n = 0; n < stripesPerBlock; n++) this.stripe(w, base + 16 * n, 8 * n)
      this.scramble()
    }
    const stripes = Math.floor((len - 1 - 4 * blockWords * blocks) / 64)
    const base = s + blocks * blockWords
    for (let n = 0; n < stripes; n++) this.stripe(w, base + 16 * n, 8 * n)
    this.stripe(w, s + (len >>> 2) - 16, SECRET_SIZE - 64 - 7)
    this.normalize()
    // mergeAccs(acc, secret + 11, len * PRIME64_1)
    lenTimesPrime(len)
    A[0] = R[0]!
    A[1] = R[1]!
    for (let i = 0; i < 4; i++) {
      const o = 11 + 16 * i
      F[0] = acc[4 * i]! ^ this.secHi[o]!
      F[1] = acc[4 * i + 1]! ^ this.secLo[o]!
      F[2] = acc[4 * i + 2]! ^ this.secHi[o + 8]!
      F[3] = acc[4 * i + 3]! ^ this.secLo[o + 8]!
      mulFold()
      const lo: number = A[1]! + R[1]!
      A[1] = lo
      A[0] = A[0]! + R[0]! + (lo > 0xffffffff ? 1 : 0)
    }
    R[0] = A[0]!
    R[1] = A[1]!
    avalancheR()
  }
}

/** The 64-bit value of an int32 (hi, lo) pair, for tests and diagnostics (allocates a BigInt). */
export function pairToBigInt (hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)
}
