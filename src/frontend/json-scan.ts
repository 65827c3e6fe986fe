/**
 * JSON over UTF-8 bytes without building it. The checkers (`checkValue`, `checkKey`,
 * `checkCountedString`, `checkJson` for a whole document) validate the grammar V8's JSON.parse
 * accepts and return where a value ends, so a caller can validate a document in one pass and note
 * where the fields it wants start; the readers below walk a document known to be valid, by byte
 * offset.
 *
 * Why not JSON.parse: the gateway reads five or six fields of a request body and forwards the
 * bytes untouched. JSON.parse (after a UTF-8 decode) builds every object, array and string of the
 * body: ~10% of a proxied JSON request's user-space instructions (perf under wrk, c=64), most of
 * it object building (maps, transitions, internalized keys). The one-pass scan builds nothing, so
 * leaves no garbage, and checks the strings of documents past 256 bytes four bytes at a time.
 * `npm run bench -- request-parse` has it 1.2-2.0x faster than JSON.parse + the checks on the
 * proxy bench's 105-byte body and 1.7-2.4x on 1.6 KiB. Per byte it still runs more instructions than V8's
 * native parser, so the gateway scans bodies up to 2 KiB only (validate.ts SCAN_MAX).
 *
 * Imports nothing of the gateway's but shared/char-codes.ts.
 */
import { Buffer } from 'node:buffer'
import { charCodes } from '../shared/char-codes.js'

export class JsonSyntaxError extends Error {
  readonly at: number
  constructor (message: string, at: number) {
    super(`${message} at byte ${at}`)
    this.at = at
  }
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const LBRACE = 0x7b
const RBRACE = 0x7d
const LBRACKET = 0x5b
const RBRACKET = 0x5d
const MINUS = 0x2d

/** Characters after a backslash that JSON allows (u is handled apart). */
const SIMPLE_ESCAPE = new Uint8Array(256)
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1

const HEX = new Uint8Array(256)
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1

function isWs (c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

function isDigit (c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

/** The first index at or after `i` that is not JSON whitespace. */
export function skipWs (b: Uint8Array, i: number): number {
  const end = b.length
  while (i < end && isWs(b[i]!)) i++
  return i
}

function describe (b: Uint8Array, i: number): string {
  if (i >= b.length) return 'unexpected end of input'
  const c = b[i]!
  return c >= 0x21 && c < 0x7f ? `unexpected '${String.fromCharCode(c)}'` : `unexpected byte 0x${c.toString(16).padStart(2, '0')}`
}

function unexpected (b: Uint8Array, i: number): JsonSyntaxError {
  return new JsonSyntaxError(describe(b, i), i)
}

// Long documents' strings are checked four bytes at a time (SWAR over 32-bit words): a byte loop
// costs ~6 ns per byte here, and prompts run to hundreds of KiB. `wordsFor` sets the view up for
// one document; the checkers use it while `wordsOf` is the buffer they check.
const WORDS_MIN = 256
let words: Int32Array | null = null
let wordsOf: Uint8Array | null = null
/** The index in `wordsOf` of words[0] (the first 4-byte-aligned byte). */
let wordsStart = 0

/** Lets the checkers read `b` (a document of WORDS_MIN bytes or more) as 32-bit words until wordsDone(). */
export function wordsFor (b: Uint8Array): void {
  if (b.length < WORDS_MIN) return
  const first = (4 - (b.byteOffset & 3)) & 3
  words = new Int32Array(b.buffer, b.byteOffset + first, (b.length - first) >> 2)
  wordsOf = b
  wordsStart = first
}

export function wordsDone (): void {
  words = null
  wordsOf = null
}

/** 0x80808080 as an int32 (the literal is a double, above int32). */
const HIGH_BITS = 0x80808080 | 0

/** The bits 7, 15, 23, 31 of `m` counted. */
function count4 (m: number): number {
  return Math.imul((m >>> 7) & 0x01010101, 0x01010101) >>> 24
}

/** UTF-16 code units of the words plainWords passed over last (when it counted). */
let wordUnits = 0

/**
 * From the aligned index `i` inside a string, past every whole word holding no quote, backslash or
 * control byte; returns where the byte loop goes on. `count`: their UTF-16 units into wordUnits.
 */
function plainWords (i: number, count: boolean): number {
  const w32 = words!
  let k = (i - wordsStart) >> 2
  let units = 0
  for (; k < w32.length; k++) {
    const w = w32[k]!
    const q = w ^ 0x22222222
    const s = w ^ 0x5c5c5c5c
    // Any byte < 0x20, any byte == 0x22, any byte == 0x5c (exact as "any" tests; borrows only
    // come from a byte that matches).
    // (The differences wrap to 32 bits in the `&`, as ToInt32 is modulo 2^32.)
    if ((((w - 0x20202020) & ~w) | ((q - 0x01010101) & ~q) | ((s - 0x01010101) & ~s)) & HIGH_BITS) break
    if (count) {
      if ((w & HIGH_BITS) === 0) units += 4
      // Continuation bytes (10xxxxxx) start no character; a 4-byte lead (11110xxx) starts two units.
      else units += 4 - count4(w & ~(w << 1) & HIGH_BITS) + count4(w & (w << 1) & (w << 2) & (w << 3) & HIGH_BITS)
    }
  }
  wordUnits = units
  return wordsStart + (k << 2)
}

/** Validates the string whose opening quote is at `i`; returns the index after its closing quote. */
function checkString (b: Uint8Array, i: number): number {
  const end = b.length
  i++
  for (;;) {
    let c = 0
    if (wordsOf === b) {
      while (i < end && ((i - wordsStart) & 3) !== 0 && (c = b[i]!) !== QUOTE && c !== BACKSLASH && c >= 0x20) i++
      if (i < end && ((i - wordsStart) & 3) === 0) i = plainWords(i, false)
    }
    // The plain run: compares, not a table lookup (one load per byte instead of two).
    while (i < end && (c = b[i]!) !== QUOTE && c !== BACKSLASH && c >= 0x20) i++
    if (i >= end) throw new JsonSyntaxError('unterminated string', end)
    if (c === QUOTE) return i + 1
    i = checkEscape(b, i)
  }
}

/** UTF-16 code units of the string last checked by checkCountedString. */
export let counted = 0

/** checkString that also counts the string's UTF-16 code units (what `string.length` will say) into `counted`. */
export function checkCountedString (b: Uint8Array, i: number): number {
  const end = b.length
  let n = 0
  i++
  for (;;) {
    let c = 0
    if (wordsOf === b) {
      while (i < end && ((i - wordsStart) & 3) !== 0 && (c = b[i]!) !== QUOTE && c !== BACKSLASH && c >= 0x20) {
        if ((c & 0xc0) !== 0x80) n += c >= 0xf0 ? 2 : 1
        i++
      }
      if (i < end && ((i - wordsStart) & 3) === 0) {
        i = plainWords(i, true)
        n += wordUnits
      }
    }
    while (i < end && (c = b[i]!) !== QUOTE && c !== BACKSLASH && c >= 0x20) {
      // A UTF-8 lead byte starts a character; a 4-byte sequence is two UTF-16 units.
      if ((c & 0xc0) !== 0x80) n += c >= 0xf0 ? 2 : 1
      i++
    }
    if (i >= end) throw new JsonSyntaxError('unterminated string', end)
    if (c === QUOTE) { counted = n; return i + 1 }
    i = checkEscape(b, i)
    n++
  }
}

/** The escape or bad byte at `i` inside a string; returns the index after the escape. */
function checkEscape (b: Uint8Array, i: number): number {
  if (b[i] !== BACKSLASH) throw new JsonSyntaxError('bad control character in a string', i)
  const e = b[i + 1]
  if (e === 0x75 /* u */) {
    if (i + 5 >= b.length || HEX[b[i + 2]!] === 0 || HEX[b[i + 3]!] === 0 || HEX[b[i + 4]!] === 0 || HEX[b[i + 5]!] === 0) throw new JsonSyntaxError('bad \\u escape in a string', i)
    return i + 6
  }
  if (e !== undefined && SIMPLE_ESCAPE[e] === 1) return i + 2
  throw new JsonSyntaxError('bad escape in a string', i)
}

/** Validates the number at `i` (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?); returns the index after it. */
function checkNumber (b: Uint8Array, i: number): number {
  const start = i
  if (b[i] === MINUS) i++
  if (b[i] === 0x30) {
    i++
  } else if (i < b.length && isDigit(b[i]!) ) {
    while (i < b.length && isDigit(b[i]!)) i++
  } else {
    throw new JsonSyntaxError(i === start ? describe(b, i) : 'no digit after the minus sign', i)
  }
  if (b[i] === 0x2e /* . */) {
    i++
    if (!(i < b.length && isDigit(b[i]!))) throw new JsonSyntaxError('no digit after the decimal point', i)
    while (i < b.length && isDigit(b[i]!)) i++
  }
  if (b[i] === 0x65 || b[i] === 0x45 /* e E */) {
    i++
    if (b[i] === 0x2b || b[i] === MINUS) i++
    if (!(i < b.length && isDigit(b[i]!))) throw new JsonSyntaxError('no digit in the exponent', i)
    while (i < b.length && isDigit(b[i]!)) i++
  }
  return i
}

/**
 * An ASCII word the scan compares bytes with: its text, and its char codes for the byte loops
 * (shared/char-codes.ts; comparing member names with strings was ~15% of the scan of a small
 * chat request).
 */
export class Word {
  readonly text: string
  readonly codes: readonly number[]
  constructor (text: string) {
    this.text = text
    this.codes = charCodes(text)
  }
}

const TRUE_WORD = new Word('true')
const FALSE_WORD = new Word('false')
const NULL_WORD = new Word('null')

function checkLiteral (b: Uint8Array, i: number, word: Word): number {
  const codes = word.codes
  for (let k = 0; k < codes.length; k++) {
    if (b[i + k] !== codes[k]) throw unexpected(b, i + k)
  }
  return i + codes.length
}

/** The index after the closing quote of the name checkKey checked last. */
export let keyEnd = 0

/** A property name, its colon and the whitespace around them, from `i`; returns where the value starts. */
export function checkKey (b: Uint8Array, i: number): number {
  if (b[i] !== QUOTE) throw new JsonSyntaxError(`${describe(b, i)}, expected a property name`, i)
  i = keyEnd = checkString(b, i)
  i = skipWs(b, i)
  if (b[i] !== COLON) throw new JsonSyntaxError(`${describe(b, i)}, expected ':' after a property name`, i)
  return skipWs(b, i + 1)
}

const OBJECT = 1
const ARRAY = 2
let stack = new Uint8Array(64)

/**
 * Validates the one JSON value that starts at `i` (whitespace skipped already); returns the index
 * after it. Iterative: any depth of nesting costs one byte of stack per level, no recursion.
 */
export function checkValue (b: Uint8Array, i: number): number {
  let depth = 0
  for (;;) {
    // A value starts at i.
    const c = b[i]
    if (c === QUOTE) {
      i = checkString(b, i)
    } else if (c === LBRACE || c === LBRACKET) {
      i = skipWs(b, i + 1)
      if (b[i] === (c === LBRACE ? RBRACE : RBRACKET)) {
        i++
      } else {
        if (depth === stack.length) { const s = new Uint8Array(depth * 2); s.set(stack); stack = s }
        stack[depth++] = c === LBRACE ? OBJECT : ARRAY
        if (c === LBRACE) i = checkKey(b, i)
        continue
      }
    } else if (c === 0x74) {
      i = checkLiteral(b, i, TRUE_WORD)
    } else if (c === 0x66) {
      i = checkLiteral(b, i, FALSE_WORD)
    } else if (c === 0x6e) {
      i = checkLiteral(b, i, NULL_WORD)
    } else if (c === MINUS || (c !== undefined && isDigit(c))) {
      i = checkNumber(b, i)
    } else {
      throw unexpected(b, i)
    }
    // After a value: commas and closing brackets until the next value starts, or the end.
    for (;;) {
      if (depth === 0) return i
      i = skipWs(b, i)
      const inObject = stack[depth - 1] === OBJECT
      const d = b[i]
      if (d === COMMA) {
        i = skipWs(b, i + 1)
        if (inObject) i = checkKey(b, i)
        break
      }
      if (d !== (inObject ? RBRACE : RBRACKET)) throw expectedAfter(b, i, inObject)
      depth--
      i++
    }
  }
}

/** The error for what follows an item of an object or array when it is neither a comma nor the close. */
export function expectedAfter (b: Uint8Array, i: number, inObject: boolean): JsonSyntaxError {
  return new JsonSyntaxError(`${describe(b, i)}, expected ',' or '${inObject ? '}' : ']'}'`, i)
}

/** The error for bytes after a complete document. */
export function trailing (b: Uint8Array, i: number): JsonSyntaxError {
  return new JsonSyntaxError(`${describe(b, i)} after the JSON value`, i)
}

/**
 * Throws a JsonSyntaxError (with the byte offset) unless `b` is one JSON value with only
 * whitespace around it: exactly what JSON.parse accepts of the same bytes decoded as UTF-8
 * (bytes that are not UTF-8 can only sit inside strings, where the decode would replace them).
 */
export function checkJson (b: Uint8Array): void {
  wordsFor(b)
  try {
    const i = skipWs(b, checkValue(b, skipWs(b, 0)))
    if (i !== b.length) throw trailing(b, i)
  } finally {
    wordsDone()
  }
}

// Readers of a valid document (checkJson passed): no error handling, offsets only.

/** The index after the string whose opening quote is at `i`. */
export function stringEnd (b: Uint8Array, i: number): number {
  i++
  for (;;) {
    const c = b[i]!
    if (c === QUOTE) return i + 1
    i += c === BACKSLASH ? 2 : 1
  }
}

/** The index after the value that starts at `i`. */
export function valueEnd (b: Uint8Array, i: number): number {
  const c = b[i]!
  if (c === QUOTE) return stringEnd(b, i)
  if (c === LBRACE || c === LBRACKET) {
    let depth = 0
    for (;;) {
      const d = b[i]!
      if (d === QUOTE) { i = stringEnd(b, i); continue }
      if (d === LBRACE || d === LBRACKET) depth++
      else if ((d === RBRACE || d === RBRACKET) && --depth === 0) return i + 1
      i++
    }
  }
  // A number or a literal: runs to the next delimiter.
  while (i < b.length) {
    const d = b[i]!
    if (d === COMMA || d === RBRACE || d === RBRACKET || isWs(d)) break
    i++
  }
  return i
}

/**
 * The index of the first item of the container (object or array) whose bracket is at `i`, or -1
 * when it is empty. For an object the item is a member: its name's opening quote.
 */
export function firstItem (b: Uint8Array, i: number): number {
  i = skipWs(b, i + 1)
  return b[i] === RBRACE || b[i] === RBRACKET ? -1 : i
}

/** The index of the item after the one that ends at `end` (after its value), or -1 at the container's close. */
export function nextItem (b: Uint8Array, end: number): number {
  const i = skipWs(b, end)
  return b[i] === COMMA ? skipWs(b, i + 1) : -1
}

/** Where the value of the member whose name starts at `i` begins. */
export function memberValue (b: Uint8Array, i: number): number {
  return skipWs(b, skipWs(b, stringEnd(b, i)) + 1)
}

/**
 * Whether the member name (string) at `i` is `name`. Names with escapes are compared after
 * decoding, as JSON.parse would see them.
 */
export function nameIs (b: Uint8Array, i: number, name: Word): boolean {
  const codes = name.codes
  const n = codes.length
  let k = 0
  let j = i + 1
  for (; k < n; k++, j++) {
    const c = b[j]!
    if (c === BACKSLASH) return stringValue(b, i) === name.text
    if (c !== codes[k]) return false
  }
  if (b[j] === BACKSLASH) return stringValue(b, i) === name.text
  return b[j] === QUOTE
}

/** The string at `i` (its opening quote), decoded. */
export function stringValue (b: Uint8Array, i: number): string {
  const end = stringEnd(b, i)
  const buf = b instanceof Buffer ? b : Buffer.from(b.buffer, b.byteOffset, b.length)
  let ascii = true
  for (let j = i + 1; j < end - 1; j++) {
    const c = b[j]!
    if (c === BACKSLASH) return JSON.parse(buf.toString('utf8', i, end)) as string
    if (c >= 0x80) ascii = false
  }
  return buf.toString(ascii ? 'latin1' : 'utf8', i + 1, end - 1)
}

/** The length in UTF-16 code units (what `string.length` says) of the string at `i`, without decoding it. */
export function stringLength (b: Uint8Array, i: number): number {
  let n = 0
  i++
  for (;;) {
    const c = b[i]!
    if (c === QUOTE) return n
    if (c === BACKSLASH) {
      i += b[i + 1] === 0x75 ? 6 : 2
      n++
    } else {
      // A UTF-8 lead byte starts a character; a 4-byte sequence is two UTF-16 units.
      if ((c & 0xc0) !== 0x80) n += c >= 0xf0 ? 2 : 1
      i++
    }
  }
}

/** The number at `i`: plain digits are read here, anything else (fraction, exponent, sign, 16+ digits) by Number(). */
export function numberValue (b: Uint8Array, i: number): number {
  let n = 0
  let j = i
  for (; j < b.length && j - i < 16; j++) {
    const d = b[j]! - 0x30
    if (d < 0 || d > 9) break
    n = n * 10 + d
  }
  const end = valueEnd(b, i)
  if (j === end && j > i && j - i < 16) return n
  const buf = b instanceof Buffer ? b : Buffer.from(b.buffer, b.byteOffset, b.length)
  return Number(buf.toString('latin1', i, end))
}

/** What kind of value starts at `i`, by JSON.parse's `typeof` (arrays are 'array', null is 'null'). */
type JsonKind = 'string' | 'number' | 'boolean' | 'null' | 'object' | 'array'

export function kindAt (b: Uint8Array, i: number): JsonKind {
  switch (b[i]) {
    case QUOTE: return 'string'
    case LBRACE: return 'object'
    case LBRACKET: return 'array'
    case 0x74: case 0x66: return 'boolean'
    case 0x6e: return 'null'
    default: return 'number'
  }
}
