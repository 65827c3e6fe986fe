/**
 * Stop strings over streamed text. Text that might be the start of a stop string is held back
 * until it is known not to be one, so a stop string never reaches the client even when it spans
 * tokens (vLLM's behaviour with include_stop_str_in_output false).
 */
export class StopMatcher {
  private readonly stops: readonly string[]
  private readonly longest: number
  private held: string
  /** Text released by the last `push` (or by `flush`). */
  released: string
  /** The stop string that matched, once one has. */
  matched: string | null

  constructor (stops: readonly string[]) {
    this.stops = stops
    let longest = 0
    for (const s of stops) if (s.length > longest) longest = s.length
    this.longest = longest
    this.held = ''
    this.released = ''
    this.matched = null
  }

  /** Adds a piece of output; true when a stop string is now complete (`released` ends before it). */
  push (piece: string): boolean {
    const text = this.held + piece
    let cut = -1
    for (const s of this.stops) {
      const at = text.indexOf(s)
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at
        this.matched = s
      }
    }
    if (cut >= 0) {
      this.released = text.slice(0, cut)
      this.held = ''
      return true
    }
    const hold = this.partialSuffix(text)
    this.released = hold === 0 ? text : text.slice(0, text.length - hold)
    this.held = hold === 0 ? '' : text.slice(text.length - hold)
    return false
  }

  /** Releases whatever is held (generation ended for another reason). */
  flush (): string {
    const out = this.held
    this.held = ''
    return out
  }

  // Length of the longest suffix of `text` that is a proper prefix of some stop string.
  private partialSuffix (text: string): number {
    const max = Math.min(this.longest - 1, text.length)
    for (let k = max; k > 0; k--) {
      const start = text.length - k
      for (const s of this.stops) {
        if (s.length > k && s.startsWith(text.slice(start), 0)) return k
      }
    }
    return 0
  }
}
