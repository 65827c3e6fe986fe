/**
 * Token ids of the text between added tokens, cached.
 *
 * Hugging Face tokenizers split the input on added tokens (<|im_start|>, <|im_end|>, ...) before
 * normalizing and running the model, so the ids of a text are the ids of its pieces between added
 * tokens, concatenated. A chat prompt rendered by its template is such a sequence of pieces, one
 * or more per message: a multi-turn conversation resends every earlier message, and most
 * requests share a system prompt. Caching ids per piece leaves only the new message to encode
 * (BPE costs about 1.3 µs per token; DESIGN 7). Added tokens with lstrip/rstrip/normalized flags
 * change their neighbours, so the cache is only used when no added token has them, and the
 * tokenizer checks on load that cached encoding equals the plain one on a probe text.
 */
export class SegmentCache {
  private readonly split: RegExp
  private readonly ids: Map<string, number>
  private readonly cache = new Map<string, Uint32Array>()
  private cachedTokens = 0
  hits = 0
  misses = 0

  /**
   * @param added the added tokens (content -> id)
   * @param encodePiece encodes text that holds no added token
   * @param maxTokens bound on the ids kept (least recently used pieces go first)
   */
  constructor (added: ReadonlyMap<string, number>, private readonly encodePiece: (text: string) => ArrayLike<number>, private readonly maxTokens = 1 << 22) {
    this.ids = new Map(added)
    // Longest first, so a token that is a prefix of another does not cut it.
    const alternatives = [...added.keys()].sort((a, b) => b.length - a.length).map(s => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    this.split = new RegExp(alternatives.join('|'), 'g')
  }

  encode (text: string): Uint32Array {
    const parts: ArrayLike<number>[] = []
    let total = 0
    let last = 0
    this.split.lastIndex = 0
    for (let m = this.split.exec(text); m !== null; m = this.split.exec(text)) {
      if (m.index > last) { const p = this.piece(text.slice(last, m.index)); parts.push(p); total += p.length }
      parts.push([this.ids.get(m[0])!])
      total++
      last = m.index + m[0].length
    }
    if (last < text.length) { const p = this.piece(text.slice(last)); parts.push(p); total += p.length }
    const out = new Uint32Array(total)
    let at = 0
    for (const p of parts) {
      if (p instanceof Uint32Array) out.set(p, at)
      else for (let i = 0; i < p.length; i++) out[at + i] = p[i]!
      at += p.length
    }
    return out
  }

  /** Forgets every cached piece (benchmarks start each pass cold). */
  clear (): void {
    this.cache.clear()
    this.cachedTokens = 0
  }

  private piece (text: string): Uint32Array {
    const hit = this.cache.get(text)
    if (hit !== undefined) {
      this.hits++
      // Most recently used last: Map keeps insertion order.
      this.cache.delete(text)
      this.cache.set(text, hit)
      return hit
    }
    this.misses++
    const ids = Uint32Array.from(this.encodePiece(text))
    if (ids.length <= this.maxTokens) {
      this.cache.set(text, ids)
      this.cachedTokens += ids.length
      for (const [k, v] of this.cache) {
        if (this.cachedTokens <= this.maxTokens) break
        this.cache.delete(k)
        this.cachedTokens -= v.length
      }
    }
    return ids
  }
}
