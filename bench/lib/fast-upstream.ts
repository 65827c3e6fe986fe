/**
 * A fast OpenAI-protocol upstream for the proxy and streaming benchmarks, run as its own process:
 * `node dist/bench/lib/fast-upstream.js <port> <model> [<ms between tokens>]`.
 *
 * POST /v1/chat/completions answers a chat.completion (JSON) or, with `"stream": true`, an SSE
 * stream of `max_tokens` chat.completion.chunk events then `data: [DONE]`. Answers are rendered
 * once per token count and cached, so the upstream costs little. Each SSE chunk is its own write,
 * with a setImmediate between chunks so they do not coalesce into one TCP segment (an engine
 * emits one chunk per token).
 *
 * Paced (a third argument > 0): streams advance in steps `ms` apart, one chunk per stream per
 * step, as an engine's decode passes do (every running sequence gets a token per pass); a new
 * stream gets its first token at the next step, and the last chunk goes out with `[DONE]`. One
 * timer drives all streams. The steps keep to a grid; a late step is caught up at once, but by
 * at most one step, so an overloaded machine slows the streams down instead of bursting them.
 * GET /v1/models and /health answer what the gateway probes;
 * GET /stats answers `{"started":n,"done":n,"chunks":n}`: completions received and finished so
 * far, and SSE chunks written (the benchmark counts work over a measuring window with them).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'

interface Rendered {
  json: Buffer
  chunks: Buffer[]
}

const DONE = Buffer.from('data: [DONE]\n\n')
const CREATED = Math.floor(Date.now() / 1000)
const JSON_HEADERS = { 'content-type': 'application/json' }
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }
const PROMPT_TOKENS = 12

const cache = new Map<number, Rendered>()
let started = 0
let done = 0
let chunksSent = 0
/** Paced mode: ms between a stream's tokens (0: as fast as possible). */
let itlMs = 0
/** Paced streams in progress, in arrival order. */
const paced = new Set<Stream>()
let ticking = false
/** performance.now() when the next step is due. */
let stepAt = 0

function render (model: string, n: number): Rendered {
  let r = cache.get(n)
  if (r !== undefined) return r
  const id = 'chatcmpl-bench'
  const json = Buffer.from(JSON.stringify({
    id,
    object: 'chat.completion',
    created: CREATED,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: 'tok '.repeat(n) }, finish_reason: 'length' }],
    usage: { prompt_tokens: PROMPT_TOKENS, completion_tokens: n, total_tokens: PROMPT_TOKENS + n }
  }))
  const chunks: Buffer[] = []
  for (let i = 0; i < n; i++) {
    const delta = i === 0 ? { role: 'assistant', content: 'tok ' } : { content: 'tok ' }
    const ev = { id, object: 'chat.completion.chunk', created: CREATED, model, choices: [{ index: 0, delta, finish_reason: i === n - 1 ? 'length' : null }] }
    chunks.push(Buffer.from(`data: ${JSON.stringify(ev)}\n\n`))
  }
  r = { json, chunks }
  cache.set(n, r)
  return r
}

/** One SSE answer in progress. */
class Stream {
  res: ServerResponse
  chunks: Buffer[]
  i: number
  closed: boolean
  /** Paced: waiting for 'drain'; it skips steps until then. */
  blocked: boolean
  onDrain: () => void

  constructor (res: ServerResponse, chunks: Buffer[]) {
    this.res = res
    this.chunks = chunks
    this.i = 0
    this.closed = false
    this.blocked = false
    this.onDrain = () => { this.blocked = false }
  }
}

function schedule (): void {
  if (ticking || paced.size === 0) return
  ticking = true
  const wait = stepAt - performance.now()
  if (wait <= 0) setImmediate(step)
  else setTimeout(step, wait)
}

/** One decode pass: the next chunk of every paced stream. */
function step (): void {
  ticking = false
  const now = performance.now()
  for (const s of paced) {
    if (s.closed) { paced.delete(s); continue }
    if (s.blocked) continue
    const ok = s.res.write(s.chunks[s.i++]!)
    chunksSent++
    if (s.i === s.chunks.length) {
      s.res.end(DONE)
      paced.delete(s)
      done++
    } else if (!ok) {
      s.blocked = true
      s.res.once('drain', s.onDrain)
    }
  }
  stepAt = Math.max(stepAt + itlMs, now)
  schedule()
}

function pump (s: Stream): void {
  if (s.closed) return
  if (s.i < s.chunks.length) {
    const ok = s.res.write(s.chunks[s.i++]!)
    chunksSent++
    if (ok) setImmediate(pump, s)
    else s.res.once('drain', () => pump(s))
    return
  }
  s.res.end(DONE)
  done++
}

function complete (model: string, req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  let doc: { max_tokens?: unknown, stream?: unknown }
  try {
    doc = JSON.parse(body.toString('utf8')) as typeof doc
  } catch {
    res.writeHead(400, JSON_HEADERS)
    res.end('{"error":{"message":"bad json","type":"invalid_request_error"}}')
    return
  }
  const n = typeof doc.max_tokens === 'number' && doc.max_tokens >= 1 ? Math.min(Math.floor(doc.max_tokens), 100_000) : 16
  const r = render(model, n)
  started++
  if (doc.stream === true) {
    res.writeHead(200, SSE_HEADERS)
    const s = new Stream(res, r.chunks)
    res.once('close', () => { s.closed = true })
    if (itlMs > 0) {
      if (paced.size === 0 && !ticking) stepAt = performance.now() + itlMs
      paced.add(s)
      schedule()
    } else pump(s)
    return
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': r.json.length })
  res.end(r.json)
  done++
}

function main (): void {
  const port = Number(process.argv[2])
  const model = process.argv[3] ?? 'm'
  itlMs = Number(process.argv[4] ?? 0)
  if (!Number.isInteger(port) || port <= 0 || !(itlMs >= 0)) {
    console.error('usage: fast-upstream <port> [model] [ms between tokens, 0: as fast as possible]')
    process.exit(2)
  }
  const models = Buffer.from(JSON.stringify({ object: 'list', data: [{ id: model, object: 'model', created: CREATED, owned_by: 'bench' }] }))
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    const url = req.url ?? '/'
    if (req.method === 'POST' && url === '/v1/chat/completions') {
      const parts: Buffer[] = []
      req.on('data', (c: Buffer) => parts.push(c))
      req.on('end', () => complete(model, req, res, parts.length === 1 ? parts[0]! : Buffer.concat(parts)))
      return
    }
    if (url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': models.length })
      res.end(models)
      return
    }
    if (url === '/health') {
      res.writeHead(200, JSON_HEADERS)
      res.end('{"status":"ok"}')
      return
    }
    if (url === '/stats') {
      res.writeHead(200, JSON_HEADERS)
      res.end(`{"started":${started},"done":${done},"chunks":${chunksSent}}`)
      return
    }
    res.writeHead(404, JSON_HEADERS)
    res.end('{"error":{"message":"not found","type":"invalid_request_error"}}')
  })
  server.listen(port, '127.0.0.1')
  const stop = (): void => {
    setTimeout(() => process.exit(0), 1000).unref()
    server.closeAllConnections()
    server.close(() => process.exit(0))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main()
