/**
 * The tokens the mock engine generates: common English words that the tokenizer encodes as exactly
 * one id which decodes back to the same text. Pieces are precomputed, so producing a token costs an
 * array lookup and never a decode.
 */
import type { Tokenizer } from '../tokenize/index.js'

const WORDS = (
  'the of and to in is it you that he was for on are with as his they be at one have this from or had by ' +
  'word but what some we can out other were all there when up use your how said an each she which do their ' +
  'time if will way about many then them write would like so these her long make thing see him two has look ' +
  'more day could go come did number sound no most people my over know water than call first who may down side ' +
  'been now find any new work part take get place made live where after back little only round man year came ' +
  'show every good me give our under name very through just form great think say help low line turn cause much ' +
  'mean before move right boy old too same tell does set three want air well also play small end put home read'
).split(' ')

export class OutputVocab {
  readonly ids: Uint32Array
  readonly pieces: readonly string[]
  readonly size: number

  constructor (ids: Uint32Array, pieces: readonly string[]) {
    this.ids = ids
    this.pieces = pieces
    this.size = ids.length
  }
}

export function buildOutputVocab (tokenizer: Tokenizer): OutputVocab {
  const ids: number[] = []
  const pieces: string[] = []
  const seen = new Set<number>()
  for (const w of WORDS) {
    const text = ' ' + w
    const enc = tokenizer.encode(text)
    if (enc.length !== 1 || seen.has(enc[0]!) || tokenizer.decode(enc) !== text) continue
    seen.add(enc[0]!)
    ids.push(enc[0]!)
    pieces.push(text)
  }
  if (ids.length < 16) {
    // A tokenizer that splits plain words: fall back to whatever ids a sentence encodes to.
    const enc = tokenizer.encode(' ' + WORDS.join(' '))
    for (const id of enc) {
      if (seen.has(id)) continue
      const piece = tokenizer.decode([id])
      if (piece.length === 0 || piece.includes('\uFFFD')) continue
      seen.add(id)
      ids.push(id)
      pieces.push(piece)
    }
  }
  if (ids.length === 0) throw new Error(`tokenizer ${tokenizer.name} yields no usable output tokens`)
  return new OutputVocab(Uint32Array.from(ids), pieces)
}
