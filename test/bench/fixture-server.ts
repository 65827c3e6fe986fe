import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { builtinTokenizer } from '../../src/tokenize/index.js'

/**
 * A small OpenAI-protocol server for the load generator's tests: known timing (delay before the
 * first token, between tokens), usage with prompt tokens counted by the built-in tokenizer and a
 * configurable cached share, faults per request, a record of what arrived and how many requests
 * were in flight at once, and a /metrics endpoint with per-worker counters.
 */
export interface FixtureOptions {
  headerDelayMs?: number
  firstTokenDelayMs?: number
  tokenDelayMs?: number
  /** cached_tokens reported for a prompt of n tokens; null leaves prompt_tokens_details out. */
  cached?: ((promptTokens: number) => number) | null
  /** A fault for the request with this arrival index, or null to answer normally. */
  fault?: (index: number, body: any) => Fault | null
  /** Served at GET /metrics as switchyard_worker_requests_total; null answers 404. */
  workerCounts?: Record<string, number> | null
}

export type Fault =
  | { status: number, error?: { message: string, type: string, code?: string | null } }
  | { reset: 'before-headers' | 'mid-stream' }
  | { streamErrorAfter: number }
  | { truncateAfter: number }
  | { hang: true }

export interface Arrival {
  index: number
  path: string
  headers: IncomingMessage['headers']
  body: any
  /** performance.now() when the request line arrived. */
  atMs: number
  /** Prompt token ids (completions: the prompt; chat: the templated conversation). */
  promptIds: Uint32Array
  /** performance.now() at each content chunk written: the server's side of TTFT and ITL. */
  writes: number[]
}

const tok = builtinTokenizer()

export class FixtureServer {
  readonly server: Server
  readonly arrivals: Arrival[] = []
  opts: FixtureOptions
  inflight = 0
  maxInflight = 0
  private readonly sockets = new Set<Socket>()
  private readonly timers = new Set<NodeJS.Timeout>()

  constructor (opts: FixtureOptions = {}) {
    this.opts = opts
    this.server = createServer((req, res) => { this.handle(req, res) })
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)) })
  }

  async listen (): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return this.url
  }

  get url (): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async close (): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private later (ms: number, fn: () => void): void {
    const t = setTimeout(() => { this.timers.delete(t); fn() }, ms)
    this.timers.add(t)
  }

  private handle (req: IncomingMessage, res: ServerResponse): void {
    const atMs = performance.now()
    if (req.method === 'GET' && req.url === '/metrics') {
      const counts = this.opts.workerCounts
      if (counts === null || counts === undefined) {
        res.writeHead(404).end()
        return
      }
      let text = '# HELP switchyard_worker_requests_total Requests sent to each worker (attempts)\n# TYPE switchyard_worker_requests_total counter\n'
      for (const [w, v] of Object.entries(counts)) text += `switchyard_worker_requests_total{worker="${w}"} ${v}\n`
      res.writeHead(200, { 'content-type': 'text/plain' }).end(text + 'other_metric 1\n')
      return
    }
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString('utf8'))
      const chat = req.url === '/v1/chat/completions'
      const promptIds = chat ? tok.encode(tok.applyChatTemplate(body.messages)) : tok.encode(body.prompt)
      const index = this.arrivals.length
      const arrival: Arrival = { index, path: req.url ?? '', headers: req.headers, body, atMs, promptIds, writes: [] }
      this.arrivals.push(arrival)
      this.inflight++
      if (this.inflight > this.maxInflight) this.maxInflight = this.inflight
      let ended = false
      const end = (): void => { if (!ended) { ended = true; this.inflight-- } }
      // 'finish' (the last byte handed to the kernel) comes before the client can see the end;
      // 'close' may come after the client already sent its next request, overcounting.
      res.on('finish', end)
      res.on('close', end)
      const fault = this.opts.fault?.(index, body) ?? null
      this.later(this.opts.headerDelayMs ?? 0, () => { this.answer(res, arrival, chat, fault) })
    })
  }

  private answer (res: ServerResponse, arrival: Arrival, chat: boolean, fault: Fault | null): void {
    const body = arrival.body
    const promptTokens = arrival.promptIds.length
    if (fault !== null && 'status' in fault) {
      res.writeHead(fault.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { message: fault.error?.message ?? 'failed', type: fault.error?.type ?? 'server_error', param: null, code: fault.error?.code ?? null } }))
      return
    }
    if (fault !== null && 'reset' in fault && fault.reset === 'before-headers') {
      res.socket?.destroy()
      return
    }
    if (fault !== null && 'hang' in fault) return
    const n: number = body.max_tokens ?? 16
    const cachedFn = this.opts.cached
    const usage: Record<string, unknown> = { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n }
    if (cachedFn !== null && cachedFn !== undefined) usage.prompt_tokens_details = { cached_tokens: cachedFn(promptTokens) }
    const word = (i: number): string => ` w${i}`
    if (body.stream !== true) {
      const text = Array.from({ length: n }, (_, i) => word(i)).join('')
      this.later((this.opts.firstTokenDelayMs ?? 0) + (this.opts.tokenDelayMs ?? 0) * (n - 1), () => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ id: 'x', object: chat ? 'chat.completion' : 'text_completion', choices: [chat ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'length' } : { index: 0, text, finish_reason: 'length' }], usage }))
      })
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    // vLLM's first chat chunk carries the role and no content: it must not count as the first token.
    if (chat) res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] })}\n\n`)
    const chunk = (i: number): string => {
      const fr = i === n - 1 ? 'length' : null
      const c = chat ? { index: 0, delta: { content: word(i) }, finish_reason: fr } : { index: 0, text: word(i), finish_reason: fr }
      return `data: ${JSON.stringify({ id: 'x', choices: [c] })}\n\n`
    }
    const step = (i: number): void => {
      if (res.destroyed) return
      if (fault !== null && 'streamErrorAfter' in fault && i === fault.streamErrorAfter) {
        res.end(`data: ${JSON.stringify({ error: { message: 'worker died', type: 'server_error', param: null, code: 'upstream_stream' } })}\n\n`)
        return
      }
      if (fault !== null && 'truncateAfter' in fault && i === fault.truncateAfter) {
        res.end()
        return
      }
      if (fault !== null && 'reset' in fault && fault.reset === 'mid-stream' && i === 2) {
        res.socket?.destroy()
        return
      }
      if (i === n) {
        if (body.stream_options?.include_usage === true) res.write(`data: ${JSON.stringify({ id: 'x', choices: [], usage })}\n\n`)
        res.end('data: [DONE]\n\n')
        return
      }
      arrival.writes.push(performance.now())
      res.write(chunk(i))
      this.later(this.opts.tokenDelayMs ?? 0, () => { step(i + 1) })
    }
    this.later(this.opts.firstTokenDelayMs ?? 0, () => { step(0) })
  }
}
