/**
 * Prompts of exact token lengths, built from token ids through the server's tokenizer (as
 * aiperf's synthetic prompts are): sample ids, decode them to text, send the text.
 *
 * With the built-in tokenizer this is exact: `sampleIds` draws word ids for which
 * `encode(decode(ids))` gives the ids back, every word piece starts with a space so decoded texts
 * concatenate to the concatenation of their ids, and `sampleIds(r, s)` is the first r ids of
 * `sampleIds(n, s)` — so a cut block is a token prefix of the full block.
 *
 * Any other tokenizer (Hugging Face) gets the nearest length found by encode → cut → decode →
 * re-encode, a few rounds; joins between blocks may merge a token or two. Records keep the
 * intended length; the server's `usage.prompt_tokens` says what it counted.
 */
import { builtinTokenizer, type Tokenizer } from '../tokenize/index.js'

export interface Prompt {
  text: string
  /** Token count of `text` alone (exact with the built-in tokenizer). */
  tokens: number
}

export interface PromptFactory {
  readonly tokenizer: Tokenizer
  /** True when lengths are exact (the built-in tokenizer). */
  readonly exact: boolean
  /** `tokens` random tokens, the same for the same seed. */
  random (tokens: number, seed: number): Prompt
  /**
   * One block of `blockSize` tokens per seed, concatenated, the last cut so the whole is `tokens`
   * long: prompts whose seed lists share a prefix share that token prefix exactly.
   */
  blocks (blockSeeds: readonly number[], blockSize: number, tokens: number): Prompt
}

interface IdSampler {
  sampleIds (count: number, seed: number): Uint32Array
}

function hasSampler (tok: Tokenizer): tok is Tokenizer & IdSampler {
  return typeof (tok as Partial<IdSampler>).sampleIds === 'function'
}

/** Bounded memo of full block texts: traces reuse a block many times (block 0 in every request). */
class BlockCache {
  private readonly map = new Map<string, string>()
  private readonly cap: number

  constructor (cap: number) {
    this.cap = cap
  }

  get (key: string, make: () => string): string {
    const hit = this.map.get(key)
    if (hit !== undefined) {
      // Re-insert to mark as recently used (Map keeps insertion order).
      this.map.delete(key)
      this.map.set(key, hit)
      return hit
    }
    const v = make()
    this.map.set(key, v)
    if (this.map.size > this.cap) this.map.delete(this.map.keys().next().value!)
    return v
  }
}

const BLOCK_CACHE_ENTRIES = 8192

class SampledPromptFactory implements PromptFactory {
  readonly exact = true
  readonly tokenizer: Tokenizer & IdSampler
  private readonly cache = new BlockCache(BLOCK_CACHE_ENTRIES)

  constructor (tok: Tokenizer & IdSampler) {
    this.tokenizer = tok
  }

  random (tokens: number, seed: number): Prompt {
    return { text: this.tokenizer.decode(this.tokenizer.sampleIds(tokens, seed)), tokens }
  }

  blocks (blockSeeds: readonly number[], blockSize: number, tokens: number): Prompt {
    let text = ''
    let left = tokens
    for (let i = 0; i < blockSeeds.length && left > 0; i++) {
      const seed = blockSeeds[i]!
      if (left >= blockSize) {
        text += this.cache.get(blockSize + ':' + seed, () => this.tokenizer.decode(this.tokenizer.sampleIds(blockSize, seed)))
        left -= blockSize
      } else {
        text += this.tokenizer.decode(this.tokenizer.sampleIds(left, seed))
        left = 0
      }
    }
    // Seeds ran out before the length did (a trace record with too few hash ids): pad at random.
    if (left > 0) text += this.tokenizer.decode(this.tokenizer.sampleIds(left, blockSeeds.length * 7919 + tokens))
    return { text, tokens }
  }
}

/** Fits prompts to a tokenizer that cannot promise a round trip, using built-in words as raw text. */
class FittedPromptFactory implements PromptFactory {
  readonly exact = false
  readonly tokenizer: Tokenizer
  private readonly words = builtinTokenizer()
  private readonly cache = new BlockCache(BLOCK_CACHE_ENTRIES)

  constructor (tok: Tokenizer) {
    this.tokenizer = tok
  }

  random (tokens: number, seed: number): Prompt {
    return { text: this.fit(tokens, seed), tokens }
  }

  blocks (blockSeeds: readonly number[], blockSize: number, tokens: number): Prompt {
    let text = ''
    let left = tokens
    for (let i = 0; i < blockSeeds.length && left > 0; i++) {
      const seed = blockSeeds[i]!
      const take = Math.min(left, blockSize)
      if (take === blockSize) {
        text += this.cache.get(blockSize + ':' + seed, () => this.fit(blockSize, seed))
      } else {
        // A cut block is a token prefix of its full block, as with the built-in tokenizer.
        const full = this.cache.get(blockSize + ':' + seed, () => this.fit(blockSize, seed))
        text += this.tokenizer.decode(this.tokenizer.encode(full).subarray(0, take))
      }
      left -= take
    }
    if (left > 0) text += this.fit(left, blockSeeds.length * 7919 + tokens)
    return { text, tokens }
  }

  /** Text that encodes to `tokens` ids, or as near as four rounds of cut-and-check get. */
  private fit (tokens: number, seed: number): string {
    let words = tokens
    let ids = this.tokenizer.encode(this.words.decode(this.words.sampleIds(words, seed)))
    while (ids.length < tokens) {
      words *= 2
      ids = this.tokenizer.encode(this.words.decode(this.words.sampleIds(words, seed)))
    }
    let cut = tokens
    let text = this.tokenizer.decode(ids.subarray(0, cut))
    for (let round = 0; round < 4; round++) {
      const got = this.tokenizer.encode(text).length
      if (got === tokens) break
      cut = Math.max(1, Math.min(ids.length, cut + tokens - got))
      text = this.tokenizer.decode(ids.subarray(0, cut))
    }
    return text
  }
}

export function createPromptFactory (tok: Tokenizer): PromptFactory {
  return hasSampler(tok) ? new SampledPromptFactory(tok) : new FittedPromptFactory(tok)
}
