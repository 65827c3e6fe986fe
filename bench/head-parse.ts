/**
 * `head-parse`: what the gateway's two HTTP head parses cost per request, side by side.
 *
 * - Response heads (a worker's answer): the http:// pool's forward-lines parse (ResponseParser in
 *   the mode the proxy uses: the head read as bytes, only the field lines to forward kept) next to
 *   the same parser building undici's headers object (the mode for other callers), on node's JSON
 *   and SSE answers and a uvicorn (vLLM) answer.
 * - Request heads (a client's request): the fast server's step (latin1 text of the read, the head's
 *   end, parseRequestHead) on wrk's three-header head and the official openai client's seventeen.
 *
 * `--baseline REF` adds the same parses from a build of REF (bench/lib/baseline.ts) as a column,
 * so a change to either parse is seen against what it replaces in one run.
 *
 * Where perf counts (bench/lib/perf.ts), each parse also gets its user-space instructions per
 * head: the same loop run in a child process (`head-parse --loop KEY --calls N`) under perf stat.
 * Time per head moves 20-50% between runs on a shared machine; instructions move a few percent.
 */
import { Buffer } from 'node:buffer'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { COMPLETE, ResponseParser } from '../src/transport/http1/response-parser.js'
import { parseRequestHead } from '../src/frontend/http1/request-head.js'
import { BufferViews } from '../src/shared/buffer-view.js'
import { baselineSource } from './lib/baseline.js'
import { recordFigures } from './lib/docs.js'
import { instructionsPerCall, perfCounts, runLoop } from './lib/perf.js'
import { machine, table, timePerCall } from './lib/table.js'

const RESPONSES: Array<{ name: string, bytes: Buffer }> = [
  { name: 'node, JSON (the proxy bench\'s worker)', bytes: Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nDate: Tue, 24 Nov 2026 06:44:05 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\n\r\n{}', 'latin1') },
  { name: 'node, SSE (chunked)', bytes: Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nDate: Tue, 24 Nov 2026 06:44:05 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'latin1') },
  { name: 'uvicorn (vLLM), JSON', bytes: Buffer.from('HTTP/1.1 200 OK\r\ndate: Tue, 24 Nov 2026 06:44:05 GMT\r\nserver: uvicorn\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}', 'latin1') }
]

const BODY = '{"model":"m","messages":[{"role":"user","content":"Hello, how are you?"}],"max_tokens":16,"stream":false}'
const REQUESTS: Array<{ name: string, head: string }> = [
  { name: 'wrk (3 fields)', head: 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:19010\r\nContent-Length: 105\r\nContent-Type: application/json\r\n\r\n' },
  { name: 'openai npm client (17 fields)', head: 'POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:8080\r\naccept: application/json\r\ncontent-type: application/json\r\nuser-agent: OpenAI/JS 4.104.0\r\nx-stainless-lang: js\r\nx-stainless-package-version: 4.104.0\r\nx-stainless-os: Linux\r\nx-stainless-arch: x64\r\nx-stainless-runtime: node\r\nx-stainless-runtime-version: v20.19.2\r\nauthorization: Bearer sk-x\r\nx-stainless-retry-count: 0\r\nx-stainless-timeout: 600000\r\ncontent-length: 105\r\nconnection: keep-alive\r\naccept-encoding: gzip, deflate\r\n\r\n' }
]

type ParserCtor = typeof ResponseParser
type HeadParse = (text: string, headEnd: number) => { forward: string } | null
type ViewsCtor = typeof BufferViews

/** One build's parses: this one's, or a baseline's (whose tree may predate BufferViews). */
interface Build { Parser: ParserCtor, parseHead: HeadParse, Views: ViewsCtor | null }

/** A function parsing one response head (and its short body) with `Ctor` in the given mode. */
function responseParse (b: Build, bytes: Buffer, linesOnly: boolean): () => number {
  // The gateway's reads land in one large buffer: a view of one, as the pool hands the parser
  // (with the views it cuts body pieces from, in builds that have them).
  const read = Buffer.alloc(64 * 1024)
  bytes.copy(read)
  const views = b.Views === null ? null : new b.Views(read)
  const view = views === null ? read.subarray(0, bytes.length) : views.view(0, bytes.length)
  let n = 0
  const p = new b.Parser({ onHead: () => { n++; return true }, onBody: () => true })
  return () => {
    p.reset(false, linesOnly)
    if (p.execute(view, 0, views) !== COMPLETE) throw new Error('the response did not parse')
    return n
  }
}

/** The fast server's head step over a read holding `head` and the body. */
function requestParse (parse: HeadParse, head: string, slicedHead: boolean): () => number {
  const read = Buffer.alloc(64 * 1024)
  const len = read.write(head + BODY, 'latin1')
  const view = read.subarray(0, len)
  return () => {
    const text = view.toString('latin1', 0, Math.min(view.length, 4096))
    const end = text.indexOf('\r\n\r\n') + 4
    // Builds before b95420f took the head cut out of the text.
    const r = slicedHead ? (parse as unknown as (h: string) => { forward: string } | null)(text.slice(0, end)) : parse(text, end)
    if (r === null) throw new Error('the request head did not parse')
    return r.forward.length
  }
}

/**
 * The parse a case key names: `res:I:lines`, `res:I:obj` (RESPONSES[I], forward-lines or headers
 * object), `req:J` (REQUESTS[J]).
 */
function caseFn (b: Build, key: string): () => number {
  const [kind, i, mode] = key.split(':')
  if (kind === 'res') return responseParse(b, RESPONSES[Number(i)]!.bytes, mode === 'lines')
  return requestParse(b.parseHead, REQUESTS[Number(i)]!.head, b.parseHead.length === 1)
}

async function loadBuild (src: string): Promise<Build> {
  const rp = await import(pathToFileURL(join(src, 'transport', 'http1', 'response-parser.js')).href) as { ResponseParser: ParserCtor }
  const rh = await import(pathToFileURL(join(src, 'frontend', 'http1', 'request-head.js')).href) as { parseRequestHead: HeadParse }
  let Views: ViewsCtor | null = null
  try {
    Views = (await import(pathToFileURL(join(src, 'shared', 'buffer-view.js')).href) as { BufferViews: ViewsCtor }).BufferViews
  } catch { /* a build before BufferViews */ }
  return { Parser: rp.ResponseParser, parseHead: rh.parseRequestHead, Views }
}

const THIS_BUILD: Build = { Parser: ResponseParser, parseHead: parseRequestHead, Views: BufferViews }

/** Calls per instruction count: enough that start-up noise is well under 1% of the count. */
const COUNT_CALLS = 200_000

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { rounds: { type: 'string', default: '5' }, 'min-ms': { type: 'string', default: '300' }, baseline: { type: 'string' }, 'no-record': { type: 'boolean', default: false }, loop: { type: 'string' }, calls: { type: 'string' }, src: { type: 'string' } } })
  if (values.loop !== undefined) {
    // A child counted by perf (instructionsPerCall): the loop alone, no output.
    runLoop(caseFn(values.src === undefined ? THIS_BUILD : await loadBuild(values.src), values.loop), Number(values.calls))
    return
  }
  const rounds = Number(values.rounds)
  const minMs = Number(values['min-ms'])
  let base: (Build & { label: string, src: string }) | null = null
  if (values.baseline !== undefined) {
    process.stderr.write(`head-parse: building ${values.baseline}...\n`)
    const { src, commit } = baselineSource(values.baseline, 'head-parse')
    base = { ...await loadBuild(src), label: commit, src }
  }
  const counts = perfCounts()
  /** User instructions per head for `key` in this build (src undefined) or the baseline's. */
  const inst = (key: string, src?: string): number => counts ? instructionsPerCall('head-parse', key, src, COUNT_CALLS) : NaN
  let sink = 0
  const resRows: Array<Array<string | number>> = []
  for (let i = 0; i < RESPONSES.length; i++) {
    const r = RESPONSES[i]!
    process.stderr.write(`head-parse: response ${r.name}...\n`)
    const fl = caseFn(THIS_BUILD, `res:${i}:lines`)
    const obj = caseFn(THIS_BUILD, `res:${i}:obj`)
    const tLines = timePerCall(() => { sink += fl() }, rounds, minMs)
    const tObj = timePerCall(() => { sink += obj() }, rounds, minMs)
    const iLines = inst(`res:${i}:lines`)
    const row: Array<string | number> = [r.name, r.bytes.length, tLines * 1000, tObj * 1000, tObj / tLines, iLines, inst(`res:${i}:obj`)]
    if (base !== null) {
      const bl = caseFn(base, `res:${i}:lines`)
      const tBase = timePerCall(() => { sink += bl() }, rounds, minMs)
      const iBase = inst(`res:${i}:lines`, base.src)
      row.push(tBase * 1000, tBase / tLines, iBase, iLines / iBase)
    }
    resRows.push(row)
  }
  const reqRows: Array<Array<string | number>> = []
  for (let j = 0; j < REQUESTS.length; j++) {
    const q = REQUESTS[j]!
    process.stderr.write(`head-parse: request ${q.name}...\n`)
    const ours = caseFn(THIS_BUILD, `req:${j}`)
    const tOurs = timePerCall(() => { sink += ours() }, rounds, minMs)
    const iOurs = inst(`req:${j}`)
    const row: Array<string | number> = [q.name, q.head.length, tOurs * 1000, iOurs]
    if (base !== null) {
      const b = caseFn(base, `req:${j}`)
      const tBase = timePerCall(() => { sink += b() }, rounds, minMs)
      const iBase = inst(`req:${j}`, base.src)
      row.push(tBase * 1000, tBase / tOurs, iBase, iOurs / iBase)
    }
    reqRows.push(row)
  }
  if (sink === 0) console.log('')
  const vs = base === null ? '' : `; @ ${base.label}: the same parse built from ${values.baseline}`
  const perfNote = counts ? `; inst: user-space instructions per head (perf stat of ${2 * COUNT_CALLS} parses in a child minus ${COUNT_CALLS})` : '; inst: - (perf cannot count here)'
  const header = `head-parse — ${await machine()}\ncommand: npm run bench -- head-parse ${argv.join(' ')}\nns per head, median of ${rounds} passes of ${minMs} ms${perfNote}${vs}`
  console.log('\n' + header + '\n\nresponse heads (a worker\'s answer, parsed by the http:// pool)')
  const t1 = table(['response', 'bytes', 'forward-lines ns', 'headers object ns', 'object ÷ lines', 'lines inst', 'object inst', ...(base === null ? [] : [`lines @ ${base.label} ns`, `@ ${base.label} ÷ now`, `lines inst @ ${base.label}`, 'inst now ÷ then'])], resRows)
  console.log('\nrequest heads (a client\'s request, the fast server\'s head step: latin1 text, head end, parseRequestHead)')
  const t2 = table(['request', 'head bytes', 'ns', 'inst', ...(base === null ? [] : [`@ ${base.label} ns`, `@ ${base.label} ÷ now`, `inst @ ${base.label}`, 'inst now ÷ then'])], reqRows)
  if (!values['no-record']) recordFigures('head-parse', `## head-parse\n\n${header.replace(/\n/g, '\n\n')}\n\nResponse heads (a worker's answer, parsed by the http:// pool)\n\n${t1}\n\nRequest heads (the fast server's head step)\n\n${t2}\n`)
}
