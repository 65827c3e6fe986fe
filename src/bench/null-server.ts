/**
 * A null OpenAI-protocol server: answers at once, streaming `max_tokens` chunks (one write per
 * chunk, a setImmediate between them, as an engine emits one chunk per token) with usage at the
 * end. Answers are rendered once per token count and reused. It is the yardstick for the
 * generator's own ceiling (ceiling.ts) and costs little per request.
 *
 * As a process: `node dist/src/bench/null-server.js [port]` prints its URL (and, when forked,
 * sends `{ port }` over IPC).
 */
import { Buffer } from 'node:buffer'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { pathToFileURL } from 'node:url'

export interface NullServerOptions {
  /** Tokens per answer when the request has no max_tokens. */
  defaultTokens?: number
  /** Write all chunks of an answer at once instead of one per tick. */
  coalesce?: boolean
}

interface Rendered {
  json: Buffer
  chunks: Buffer[]
}

const DONE = Buffer.from('data: [DONE]\n\n')
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }
const JSON_HEADERS = { 'content-type': 'application/json' }
const PROMPT_TOKENS = 16

function render (chat: boolean, n: number): Rendered {
  const id = chat ? 'chatcmpl-null' : 'cmpl-null'
  const usage = { prompt_tokens: PROMPT_TOKENS, completion_tokens: n, total_tokens: PROMPT_TOKENS + n, prompt_tokens_details: { cached_tokens: 0 } }
  const json = Buffer.from(JSON.stringify(chat
    ? { id, object: 'chat.completion', created: 0, model: 'null', choices: [{ index: 0, message: { role: 'assistant', content: ' tok'.repeat(n) }, finish_reason: 'length' }], usage }
    : { id, object: 'text_completion', created: 0, model: 'null', choices: [{ index: 0, text: ' tok'.repeat(n), finish_reason: 'length' }], usage }))
  const chunks: Buffer[] = []
  for (let i = 0; i < n; i++) {
    const fr = i === n - 1 ? 'length' : null
    const ev = chat
      ? { id, object: 'chat.completion.chunk', created: 0, model: 'null', choices: [{ index: 0, delta: { content: ' tok' }, finish_reason: fr }] }
      : { id, object: 'text_completion', created: 0, model: 'null', choices: [{ index: 0, text: ' tok', finish_reason: fr }] }
    chunks.push(Buffer.from(`data: ${JSON.stringify(ev)}\n\n`))
  }
  chunks.push(Buffer.from(`data: ${JSON.stringify({ id, object: chat ? 'chat.completion.chunk' : 'text_completion', created: 0, model: 'null', choices: [], usage })}\n\n`))
  chunks.push(DONE)
  return { json, chunks }
}

export class NullServer {
  readonly server: Server
  private readonly opts: Required<NullServerOptions>
  private readonly cache = new Map<string, Rendered>()
  private readonly sockets = new Set<Socket>()
  private closed = false

  constructor (opts: NullServerOptions = {}) {
    this.opts = { defaultTokens: 16, coalesce: false, ...opts }
    this.server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => { this.handle(req, res) })
    this.server.on('connection', (s) => {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
    })
  }

  async listen (port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, host, resolve))
    return this.url
  }

  get url (): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private handle (req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/'
    if (req.method !== 'POST' || (url !== '/v1/chat/completions' && url !== '/v1/completions')) {
      req.resume()
      res.writeHead(404, JSON_HEADERS).end('{"error":{"message":"not found","type":"not_found_error","param":null,"code":null}}')
      return
    }
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => {
      let body: { max_tokens?: unknown, stream?: unknown }
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8')) as typeof body
      } catch {
        res.writeHead(400, JSON_HEADERS).end('{"error":{"message":"invalid JSON","type":"invalid_request_error","param":null,"code":null}}')
        return
      }
      const n = typeof body.max_tokens === 'number' && body.max_tokens > 0 ? Math.floor(body.max_tokens) : this.opts.defaultTokens
      const chat = url === '/v1/chat/completions'
      const key = (chat ? 'c' : 't') + n
      let r = this.cache.get(key)
      if (r === undefined) {
        r = render(chat, n)
        this.cache.set(key, r)
      }
      if (body.stream !== true) {
        res.writeHead(200, JSON_HEADERS).end(r.json)
        return
      }
      res.writeHead(200, SSE_HEADERS)
      if (this.opts.coalesce) {
        res.end(Buffer.concat(r.chunks))
        return
      }
      writeChunks(res, r.chunks, 0)
    })
  }
}

function writeChunks (res: ServerResponse, chunks: Buffer[], i: number): void {
  if (res.destroyed) return
  if (i === chunks.length - 1) {
    res.end(chunks[i])
    return
  }
  res.write(chunks[i])
  setImmediate(writeChunks, res, chunks, i + 1)
}

async function main (): Promise<void> {
  const port = Number(process.argv[2] ?? 0)
  const s = new NullServer({ coalesce: process.argv.includes('--coalesce') })
  const url = await s.listen(port)
  process.stdout.write(url + '\n')
  process.send?.({ port: Number(new URL(url).port) })
  const stop = (): void => { void s.close().then(() => process.exit(0)) }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.on('disconnect', stop)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main()
