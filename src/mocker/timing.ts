/**
 * Dynamo's fitted pass-time model (DESIGN 5.4), in milliseconds of simulated GPU time.
 */

/** Time to prefill `tokens` new tokens in one pass; 0 when the pass has no prefill. */
export function prefillMs (tokens: number): number {
  if (tokens <= 0) return 0
  return 4.209989e-7 * tokens * tokens + 1.518344e-2 * tokens + 16.50142
}

/** Time of the decode part of a pass at KV usage `usage` (0..1); at least 1 ms. */
export function decodeMs (usage: number): number {
  const ms = -25.74 * usage * usage + 54.01 * usage + 5.74
  return ms < 1 ? 1 : ms
}

/**
 * Modeled pass time, divided by the speed-up ratio. A ratio of 0 means "as fast as possible":
 * the pass takes no simulated time at all.
 */
export function passMs (prefillTokens: number, hasDecode: boolean, usage: number, speedupRatio: number): number {
  if (speedupRatio === 0) return 0
  const ms = prefillMs(prefillTokens) + (hasDecode ? decodeMs(usage) : 0)
  return ms / speedupRatio
}
