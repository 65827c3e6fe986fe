/**
 * The floor under any Node HTTP proxy, for the proxy benchmark: what Node costs per proxied request
 * when nothing but sockets is left. `node dist/bench/lib/raw-proxy.js <port> <upstream url> ...`
 *
 * net.Server and net.Socket only (no node:http, no undici): it finds the end of the request head,
 * reads Content-Length, forwards the request's bytes as they came to an idle keep-alive socket of
 * the next upstream (round robin), and copies the answer's bytes back unchanged, following
 * Content-Length or the chunked framing only to know when the answer ends. No header rewriting,
 * no pipelining, no timeouts, no error answers: not a proxy anyone should run, only the least
 * work the event loop, the socket layer and the kernel do per request, so the bench can say how
 * much of nginx's lead is Node's and how much is ours.
 *
 * `RAW_CLIENT=undici` in its environment swaps the upstream side for an undici Pool (dispatch),
 * which splits the cost between the server and client halves: the measurement that showed each
 * of node:http and undici at about 70 µs per request on this path.
 */
import { connect, createServer, type Socket } from 'node:net'
import { Pool, type Dispatcher } from 'undici'
import type { IncomingHttpHeaders } from 'node:http'


const CRLFCRLF = Buffer.from('\r\n\r\n')

interface Upstream { host: string, port: number, idle: Socket[] }

let ups: Upstream[] = []
let pools: Pool[] | null = null
let next = 0

/** Where a head ends (index after CRLFCRLF) or -1. */
function headEnd (buf: Buffer): number {
  const i = buf.indexOf(CRLFCRLF)
  return i < 0 ? -1 : i + 4
}

/** Content-Length and chunked-ness from a head, scanned as latin1. */
function framing (head: string): { length: number, chunked: boolean } {
  let length = 0
  let chunked = false
  let at = head.indexOf('\r\n') + 2
  while (at < head.length - 2) {
    const eol = head.indexOf('\r\n', at)
    const colon = head.indexOf(':', at)
    if (colon > 0 && colon < eol) {
      const name = head.slice(at, colon).toLowerCase()
      if (name === 'content-length') length = Number(head.slice(colon + 1, eol).trim())
      else if (name === 'transfer-encoding') chunked = head.slice(colon + 1, eol).toLowerCase().includes('chunked')
    }
    at = eol + 2
  }
  return { length, chunked }
}

/** Follows an upstream answer's bytes to its end; `feed` returns true once the answer is whole. */
class AnswerTracker {
  head = true
  pending: Buffer | null = null
  remaining = 0
  chunked = false
  /** Chunked state: bytes of the current chunk (+ its CRLF) still to skip, or -1 when a size line is next. */
  skip = -1
  sizeLine = ''

  feed (chunk: Buffer): boolean {
    let buf = chunk
    if (this.head) {
      if (this.pending !== null) { buf = Buffer.concat([this.pending, chunk]); this.pending = null }
      const end = headEnd(buf)
      if (end < 0) { this.pending = buf; return false }
      const f = framing(buf.toString('latin1', 0, end))
      this.head = false
      this.chunked = f.chunked
      this.remaining = f.length
      buf = buf.subarray(end)
    }
    if (!this.chunked) {
      this.remaining -= buf.length
      return this.remaining <= 0
    }
    let i = 0
    while (i < buf.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length - i)
        this.skip -= n
        i += n
        if (this.skip === 0) this.skip = -1
        continue
      }
      const eol = buf.indexOf(10, i)
      if (eol < 0) { this.sizeLine += buf.toString('latin1', i); return false }
      const line = this.sizeLine + buf.toString('latin1', i, eol)
      this.sizeLine = ''
      i = eol + 1
      const size = parseInt(line, 16)
      if (size === 0) return true // the last chunk; the empty trailer line follows in the same write
      this.skip = size + 2
    }
    return false
  }
}

function takeSocket (up: Upstream): Socket {
  const idle = up.idle.pop()
  if (idle !== undefined) return idle
  const s = connect({ host: up.host, port: up.port, noDelay: true })
  s.on('error', () => { s.destroy() })
  return s
}

function serve (client: Socket): void {
  client.setNoDelay(true)
  let pending: Buffer | null = null
  let busy = false
  client.on('error', () => { client.destroy() })
  client.on('data', (chunk: Buffer) => {
    const buf = pending === null ? chunk : Buffer.concat([pending, chunk])
    pending = null
    if (busy) { pending = buf; return }
    const end = headEnd(buf)
    if (end < 0) { pending = buf; return }
    const { length } = framing(buf.toString('latin1', 0, end))
    if (buf.length < end + length) { pending = buf; return }
    if (pools !== null) {
      const pool = pools[next]!
      next = next + 1 === pools.length ? 0 : next + 1
      busy = true
      const body = buf.subarray(end, end + length)
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart () {},
        onResponseStart (_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders) {
          let h = `HTTP/1.1 ${status} OK\r\n`
          for (const k in headers) if (k !== 'transfer-encoding' && k !== 'connection' && k !== 'keep-alive') h += `${k}: ${headers[k] as string}\r\n`
          chunked = headers['content-length'] === undefined
          client.write(h + (chunked ? 'transfer-encoding: chunked\r\n\r\n' : '\r\n'))
        },
        onResponseData (_c: Dispatcher.DispatchController, chunk: Buffer) {
          if (chunked) { client.write(chunk.length.toString(16) + '\r\n'); client.write(chunk); client.write('\r\n') } else client.write(chunk)
        },
        onResponseEnd () { if (chunked) client.write('0\r\n\r\n'); busy = false },
        onResponseError () { client.destroy() }
      }
      let chunked = false
      pool.dispatch({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body }, handler)
      return
    }
    const up = ups[next]!
    next = next + 1 === ups.length ? 0 : next + 1
    const s = takeSocket(up)
    const t = new AnswerTracker()
    busy = true
    const onData = (c: Buffer): void => {
      client.write(c)
      if (t.feed(c)) {
        s.off('data', onData)
        s.off('close', onClose)
        up.idle.push(s)
        busy = false
      }
    }
    const onClose = (): void => { client.destroy() }
    s.on('data', onData)
    s.on('close', onClose)
    s.write(buf.length === end + length ? buf : buf.subarray(0, end + length))
  })
}

function main (): void {
  const port = Number(process.argv[2])
  const urls = process.argv.slice(3)
  if (!Number.isInteger(port) || port <= 0 || urls.length === 0) {
    console.error('usage: raw-proxy <port> <upstream url> [<upstream url> ...]')
    process.exit(2)
  }
  ups = urls.map(u => { const url = new URL(u); return { host: url.hostname, port: Number(url.port), idle: [] } })
  if (process.env.RAW_CLIENT === 'undici') pools = urls.map(u => new Pool(u, { connections: 1024, pipelining: 1, keepAliveTimeout: 30_000 }))
  const server = createServer(serve)
  server.listen(port, '127.0.0.1')
  const stop = (): void => { process.exit(0) }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main()
