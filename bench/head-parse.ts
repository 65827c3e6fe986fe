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
 */
import { Buffer } from 'node:buffer'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { COMPLETE, ResponseParser } from '../src/transport/http1/response-parser.js'
import { parseRequestHead } from '../src/frontend/http1/request-head.js'
import { buildBaseline } from './lib/baseline.js'
import { recordFigures } from './lib/docs.js'
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

/** A function parsing one response head (and its short body) with `Ctor` in the given mode. */
function responseParse (Ctor: ParserCtor, bytes: Buffer, linesOnly: boolean): () => number {
  // The gateway's reads land in one large buffer: a view of one, as the pool hands the parser.
  const read = Buffer.alloc(64 * 1024)
  bytes.copy(read)
  const view = read.subarray(0, bytes.length)
  let n = 0
  const p = new Ctor({ onHead: () => { n++; return true }, onBody: () => true })
  return () => {
    p.reset(false, linesOnly)
    if (p.execute(view, 0) !== COMPLETE) throw new Error('the response did not parse')
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

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { rounds: { type: 'string', default: '5' }, 'min-ms': { type: 'string', default: '300' }, baseline: { type: 'string' }, 'no-record': { type: 'boolean', default: false } } })
  const rounds = Number(values.rounds)
  const minMs = Number(values['min-ms'])
  let base: { Parser: ParserCtor, parseHead: HeadParse, label: string } | null = null
  if (values.baseline !== undefined) {
    process.stderr.write(`head-parse: building ${values.baseline}...\n`)
    const { cli, commit } = buildBaseline(values.baseline, mkdtempSync(join(tmpdir(), 'swy-head-parse-baseline-')))
    const src = join(dirname(cli), '..')
    const rp = await import(pathToFileURL(join(src, 'transport', 'http1', 'response-parser.js')).href) as { ResponseParser: ParserCtor }
    const rh = await import(pathToFileURL(join(src, 'frontend', 'http1', 'request-head.js')).href) as { parseRequestHead: HeadParse }
    base = { Parser: rp.ResponseParser, parseHead: rh.parseRequestHead, label: commit }
  }
  let sink = 0
  const resRows: Array<Array<string | number>> = []
  for (const r of RESPONSES) {
    process.stderr.write(`head-parse: response ${r.name}...\n`)
    const fl = responseParse(ResponseParser, r.bytes, true)
    const obj = responseParse(ResponseParser, r.bytes, false)
    const tLines = timePerCall(() => { sink += fl() }, rounds, minMs)
    const tObj = timePerCall(() => { sink += obj() }, rounds, minMs)
    const row: Array<string | number> = [r.name, r.bytes.length, tLines * 1000, tObj * 1000, tObj / tLines]
    if (base !== null) {
      const bl = responseParse(base.Parser, r.bytes, true)
      const tBase = timePerCall(() => { sink += bl() }, rounds, minMs)
      row.push(tBase * 1000, tBase / tLines)
    }
    resRows.push(row)
  }
  const reqRows: Array<Array<string | number>> = []
  for (const q of REQUESTS) {
    process.stderr.write(`head-parse: request ${q.name}...\n`)
    const ours = requestParse(parseRequestHead, q.head, false)
    const tOurs = timePerCall(() => { sink += ours() }, rounds, minMs)
    const row: Array<string | number> = [q.name, q.head.length, tOurs * 1000]
    if (base !== null) {
      const b = requestParse(base.parseHead, q.head, base.parseHead.length === 1)
      const tBase = timePerCall(() => { sink += b() }, rounds, minMs)
      row.push(tBase * 1000, tBase / tOurs)
    }
    reqRows.push(row)
  }
  if (sink === 0) console.log('')
  const vs = base === null ? '' : `; @ ${base.label}: the same parse built from ${values.baseline}`
  const header = `head-parse — ${await machine()}\ncommand: npm run bench -- head-parse ${argv.join(' ')}\nns per head, median of ${rounds} passes of ${minMs} ms${vs}`
  console.log('\n' + header + '\n\nresponse heads (a worker\'s answer, parsed by the http:// pool)')
  const t1 = table(['response', 'bytes', 'forward-lines ns', 'headers object ns', 'object ÷ lines', ...(base === null ? [] : [`lines @ ${base.label} ns`, `@ ${base.label} ÷ now`])], resRows)
  console.log('\nrequest heads (a client\'s request, the fast server\'s head step: latin1 text, head end, parseRequestHead)')
  const t2 = table(['request', 'head bytes', 'ns', ...(base === null ? [] : [`@ ${base.label} ns`, `@ ${base.label} ÷ now`])], reqRows)
  if (!values['no-record']) recordFigures('head-parse', `## head-parse\n\n${header.replace(/\n/g, '\n\n')}\n\nResponse heads (a worker's answer, parsed by the http:// pool)\n\n${t1}\n\nRequest heads (the fast server's head step)\n\n${t2}\n`)
}
