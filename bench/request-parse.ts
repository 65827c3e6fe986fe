/**
 * `request-parse`: what reading an OpenAI request body costs the gateway per request:
 * parseRequest (src/frontend/validate.ts: a one-pass byte scan over json-scan.ts up to 2 KiB,
 * JSON.parse past that) side by side with a UTF-8 decode, JSON.parse and the same checks over the
 * parsed document for every body. Bodies: the proxy bench's 105-byte chat request, chats of
 * about 1 and 2 KiB, a chat with a 4 KiB system prompt and eight turns, a 64 KiB completions
 * prompt. Time per body, and where perf counts, parseRequest's user-space instructions per body
 * (the same loop in a child process under perf stat: `request-parse --loop I --calls N`).
 * `--baseline REF` adds parseRequest built from REF (bench/lib/baseline.ts), side by side.
 */
import { Buffer } from 'node:buffer'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { parseRequest, parseRequestDocument, type Endpoint } from '../src/frontend/validate.js'
import { baselineSource } from './lib/baseline.js'
import { recordFigures } from './lib/docs.js'
import { instructionsPerCall, perfCounts, runLoop } from './lib/perf.js'
import { machine, table, timePerCall as time } from './lib/table.js'

type Parse = typeof parseRequest

async function loadParse (src: string): Promise<Parse> {
  return (await import(pathToFileURL(join(src, 'frontend', 'validate.js')).href) as { parseRequest: Parse }).parseRequest
}

/** Calls per instruction count (start-up noise well under 1%; the 64 KiB body needs fewer). */
function countCalls (bytes: number): number {
  return bytes > 16 * 1024 ? 5_000 : 100_000
}

/** The baseline's work: toString + JSON.parse + the checks over the document. */
function checked (endpoint: Endpoint, raw: Buffer): number {
  return parseRequestDocument(endpoint, raw).promptChars
}

function words (n: number): string {
  const w = ['the', 'gateway', 'reads', 'a', 'body', 'of', 'tokens', 'and', 'routes', 'it', 'to', 'workers', 'é', 'naïve']
  let out = ''
  for (let i = 0; i < n; i++) out += (i === 0 ? '' : ' ') + w[(i * 7 + (i >> 3)) % w.length]
  return out
}

interface Body { name: string, endpoint: Endpoint, raw: Buffer }

function bodies (): Body[] {
  const chat = (messages: unknown[], extra: Record<string, unknown> = {}): Buffer => Buffer.from(JSON.stringify({ model: 'm', messages, ...extra }))
  const turns: unknown[] = [{ role: 'system', content: words(700) }]
  for (let t = 0; t < 8; t++) turns.push({ role: t % 2 === 0 ? 'user' : 'assistant', content: words(60) })
  return [
    { name: 'chat, 1 message (the proxy bench)', endpoint: 'chat', raw: Buffer.from('{"model":"m","messages":[{"role":"user","content":"Hello, how are you?"}],"max_tokens":16,"stream":false}') },
    { name: 'chat, 1 KiB message', endpoint: 'chat', raw: chat([{ role: 'user', content: words(150) }], { max_tokens: 64 }) },
    { name: 'chat, 2 KiB message', endpoint: 'chat', raw: chat([{ role: 'user', content: words(300) }], { max_tokens: 64 }) },
    { name: 'chat, 4 KiB system + 8 turns', endpoint: 'chat', raw: chat(turns, { max_tokens: 256, temperature: 0.7, stream: true, stream_options: { include_usage: true } }) },
    { name: 'completions, 64 KiB prompt', endpoint: 'completions', raw: Buffer.from(JSON.stringify({ model: 'm', prompt: words(10_000), max_tokens: 64 })) }
  ]
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { rounds: { type: 'string', default: '5' }, 'min-ms': { type: 'string', default: '300' }, 'no-record': { type: 'boolean', default: false }, baseline: { type: 'string' }, loop: { type: 'string' }, calls: { type: 'string' }, src: { type: 'string' } } })
  if (values.loop !== undefined) {
    // A child counted by perf (instructionsPerCall): the loop alone, no output.
    const parse = values.src === undefined ? parseRequest : await loadParse(values.src)
    const b = bodies()[Number(values.loop)]!
    runLoop(() => parse(b.endpoint, b.raw).promptChars, Number(values.calls))
    return
  }
  const rounds = Number(values.rounds)
  const minMs = Number(values['min-ms'])
  let base: { parse: Parse, label: string, src: string } | null = null
  if (values.baseline !== undefined) {
    process.stderr.write(`request-parse: building ${values.baseline}...\n`)
    const { src, commit } = baselineSource(values.baseline, 'request-parse')
    base = { parse: await loadParse(src), label: commit, src }
  }
  const counts = perfCounts()
  const inst = (i: number, bytes: number, src?: string): number => counts ? instructionsPerCall('request-parse', String(i), src, countCalls(bytes)) : NaN
  const rows: Array<Array<string | number>> = []
  let sink = 0
  const all = bodies()
  for (let i = 0; i < all.length; i++) {
    const b = all[i]!
    process.stderr.write(`request-parse: ${b.name}...\n`)
    // Both must agree before either is timed.
    if (parseRequest(b.endpoint, b.raw).promptChars !== checked(b.endpoint, b.raw)) throw new Error(`the two readings of '${b.name}' disagree`)
    const scan = time(() => { sink += parseRequest(b.endpoint, b.raw).promptChars }, rounds, minMs)
    const parse = time(() => { sink += checked(b.endpoint, b.raw) }, rounds, minMs)
    const iScan = inst(i, b.raw.length)
    const row: Array<string | number> = [b.name, b.raw.length, parseRequest(b.endpoint, b.raw).scanned ? 'scan' : 'JSON.parse', scan, parse, parse / scan, iScan]
    if (base !== null) {
      const bp = base.parse
      const tBase = time(() => { sink += bp(b.endpoint, b.raw).promptChars }, rounds, minMs)
      const iBase = inst(i, b.raw.length, base.src)
      row.push(tBase, iBase, iScan / iBase)
    }
    rows.push(row)
  }
  if (sink === 0) console.log('')
  const perfNote = counts ? '; inst: parseRequest\'s user-space instructions per body (perf stat of 2N calls in a child minus N)' : '; inst: - (perf cannot count here)'
  const vs = base === null ? '' : `; @ ${base.label}: parseRequest built from ${values.baseline}`
  const header = `request-parse — ${await machine()}\ncommand: npm run bench -- request-parse ${argv.join(' ')}\nper request body: parseRequest (one pass over the bytes up to 2 KiB, nothing built; JSON.parse past that) vs toString + JSON.parse + the same checks; median of ${rounds} passes of ${minMs} ms${perfNote}${vs}`
  const t = table(['body', 'bytes', 'parseRequest reads by', 'parseRequest µs', 'JSON.parse + checks µs', 'speed-up', 'inst', ...(base === null ? [] : [`@ ${base.label} µs`, `inst @ ${base.label}`, 'inst now ÷ then'])], rows)
  console.log('\n' + header + '\n\n' + t)
  if (!values['no-record']) recordFigures('request-parse', `## request-parse\n\n${header.replace(/\n/g, '\n\n')}\n\n${t}\n`)
}
