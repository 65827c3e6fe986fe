/**
 * The built-in tokenizer: fast, deterministic, no files. Text is cut into pieces left to right —
 * a special token (`<|im_start|>` …), a single whitespace character, or a word: an optional single
 * leading space plus a run of non-whitespace characters (at most MAX_PIECE characters in all).
 * Known pieces map to their vocabulary id; any other piece is hashed (FNV-1a) into the word range.
 *
 * Guarantees:
 * - Prefix sharing: a piece depends only on the text up to its end and the character after it, so
 *   two texts that share a prefix ending before whitespace share `encode(prefix)` as a token prefix.
 * - Round trip: for any sequence of special, whitespace and word ids (every id below `vocabSize`
 *   except the reserved 7..15; in particular every id from `sampleIds`), `encode(decode(ids))`
 *   returns the same ids. Arbitrary text does not round-trip (unknown pieces
 *   are hashed), which is fine: only the ids a client or bench chose need to survive.
 */
import type { ChatMessage, Tokenizer } from './types.js'
import { messageText } from './types.js'
import { buildVocab, EOS_ID, FIRST_WORD_ID, SPECIAL_TOKENS, VOCAB_SIZE } from './builtin-vocab.js'

const MAX_PIECE = 16
const SPACE = 32
const LT = 60
const PIPE = 124
const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193
const TABLE_BITS = 17

function isWhitespace (c: number): boolean {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13)
  if (c < 0x85) return false
  return c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
}

function fnv1a (text: string, start: number, end: number): number {
  let h = FNV_OFFSET
  for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME)
  return h >>> 0
}

export class BuiltinTokenizer implements Tokenizer {
  readonly name = 'builtin'
  readonly eosTokenId: number = EOS_ID
  readonly vocabSize: number = VOCAB_SIZE
  /** Ids in [firstWordId, vocabSize) are words: what `sampleIds` draws and unknown pieces hash into. */
  readonly firstWordId: number = FIRST_WORD_ID
  private readonly pieces: string[]
  // Open-addressing table from piece hash to id+1 (0 = empty): no string is built to look a piece up.
  private readonly table: Int32Array
  private readonly mask: number
  private scratch: Uint32Array

  constructor () {
    this.pieces = buildVocab()
    this.mask = (1 << TABLE_BITS) - 1
    this.table = new Int32Array(1 << TABLE_BITS)
    this.scratch = new Uint32Array(1024)
    for (let id = 0; id < this.pieces.length; id++) {
      const p = this.pieces[id]!
      if (p.length === 0) continue
      let slot = fnv1a(p, 0, p.length) & this.mask
      while (this.table[slot] !== 0) slot = (slot + 1) & this.mask
      this.table[slot] = id + 1
    }
  }

  encode (text: string): Uint32Array {
    const n = text.length
    let out = this.scratch
    let count = 0
    let i = 0
    while (i < n) {
      if (count === out.length) out = this.grow(count)
      const c = text.charCodeAt(i)
      if (c === LT) {
        const special = this.specialAt(text, i)
        if (special >= 0) {
          out[count++] = special
          i += SPECIAL_TOKENS[special]!.length
          continue
        }
      }
      let start = i
      if (isWhitespace(c)) {
        const next = i + 1 < n ? text.charCodeAt(i + 1) : SPACE
        if (c !== SPACE || isWhitespace(next) || (next === LT && this.specialAt(text, i + 1) >= 0)) {
          out[count++] = this.lookup(text, i, i + 1)
          i++
          continue
        }
        // A space joins the word that follows it.
        start = i
        i++
      }
      i++
      while (i < n && i - start < MAX_PIECE) {
        const d = text.charCodeAt(i)
        if (isWhitespace(d) || (d === LT && this.specialAt(text, i) >= 0)) break
        i++
      }
      out[count++] = this.lookup(text, start, i)
    }
    return out.slice(0, count)
  }

  decode (ids: ArrayLike<number>): string {
    let s = ''
    const pieces = this.pieces
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!
      // Out-of-range ids still decode to one word, so a token count survives a trip through text.
      s += id < pieces.length ? pieces[id]! : pieces[FIRST_WORD_ID + (id % (VOCAB_SIZE - FIRST_WORD_ID))]!
    }
    return s
  }

  /** ChatML-style role tags, ending with the assistant's turn (as add_generation_prompt does). */
  applyChatTemplate (messages: readonly ChatMessage[]): string {
    let s = ''
    for (const m of messages) s += '<|im_start|>' + m.role + '\n' + messageText(m.content) + '<|im_end|>\n'
    return s + '<|im_start|>assistant\n'
  }

  /** The text of one id (empty for reserved ids). */
  piece (id: number): string {
    return this.pieces[id] ?? ''
  }

  /**
   * `count` word ids drawn from a seeded generator: deterministic for a seed, and
   * `encode(decode(ids))` gives them back exactly. The bench builds exact-length prompts this way.
   */
  sampleIds (count: number, seed: number): Uint32Array {
    const out = new Uint32Array(count)
    const span = VOCAB_SIZE - FIRST_WORD_ID
    let state = seed >>> 0
    for (let i = 0; i < count; i++) {
      // mulberry32
      state = (state + 0x6d2b79f5) >>> 0
      let t = state
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296
      out[i] = FIRST_WORD_ID + Math.floor(r * span)
    }
    return out
  }

  private specialAt (text: string, i: number): number {
    if (text.charCodeAt(i + 1) !== PIPE) return -1
    for (let s = 0; s < SPECIAL_TOKENS.length; s++) {
      if (text.startsWith(SPECIAL_TOKENS[s]!, i)) return s
    }
    return -1
  }

  private lookup (text: string, start: number, end: number): number {
    const h = fnv1a(text, start, end)
    const len = end - start
    let slot = h & this.mask
    for (;;) {
      const entry = this.table[slot]!
      if (entry === 0) break
      const piece = this.pieces[entry - 1]!
      if (piece.length === len && text.startsWith(piece, start)) return entry - 1
      slot = (slot + 1) & this.mask
    }
    return FIRST_WORD_ID + (h % (VOCAB_SIZE - FIRST_WORD_ID))
  }

  private grow (count: number): Uint32Array {
    const bigger = new Uint32Array(count * 2)
    bigger.set(this.scratch)
    this.scratch = bigger
    return bigger
  }
}
