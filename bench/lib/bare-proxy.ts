/**
 * The baseline for the proxy benchmark: the least an honest Node proxy does, run as its own
 * process: `node dist/bench/lib/bare-proxy.js <port> <upstream url> [<upstream url> ...]`.
 *
 * node:http server, one undici Pool per upstream (the gateway's pool settings), round robin.
 * It forwards method, path, headers (minus hop-by-hop) and the body bytes through
 * `pool.dispatch()` with a handler that writes the upstream's status, headers and each body chunk
 * straight to the client (no stream in between, the cheapest way undici offers), pausing on
 * backpressure; when the client goes away it aborts the upstream request. No JSON parsing, no
 * request id, no logging, no metrics, no retries.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import { Pool, type Dispatcher } from 'undici'

const REQUEST_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'expect'])
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'date'])

let pools: Pool[] = []
let next = 0

/** One forwarded request: the undici handler for its upstream answer. */
class Forward implements Dispatcher.DispatchHandler {
  res: ServerResponse
  controller: Dispatcher.DispatchController | null
  gone: boolean
  done: boolean
  onDrain: () => void

  constructor (res: ServerResponse) {
    this.res = res
    this.controller = null
    this.gone = false
    this.done = false
    this.onDrain = () => { this.controller?.resume() }
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.gone) controller.abort(new Error('client went away'))
  }

  onResponseStart (_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    const out: OutgoingHttpHeaders = {}
    for (const name in headers) {
      if (!RESPONSE_DROP.has(name)) out[name] = headers[name]
    }
    this.res.writeHead(statusCode, out)
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) {
      controller.pause()
      this.res.once('drain', this.onDrain)
    }
  }

  onResponseEnd (): void {
    this.done = true
    this.res.end()
  }

  onResponseError (_controller: Dispatcher.DispatchController, _err: Error): void {
    this.done = true
    if (this.gone) return
    if (!this.res.headersSent) {
      this.res.writeHead(502, { 'content-type': 'application/json' })
      this.res.end('{"error":{"message":"upstream failed","type":"server_error"}}')
    } else this.res.destroy()
  }
}

function forward (req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const pool = pools[next]!
  next = next + 1 === pools.length ? 0 : next + 1
  const raw = req.rawHeaders
  const headers: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    if (!REQUEST_DROP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!)
  }
  const f = new Forward(res)
  res.once('close', () => {
    if (f.done) return
    f.gone = true
    f.controller?.abort(new Error('client went away'))
  })
  pool.dispatch({ method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers, body }, f)
}

function main (): void {
  const port = Number(process.argv[2])
  const urls = process.argv.slice(3)
  if (!Number.isInteger(port) || port <= 0 || urls.length === 0) {
    console.error('usage: bare-proxy <port> <upstream url> [<upstream url> ...]')
    process.exit(2)
  }
  pools = urls.map(u => new Pool(u, { connections: 1024, pipelining: 1, keepAliveTimeout: 30_000 }))
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => forward(req, res, parts.length === 1 ? parts[0]! : Buffer.concat(parts)))
  })
  server.listen(port, '127.0.0.1')
  const stop = (): void => {
    setTimeout(() => process.exit(0), 1000).unref()
    server.closeAllConnections()
    server.close(() => { void Promise.all(pools.map(p => p.close())).finally(() => process.exit(0)) })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main()
