/**
 * V8 heap settings for the gateway process (`switchyard serve`), applied before it starts.
 *
 * Allocation-site pretenuring is turned off. V8 watches which allocation sites produce objects
 * that survive scavenges and, past a threshold, allocates their later objects straight in the old
 * generation. A gateway's streams make that happen: while 256-token streams run at concurrency
 * 256, a request's objects live for seconds, so their sites get pretenured. The decision outlives
 * the streams. Short requests that come afterwards still get their objects from those sites, but
 * now in old space, and they die there. Until a major GC sweeps them, each dead old object's
 * pointers into the young generation count as roots for every scavenge, so the young objects it
 * points to survive and get promoted as well. On a gateway under json load at concurrency 64
 * after a few seconds of streams and 8 KiB prompts at concurrency 256, --trace-gc-nvp showed 17%
 * of each scavenge promoted (~2.3 MB) and a mark-compact every 1-2 s with pretenuring, nothing
 * promoted without. Reproduced side by side by `npm run bench -- proxy --baseline 0f84657` (the
 * last build with pretenuring on; its warm-up runs the streams first): json 0.84-0.86x the
 * baseline's CPU per request, json8k 0.70-0.94x, streams unchanged.
 * The gateway's truly long-lived objects (connections, the registry's snapshots, metrics) are few,
 * so copying them once or twice on their way to old space costs nothing that shows.
 *
 * Unlike the heap's sizes (--min-semi-space-size has no effect once the heap is set up), V8 reads
 * this flag after start-up, so setting it at run time works: checked with the trace above (no
 * promotion; 2-4 mark-compacts over the run where there were 20-24). `node
 * --allocation-site-pretenuring` keeps V8's default.
 */
import { setFlagsFromString } from 'node:v8'

const FLAG = 'allocation-site-pretenuring'

/** Applies the gateway's heap settings unless node was given the flag explicitly; says what it did. */
export function tuneHeapForGateway (execArgv: readonly string[] = process.execArgv): 'applied' | 'left to node flags' {
  // V8 spells a flag with dashes or underscores; NODE_OPTIONS does not take this one at all.
  const given = (a: string): boolean => a.replace(/_/g, '-').replace(/^--no-/, '--') === `--${FLAG}`
  if (execArgv.some(given)) return 'left to node flags'
  setFlagsFromString(`--no-${FLAG}`)
  return 'applied'
}
