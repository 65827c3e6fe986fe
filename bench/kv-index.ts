/**
 * `kv-index`: the KV index's two costs, on one core.
 *
 * 1. Ingestion: block events (blocks stored + blocks removed) applied per second, from vLLM-format
 *    msgpack payloads (the mock engine's encoder) through decode, our block hashing and the index.
 *    The stream comes from a cache simulator: 4 workers with 8192-block LRU caches, requests =
 *    one of 48 shared prefixes (Zipf popularity, 16–512 blocks) + a unique tail + a few decode
 *    blocks, evictions as BlockRemoved. Each stage is also timed alone, next to the library a naive
 *    implementation would use (msgpackr with BigInt hashes; the native xxh3 of hash.ts).
 * 2. Lookup latency for 1k / 8k / 32k-token prompts (block size 16: 64 / 512 / 2048 blocks) with 8
 *    and 64 workers: 32 long shared documents; each worker holds each document to a random depth
 *    (or not at all) plus its own branches; 30% of queries hit a "hot" document every worker holds
 *    in full (the worst case: the walk runs to the end with every worker still matching).
 *    Keys are computed before timing (the hashing cost is its own column).
 *
 * Flags: --quick (smaller stream and fewer queries).
 */
import { parseArgs } from 'node:util'
import { Unpackr } from 'msgpackr'
import { BlockHasher, BlockKeyer, BlockKeys, KvBatchDecoder, KvIndex, KvSourceCounters, OverlapScores, WorkerEventApplier } from '../src/kv/index.js'
import type { DecodedBlocks, KvEventSink } from '../src/kv/index.js'
import { BlockRemoved, BlockStored, KvBatchEncoder, KvEventBatch } from '../src/mocker/index.js'
import type { KvEvent } from '../src/mocker/index.js'
import { machine, table } from './lib/table.js'

const BS = 16

function log (msg: string): void {
  process.stderr.write(`[kv-index] ${msg}\n`)
}

/** A small deterministic PRNG (mulberry32), so runs are comparable. */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function tokenOf (a: number, b: number, k: number): number {
  return (Math.imul(a * 7919 + b, 0x9e3779b1) ^ Math.imul(k + 1, 0x85ebca77)) >>> 15
}

// ---------- 1. ingestion ----------

interface Stream {
  payloads: Buffer[]
  worker: Int32Array
  storedBlocks: number
  removedBlocks: number
  /** For the per-stage timings: every stored event's tokens. */
  storedTokens: Uint32Array[]
}

function makeStream (targetBlockEvents: number): Stream {
  const random = rng(42)
  const WORKERS = 4
  const CAPACITY = 8192
  const PREFIXES = 48
  const prefixLen = Array.from({ length: PREFIXES }, () => 16 + Math.floor(random() ** 2 * 496))
  // Zipf(1.1) popularity.
  const weights = Array.from({ length: PREFIXES }, (_, i) => 1 / (i + 1) ** 1.1)
  const total = weights.reduce((a, b) => a + b, 0)
  const cdf: number[] = []
  weights.reduce((acc, w) => { cdf.push((acc + w) / total); return acc + w }, 0)
  const caches = Array.from({ length: WORKERS }, () => new Map<string, bigint>())
  let nextHash = 1n
  let uniq = 0
  const encoder = new KvBatchEncoder('map')
  const out: Stream = { payloads: [], worker: new Int32Array(0), storedBlocks: 0, removedBlocks: 0, storedTokens: [] }
  const workers: number[] = []
  let seq = 0
  while (out.storedBlocks + out.removedBlocks < targetBlockEvents) {
    const w = Math.floor(random() * WORKERS)
    const cache = caches[w]!
    const u = random()
    const p = cdf.findIndex((c) => c >= u)
    const tailId = ++uniq
    const tail = 4 + Math.floor(random() * 60)
    const decode = 1 + Math.floor(random() * 4)
    // The request's blocks: shared prefix, then its own.
    const ids: string[] = []
    const toks: Array<[number, number]> = []
    for (let i = 0; i < prefixLen[p]!; i++) { ids.push(`p${p}:${i}`); toks.push([p, i]) }
    for (let i = 0; i < tail + decode; i++) { ids.push(`u${tailId}:${i}`); toks.push([100_000 + tailId, i]) }
    let hit = 0
    while (hit < ids.length && cache.has(ids[hit]!)) {
      const h = cache.get(ids[hit]!)!
      cache.delete(ids[hit]!) // touch: most recently used
      cache.set(ids[hit]!, h)
      hit++
    }
    const events: KvEvent[] = []
    const need = ids.length - hit
    const evicted: bigint[] = []
    while (cache.size + need > CAPACITY) {
      const oldest = cache.keys().next().value!
      evicted.push(cache.get(oldest)!)
      cache.delete(oldest)
    }
    if (evicted.length > 0) {
      events.push(new BlockRemoved(evicted))
      out.removedBlocks += evicted.length
    }
    let parent = hit > 0 ? cache.get(ids[hit - 1]!)! : null
    const emit = (from: number, to: number): void => {
      const hashes: bigint[] = []
      const tokens = new Uint32Array((to - from) * BS)
      for (let i = from; i < to; i++) {
        const h = (nextHash++ * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn
        hashes.push(h)
        cache.set(ids[i]!, h)
        const [a, b] = toks[i]!
        for (let k = 0; k < BS; k++) tokens[(i - from) * BS + k] = tokenOf(a, b, k)
      }
      events.push(new BlockStored(hashes, parent, tokens, BS))
      out.storedTokens.push(tokens)
      out.storedBlocks += to - from
      parent = hashes[hashes.length - 1]!
    }
    // Prefill stores the prompt in one event; decode stores its blocks one by one.
    const promptEnd = ids.length - decode
    if (hit < promptEnd) emit(hit, promptEnd)
    for (let i = Math.max(hit, promptEnd); i < ids.length; i++) emit(i, i + 1)
    out.payloads.push(encoder.encode(new KvEventBatch(seq++, 1.7e9 + seq / 100, events, 0)))
    workers.push(w)
  }
  out.worker = Int32Array.from(workers)
  return out
}

class CountingSink implements KvEventSink {
  blocks = 0
  stored (ev: DecodedBlocks): void { this.blocks += ev.count }
  removed (ev: DecodedBlocks): void { this.blocks += ev.count }
  cleared (): void {}
  unknown (): void {}
}

/** Best of `reps` timings of `fn`, in seconds. */
function best (reps: number, fn: () => void): number {
  let min = Infinity
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint()
    fn()
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / 1e9)
  }
  return min
}

function ingestion (target: number, reps: number): Array<Array<string | number>> {
  log(`generating ~${target} block events ...`)
  const s = makeStream(target)
  const blockEvents = s.storedBlocks + s.removedBlocks
  const bytes = s.payloads.reduce((n, p) => n + p.length, 0)
  log(`${s.payloads.length} batches, ${s.storedBlocks} stored + ${s.removedBlocks} removed blocks, ${(bytes / 1e6).toFixed(1)} MB`)
  const rows: Array<Array<string | number>> = []
  const row = (what: string, blocks: number, sec: number): void => {
    rows.push([what, blocks, blocks / sec / 1e6, sec * 1e9 / blocks])
    log(`${what}: ${(blocks / sec / 1e6).toFixed(2)} M/s`)
  }

  // Full pipeline, the headline.
  const full = (): KvIndex => {
    const index = new KvIndex({ blockSize: BS })
    const decoder = new KvBatchDecoder()
    const appliers = [0, 1, 2, 3].map((w) => new WorkerEventApplier(index, index.addWorker(`w${w}`), new BlockKeyer(BS), new KvSourceCounters()))
    for (let i = 0; i < s.payloads.length; i++) decoder.decode(s.payloads[i]!, appliers[s.worker[i]!]!)
    return index
  }
  full() // warm-up
  row('decode + hash + apply (the source path)', blockEvents, best(reps, full))

  const sink = new CountingSink()
  const decoder = new KvBatchDecoder()
  row('  decode only (msgpack cursor, no objects)', blockEvents, best(reps, () => { for (const p of s.payloads) decoder.decode(p, sink) }))
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' })
  row('  decode only, msgpackr with BigInt hashes (reference)', blockEvents, best(reps, () => { for (const p of s.payloads) unpackr.unpack(p) }))

  const keyer = new BlockKeyer(BS)
  const keys = new Int32Array(2 * 1024)
  row('  hash only, JS XXH3 (block-keys.ts)', s.storedBlocks, best(reps, () => {
    for (const t of s.storedTokens) {
      const n = t.length / BS
      for (let b = 0; b < n; b += 1024) keyer.keysOfWords(t, b * BS, Math.min(1024, n - b), keys, 0)
    }
  }))
  const hasher = new BlockHasher(BS)
  row('  hash only, native xxh3 (hash.ts, BigInt)', s.storedBlocks, best(Math.min(reps, 2), () => {
    for (const t of s.storedTokens) for (let b = 0; b * BS < t.length; b++) hasher.localHash(t, b * BS)
  }))

  // Apply only: events pre-decoded with their keys.
  interface Pre { w: number, engine: Int32Array, keys: Int32Array | null, count: number, parent: Int32Array | null }
  const pre: Pre[] = []
  const collect: KvEventSink & { w: number } = {
    w: 0,
    stored (ev) {
      const k = new Int32Array(2 * ev.count)
      keyer.keysOfWords(ev.tokens, 0, ev.count, k, 0)
      pre.push({ w: this.w, engine: ev.engine.slice(0, 2 * ev.count), keys: k, count: ev.count, parent: ev.hasParent ? ev.parent.slice() : null })
    },
    removed (ev) { pre.push({ w: this.w, engine: ev.engine.slice(0, 2 * ev.count), keys: null, count: ev.count, parent: null }) },
    cleared () {},
    unknown () {}
  }
  for (let i = 0; i < s.payloads.length; i++) { collect.w = s.worker[i]!; decoder.decode(s.payloads[i]!, collect) }
  const applyOnly = (): void => {
    const index = new KvIndex({ blockSize: BS })
    const slots = [0, 1, 2, 3].map((w) => index.addWorker(`w${w}`))
    for (const e of pre) {
      if (e.keys === null) index.removeBlocks(slots[e.w]!, e.engine, e.count)
      else index.storeBlocks(slots[e.w]!, e.engine, e.keys, e.count, e.parent)
    }
  }
  applyOnly()
  row('  index apply only (store by parent, remove)', blockEvents, best(reps, applyOnly))
  return rows
}

// ---------- 2. lookups ----------

interface LookupCell { workers: number, blocks: number, p50: number, p99: number, max: number, cpuMean: number, matched: number, hashUs: number, nodes: number }

function buildLookupIndex (workers: number, random: () => number): { index: KvIndex, docTokens: (d: number, len: number) => Uint32Array, docs: number, hot: number } {
  const index = new KvIndex({ blockSize: BS, initialNodes: 1 << 16 })
  const keyer = new BlockKeyer(BS)
  const DOCS = 32
  const DOC_BLOCKS = 2048
  const HOT = 0
  const docTokens = (d: number, len: number): Uint32Array => {
    const t = new Uint32Array(len * BS)
    for (let i = 0; i < len; i++) for (let k = 0; k < BS; k++) t[i * BS + k] = tokenOf(d, i, k)
    return t
  }
  const docKeys: Int32Array[] = []
  for (let d = 0; d < DOCS; d++) {
    const k = new Int32Array(2 * DOC_BLOCKS)
    keyer.keysOfWords(docTokens(d, DOC_BLOCKS), 0, DOC_BLOCKS, k, 0)
    docKeys.push(k)
  }
  let h = 1
  const engine = (n: number): Int32Array => {
    const e = new Int32Array(2 * n)
    for (let i = 0; i < n; i++) { e[2 * i] = h * 7; e[2 * i + 1] = h++ }
    return e
  }
  const branch = new Int32Array(2 * 64)
  for (let w = 0; w < workers; w++) {
    const slot = index.addWorker(`w${w}`)
    for (let d = 0; d < DOCS; d++) {
      const depth = d === HOT ? DOC_BLOCKS : random() < 0.5 ? 0 : Math.floor(random() * DOC_BLOCKS)
      if (depth === 0) continue
      const e = engine(depth)
      index.storeBlocks(slot, e, docKeys[d]!, depth, null)
      // Its own continuations below a few points of the document.
      for (let b = 0; b < 6; b++) {
        const at = Math.floor(random() * depth)
        for (let i = 0; i < 64; i++) { branch[2 * i] = (random() * 2 ** 32) | 0; branch[2 * i + 1] = (random() * 2 ** 32) | 0 }
        const parent = at === 0 ? null : e.subarray(2 * (at - 1), 2 * at)
        index.storeBlocks(slot, engine(64), branch, 64, parent)
      }
    }
  }
  return { index, docTokens, docs: DOCS, hot: HOT }
}

async function lookups (workers: number, queries: number): Promise<LookupCell[]> {
  const random = rng(7 + workers)
  log(`building the index for ${workers} workers ...`)
  const { index, docTokens, docs, hot } = buildLookupIndex(workers, random)
  // Building allocated a lot: let the GC's concurrent work finish before anything is timed.
  await new Promise((resolve) => setTimeout(resolve, 500))
  const keyer = new BlockKeyer(BS)
  const scores = new OverlapScores(index.slotCapacity)
  const cells: LookupCell[] = []
  for (const blocks of [64, 512, 2048]) {
    // Queries: a document's first part (30%: the hot one, in full), then the request's own blocks.
    const prepared: BlockKeys[] = []
    const hashNs: number[] = []
    for (let q = 0; q < queries; q++) {
      const d = random() < 0.3 ? hot : 1 + Math.floor(random() * (docs - 1))
      const shared = d === hot ? blocks : Math.max(1, Math.floor(blocks * (0.25 + 0.75 * random())))
      const tokens = new Uint32Array(blocks * BS)
      tokens.set(docTokens(d, shared))
      for (let i = shared * BS; i < tokens.length; i++) tokens[i] = (random() * 150_000) | 0
      const t0 = process.hrtime.bigint()
      const k = keyer.keys(tokens, new BlockKeys(blocks))
      hashNs.push(Number(process.hrtime.bigint() - t0))
      prepared.push(k)
    }
    for (const k of prepared) index.lookup(k, scores) // warm-up: JIT tiers, and the caches of a steady state
    // performance.now() rather than hrtime.bigint(): no BigInt garbage between lookups. The CPU-time
    // mean is immune to the preemptions that inflate the tail on a shared machine.
    const ns = new Float64Array(prepared.length)
    let matched = 0
    const cpu0 = process.cpuUsage()
    for (let q = 0; q < prepared.length; q++) {
      const t0 = performance.now()
      matched += index.lookup(prepared[q]!, scores)
      ns[q] = (performance.now() - t0) * 1e6
    }
    const cpu = process.cpuUsage(cpu0)
    ns.sort()
    hashNs.sort((a, b) => a - b)
    const cell = {
      workers, blocks, p50: ns[Math.floor(ns.length * 0.5)]! / 1000, p99: ns[Math.floor(ns.length * 0.99)]! / 1000,
      max: ns[ns.length - 1]! / 1000, matched: matched / prepared.length, hashUs: hashNs[Math.floor(hashNs.length * 0.5)]! / 1000, nodes: index.nodeCount,
      cpuMean: (cpu.user + cpu.system) / prepared.length
    }
    log(`${workers} workers, ${blocks} blocks: p50 ${cell.p50.toFixed(2)} µs, p99 ${cell.p99.toFixed(2)} µs`)
    cells.push(cell)
  }
  return cells
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean', default: false } }, strict: true })
  const quick = values.quick === true
  console.log(`kv-index — ${await machine()}`)
  const rows = ingestion(quick ? 300_000 : 1_500_000, quick ? 2 : 4)
  rows.forEach((r) => { r[1] = String(r[1]) })
  console.log('\nIngestion, one core (block events = blocks stored + blocks removed; Dynamo single-threaded tree ≈ 0.6 M ops/s)')
  table(['stage', 'blocks', 'M blocks/s', 'ns/block'], rows)
  const cells = [...await lookups(8, quick ? 600 : 3000), ...await lookups(64, quick ? 600 : 3000)]
  console.log('\nLookup latency, block size 16 (goal: p99 ≤ 50 µs at 2048 blocks × 64 workers); hashing the prompt is extra')
  table(['workers', 'prompt blocks', 'p50 µs', 'p99 µs', 'max µs', 'mean CPU µs', 'mean longest match', 'hash prompt µs (p50)', 'tree nodes'],
    cells.map((c) => [String(c.workers), `${c.blocks} (${c.blocks * BS / 1024}k tokens)`, c.p50, c.p99, c.max, c.cpuMean, Math.round(c.matched), c.hashUs, c.nodes]))
}

// Runnable alone: node dist/bench/kv-index.js [--quick]
if (import.meta.url === `file://${process.argv[1] ?? ''}`) void main(process.argv.slice(2))
