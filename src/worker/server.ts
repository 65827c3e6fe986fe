/**
 * The worker runtime: the server half of the native transport (docs/native-protocol.md) as a
 * library. It accepts gateway connections, checks the version handshake, hands each request to an
 * engine with a WorkerStream to answer on, acks it, forwards cancels, answers pings, and drains on
 * close.
 *
 * Engine interface — callbacks, not `AsyncIterable`: an engine that produces tokens in batches (the
 * mock engine, vLLM's output processor) pushes them synchronously at the end of each pass; an async
 * iterator would add a promise and a microtask per item and a queue in between, for nothing.
 * Measured (1,000 streams × 200 tokens on one connection, gateway and worker in one process, warm):
 * 0.76 µs per item end to end with callbacks, 1.29 µs with an async generator per stream — the
 * generator roughly triples the worker's share. `iterableEngine()` adapts such engines anyway.
 *
 * Deadlines: a request's `deadlineMs` is enforced here too, not only by the gateway (which fails
 * the stream on its side at the same instant): an expired stream is ended with a non-retryable
 * SWY_ERR_NATIVE_TIMEOUT and cancelled in the engine, so a gateway that vanished or a lost cancel
 * cannot keep a sequence generating past its budget. One sweep timer per server, armed only while
 * streams with a deadline are open (10 ms to 250 ms resolution: a quarter of the shortest budget).
 *
 * Backpressure: the runtime never stops reading a connection (a cancel must get through even when
 * the gateway is slow to read), so it cannot throttle an engine by itself. `stream.writable` is
 * false while the socket has more queued than its high-water mark; engines that can pause check it
 * and wait for `stream.waitDrain()` (iterableEngine does this between items).
 */
import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import { createServer } from 'node:net'
import type { AddressInfo, Server, Socket } from 'node:net'
import { SwitchyardError } from '../shared/errors.js'
import {
  DEFAULT_MAX_FRAME_BYTES, FrameKind, FrameReader, FrameWriter, KIND_NAMES, PROTOCOL_VERSION, NativeProtocolError,
  decodeBody, decodeRequest, encodeError, packr
} from '../transport/native/index.js'
import type { FrameKindValue, FrameSink, NativeFinishReason, NativeRequest, NativeUsage, ResponseItem } from '../transport/native/index.js'

/** What the runtime drives. `start` must not block; it answers through `stream`. */
export interface NativeEngine {
  /** Models this engine serves (sent in the handshake); requests for others are refused. Empty: any. */
  readonly models: readonly string[]
  /**
   * Begins generating. Throwing refuses the request (the error goes back as a stream error). Set
   * `stream.onCancel` (or listen on `stream.signal`) to stop when the gateway cancels.
   */
  start (req: NativeRequest, stream: WorkerStream): void
}

export interface NativeWorkerOptions {
  /** Default 127.0.0.1. */
  host?: string
  /** Default 0 (a free port). */
  port?: number
  /** Largest frame accepted from a gateway, bytes. Default 8 MiB. */
  maxFrameBytes?: number
  /** Name sent in the handshake. Default "switchyard-worker". */
  agent?: string
}

/** One request being answered. Methods are no-ops once the stream ended or was cancelled. */
export class WorkerStream {
  readonly id: number
  readonly request: NativeRequest
  /** performance.now() ms by which the gateway wants the answer; 0: no deadline. */
  readonly deadlineAt: number
  /** Called once if the gateway cancels or the connection drops before the stream ends. */
  onCancel: ((stream: WorkerStream) => void) | null
  /** Free for the engine (its own request handle). */
  context: unknown
  /** @internal */ conn: WorkerConnection | null
  private controller: AbortController | null
  private readonly tokenIds: boolean

  constructor (id: number, request: NativeRequest, conn: WorkerConnection) {
    this.id = id
    this.request = request
    this.deadlineAt = request.deadlineMs !== undefined && request.deadlineMs > 0 ? performance.now() + request.deadlineMs : 0
    this.onCancel = null
    this.context = null
    this.conn = conn
    this.controller = null
    this.tokenIds = request.returnTokenIds === true
  }

  /** Aborted when the gateway cancels or disconnects. Created on first use (most engines use onCancel). */
  get signal (): AbortSignal {
    this.controller ??= new AbortController()
    if (this.conn === null && !this.controller.signal.aborted) this.controller.abort()
    return this.controller.signal
  }

  get closed (): boolean {
    return this.conn === null
  }

  /** False while the connection's socket is above its high-water mark. */
  get writable (): boolean {
    return this.conn !== null && !this.conn.writer.needDrain
  }

  /** Resolves when the socket drained (at once when it has room) or the stream closed. */
  async waitDrain (): Promise<void> {
    const conn = this.conn
    if (conn === null || !conn.writer.needDrain) return
    await new Promise<void>((resolve) => { conn.drainWaiters.push(resolve) })
  }

  /** Sends a text delta and/or token ids (ids are dropped unless the request asked for them). */
  write (text: string | null, tokenIds: ArrayLike<number> | null = null): void {
    const conn = this.conn
    if (conn === null) return
    const ids = this.tokenIds && tokenIds !== null && tokenIds.length > 0 ? tokenIds : null
    if ((text === null || text.length === 0) && ids === null) return
    conn.writer.item(this.id, text === null || text.length === 0 ? null : text, ids, -1, null, null)
    conn.server.items++
  }

  /** One generated token and its text (may be empty while a stop string is held back): no array needed. */
  writeToken (text: string, tokenId: number): void {
    const conn = this.conn
    if (conn === null) return
    if (!this.tokenIds) {
      if (text.length === 0) return
      conn.writer.item(this.id, text, null, -1, null, null)
    } else {
      conn.writer.item(this.id, text.length === 0 ? null : text, null, tokenId, null, null)
    }
    conn.server.items++
  }

  /** The last item (finish reason, usage, any held-back text) and the end of the stream. */
  finish (reason: NativeFinishReason, usage: NativeUsage | null, text: string | null = null, tokenIds: ArrayLike<number> | null = null): void {
    const conn = this.conn
    if (conn === null) return
    const ids = this.tokenIds && tokenIds !== null && tokenIds.length > 0 ? tokenIds : null
    conn.writer.item(this.id, text === null || text.length === 0 ? null : text, ids, -1, reason, usage)
    conn.server.items++
    conn.writer.frame(FrameKind.END, this.id)
    closeStream(conn, this)
  }

  /** Ends the stream without a final item. */
  end (): void {
    const conn = this.conn
    if (conn === null) return
    conn.writer.frame(FrameKind.END, this.id)
    closeStream(conn, this)
  }

  /**
   * Ends the stream with an error. SwitchyardErrors keep their code, status and OpenAI code;
   * `retryable` defaults to true for 503 (overloaded, shutting down) and false otherwise.
   */
  fail (err: unknown, retryable?: boolean): void {
    const conn = this.conn
    if (conn === null) return
    conn.writer.frame(FrameKind.ERROR, this.id, encodeError(errorBody(err, retryable)))
    closeStream(conn, this)
  }

  /** @internal The deadline passed: tell the gateway, then stop the engine as a cancel would. */
  expired (): void {
    const conn = this.conn
    if (conn === null) return
    conn.server.streamsExpired++
    conn.writer.frame(FrameKind.ERROR, this.id, encodeError({ code: 'SWY_ERR_NATIVE_TIMEOUT', message: `the request's deadline (${this.request.deadlineMs ?? 0} ms) passed at the worker`, retryable: false, status: 504, apiCode: 'timeout' }))
    this.stop()
  }

  /** @internal The gateway cancelled or went away. */
  cancelled (): void {
    const conn = this.conn
    if (conn === null) return
    conn.server.streamsCancelled++
    this.stop()
  }

  private stop (): void {
    const conn = this.conn
    if (conn === null) return
    closeStream(conn, this)
    this.controller?.abort()
    const cb = this.onCancel
    this.onCancel = null
    if (cb !== null) {
      try {
        cb(this)
      } catch (err) {
        process.emitWarning(`native worker: onCancel threw: ${(err as Error)?.message ?? String(err)}`)
      }
    }
  }
}

function errorBody (err: unknown, retryable?: boolean): { code: string, message: string, retryable: boolean, status: number, param: string | null, apiCode: string | null } {
  if (err instanceof SwitchyardError) {
    return { code: err.code, message: err.message, retryable: retryable ?? err.status === 503, status: err.status, param: err.param, apiCode: err.apiCode }
  }
  return { code: 'SWY_ERR_INTERNAL', message: (err as Error)?.message ?? String(err), retryable: retryable ?? false, status: 500, param: null, apiCode: 'internal_error' }
}

function closeStream (conn: WorkerConnection, s: WorkerStream): void {
  s.conn = null
  conn.streams.delete(s.id)
  conn.server.openStreams--
  if (s.deadlineAt > 0) conn.server.deadlineStreams--
  if (conn.goaway && conn.streams.size === 0) {
    conn.writer.flush()
    conn.socket.end()
  }
}

const refusedShuttingDown = (): SwitchyardError => new SwitchyardError('SWY_ERR_SHUTTING_DOWN', 'the worker is draining and takes no new streams', {
  status: 503, type: 'service_unavailable_error', apiCode: 'shutting_down'
})

/** One gateway connection and its streams. */
class WorkerConnection implements FrameSink {
  readonly server: NativeWorkerServer
  readonly socket: Socket
  readonly reader: FrameReader
  readonly writer: FrameWriter
  readonly streams: Map<number, WorkerStream>
  ready: boolean
  goaway: boolean
  drainWaiters: Array<() => void>

  constructor (server: NativeWorkerServer, socket: Socket) {
    this.server = server
    this.socket = socket
    this.streams = new Map()
    this.ready = false
    this.goaway = false
    this.drainWaiters = []
    this.reader = new FrameReader(this, server.maxFrameBytes)
    this.writer = new FrameWriter(socket)
    socket.setNoDelay(true)
    // Half-open connections (gateway host gone without a FIN) are found by TCP keepalive.
    socket.setKeepAlive(true, 10_000)
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(chunk)
      } catch (err) {
        protocolFailure(this, err)
      }
    })
    socket.on('drain', () => {
      this.writer.needDrain = false
      const w = this.drainWaiters
      if (w.length === 0) return
      this.drainWaiters = []
      for (const f of w) f()
    })
    socket.on('error', () => { socket.destroy() })
    socket.on('close', () => { onClosed(this) })
  }

  onFrame (kind: FrameKindValue, id: number, buf: Buffer, start: number, end: number): void {
    if (!this.ready && kind !== FrameKind.HELLO) throw new NativeProtocolError(`expected a hello frame first, got ${KIND_NAMES[kind] ?? kind}`)
    switch (kind) {
      case FrameKind.REQUEST:
        onRequest(this, id, buf.subarray(start, end))
        return
      case FrameKind.CANCEL:
        this.streams.get(id)?.cancelled()
        return
      case FrameKind.PING:
        this.writer.frame(FrameKind.PONG, id)
        return
      case FrameKind.PONG:
        return
      case FrameKind.HELLO:
        onHello(this, buf.subarray(start, end))
        return
      default:
        throw new NativeProtocolError(`a gateway sent a ${KIND_NAMES[kind] ?? kind} frame, which only workers send`)
    }
  }
}

function onHello (conn: WorkerConnection, body: Buffer): void {
  if (conn.ready) throw new NativeProtocolError('a second hello on the same connection')
  const h = decodeBody(body, 'hello')
  const versions = Array.isArray(h.versions) ? h.versions : []
  if (!versions.includes(PROTOCOL_VERSION)) {
    throw new NativeProtocolError(`the gateway speaks native protocol version(s) ${JSON.stringify(versions)}; this worker speaks ${PROTOCOL_VERSION}`)
  }
  conn.ready = true
  const server = conn.server
  conn.writer.frame(FrameKind.HELLO, 0, packr.pack({ version: PROTOCOL_VERSION, maxFrameBytes: server.maxFrameBytes, agent: server.agent, models: server.engine.models }))
  if (conn.goaway) conn.writer.frame(FrameKind.GOAWAY, 0)
}

function onRequest (conn: WorkerConnection, id: number, body: Buffer): void {
  if (id === 0) throw new NativeProtocolError('a request on stream 0')
  if (conn.streams.has(id)) throw new NativeProtocolError(`stream ${id} is already open`)
  const server = conn.server
  let req: NativeRequest
  try {
    req = decodeRequest(decodeBody(body, 'request'))
  } catch (err) {
    if (err instanceof NativeProtocolError) throw err
    conn.writer.frame(FrameKind.ERROR, id, encodeError({ code: 'SWY_ERR_INVALID_BODY', message: (err as Error).message, retryable: false, status: 400, apiCode: 'invalid_value' }))
    return
  }
  const s = new WorkerStream(id, req, conn)
  conn.streams.set(id, s)
  server.openStreams++
  server.streamsAccepted++
  if (s.deadlineAt > 0) server.armDeadlines(req.deadlineMs!)
  if (conn.goaway) {
    s.fail(refusedShuttingDown(), true)
    return
  }
  const models = server.engine.models
  if (models.length > 0 && !models.includes(req.model)) {
    s.fail(new SwitchyardError('SWY_ERR_MODEL_NOT_FOUND', `the model \`${req.model}\` is not served by this worker`, {
      status: 404, type: 'not_found_error', apiCode: 'model_not_found', param: 'model'
    }), true)
    return
  }
  conn.writer.frame(FrameKind.ACCEPT, id)
  try {
    server.engine.start(req, s)
  } catch (err) {
    s.fail(err)
  }
}

function protocolFailure (conn: WorkerConnection, err: unknown): void {
  const e = err instanceof SwitchyardError ? err : new NativeProtocolError((err as Error)?.message ?? String(err))
  conn.server.protocolErrors++
  if (!conn.socket.destroyed) {
    // Say why before closing, so the gateway's error names the cause.
    conn.writer.frame(FrameKind.ERROR, 0, encodeError({ code: e.code, message: e.message, retryable: false }))
    conn.writer.flush()
    conn.socket.end()
    conn.socket.destroySoon()
  }
  abortAll(conn)
}

function abortAll (conn: WorkerConnection): void {
  if (conn.streams.size === 0) return
  for (const s of Array.from(conn.streams.values())) s.cancelled()
}

function onClosed (conn: WorkerConnection): void {
  const server = conn.server
  abortAll(conn)
  const w = conn.drainWaiters
  conn.drainWaiters = []
  for (const f of w) f()
  server.connections.delete(conn)
  server.framesIn += conn.reader.framesIn
  server.framesOut += conn.writer.framesOut
  server.bytesIn += conn.reader.bytesIn
  server.bytesOut += conn.writer.bytesOut
  server.checkClosed()
}

export interface NativeWorkerStats {
  connections: number
  openStreams: number
  streamsAccepted: number
  streamsCancelled: number
  /** Streams ended by their deadline here. */
  streamsExpired: number
  items: number
  protocolErrors: number
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
}

/** A listening worker runtime. Create with startNativeWorker(). */
export class NativeWorkerServer {
  readonly engine: NativeEngine
  readonly server: Server
  readonly host: string
  readonly port: number
  /** swy://host:port */
  readonly url: string
  readonly maxFrameBytes: number
  readonly agent: string
  /** @internal */ readonly connections: Set<WorkerConnection>
  /** @internal counters */
  openStreams: number
  streamsAccepted: number
  streamsCancelled: number
  streamsExpired: number
  /** Open streams with a deadline (the sweep runs while there are any). */
  deadlineStreams: number
  items: number
  protocolErrors: number
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
  private sweepTimer: NodeJS.Timeout | null
  private sweepEveryMs: number
  private closing: Promise<void> | null
  private closeWaiter: (() => void) | null
  private serverClosed: boolean

  /** @internal */
  constructor (engine: NativeEngine, server: Server, host: string, port: number, opts: NativeWorkerOptions) {
    this.engine = engine
    this.server = server
    this.host = host
    this.port = port
    this.url = `swy://${host.includes(':') ? `[${host}]` : host}:${port}`
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    this.agent = opts.agent ?? 'switchyard-worker'
    this.connections = new Set()
    this.openStreams = 0
    this.streamsAccepted = 0
    this.streamsCancelled = 0
    this.streamsExpired = 0
    this.deadlineStreams = 0
    this.sweepTimer = null
    this.sweepEveryMs = 250
    this.items = 0
    this.protocolErrors = 0
    this.framesIn = 0
    this.framesOut = 0
    this.bytesIn = 0
    this.bytesOut = 0
    this.closing = null
    this.closeWaiter = null
    this.serverClosed = false
    server.on('connection', (socket: Socket) => {
      if (this.closing !== null) {
        socket.destroy()
        return
      }
      this.connections.add(new WorkerConnection(this, socket))
    })
  }

  stats (): NativeWorkerStats {
    let framesIn = this.framesIn
    let framesOut = this.framesOut
    let bytesIn = this.bytesIn
    let bytesOut = this.bytesOut
    for (const c of this.connections) {
      framesIn += c.reader.framesIn
      framesOut += c.writer.framesOut
      bytesIn += c.reader.bytesIn
      bytesOut += c.writer.bytesOut
    }
    return {
      connections: this.connections.size,
      openStreams: this.openStreams,
      streamsAccepted: this.streamsAccepted,
      streamsCancelled: this.streamsCancelled,
      streamsExpired: this.streamsExpired,
      items: this.items,
      protocolErrors: this.protocolErrors,
      framesIn,
      framesOut,
      bytesIn,
      bytesOut
    }
  }

  /**
   * Drains: stops accepting connections, tells every gateway GOAWAY (they open no new streams here),
   * lets open streams finish for `graceMs` (default 1000), then cuts what remains (those streams are
   * cancelled in the engine; the gateway fails them with a retryable error). Idempotent.
   */
  async close (graceMs = 1000): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.closeWaiter = resolve
      this.server.close(() => {
        this.serverClosed = true
        this.checkClosed()
      })
      for (const conn of this.connections) {
        conn.goaway = true
        if (conn.ready) conn.writer.frame(FrameKind.GOAWAY, 0)
        if (conn.streams.size === 0) {
          conn.writer.flush()
          conn.socket.end()
        }
      }
      if (this.connections.size > 0) {
        const force = setTimeout(() => { this.destroy() }, graceMs)
        force.unref()
      }
    })
    await this.closing
  }

  /** @internal A stream with a deadline opened: make sure the sweep runs often enough for it. */
  armDeadlines (budgetMs: number): void {
    this.deadlineStreams++
    const every = Math.max(10, Math.min(250, Math.floor(budgetMs / 4)))
    if (this.sweepTimer !== null && every >= this.sweepEveryMs) return
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer)
    this.sweepEveryMs = every
    this.sweepTimer = setInterval(() => { this.sweep() }, every)
    this.sweepTimer.unref()
  }

  private sweep (): void {
    if (this.deadlineStreams <= 0) {
      clearInterval(this.sweepTimer!)
      this.sweepTimer = null
      this.sweepEveryMs = 250
      return
    }
    const now = performance.now()
    for (const conn of this.connections) {
      for (const s of conn.streams.values()) if (s.deadlineAt > 0 && now >= s.deadlineAt) s.expired()
    }
  }

  /** Cuts every connection now (open streams are cancelled in the engine). */
  destroy (): void {
    if (this.closing === null) void this.close(0)
    for (const conn of this.connections) conn.socket.destroy()
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }

  /** @internal */
  checkClosed (): void {
    if (this.closeWaiter === null || !this.serverClosed || this.connections.size > 0) return
    const w = this.closeWaiter
    this.closeWaiter = null
    w()
  }
}

/**
 * Serves `engine` on a TCP port.
 *
 * @example
 * const worker = await startNativeWorker(engine, { port: 0 })
 * // gateway: new NativeUpstream(worker.url)
 * await worker.close(5000)
 */
export async function startNativeWorker (engine: NativeEngine, opts: NativeWorkerOptions = {}): Promise<NativeWorkerServer> {
  const server = createServer({ noDelay: true })
  const host = opts.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  return new NativeWorkerServer(engine, server, host, port, opts)
}

/**
 * Adapts an engine written as an async generator. Costs a promise per item; waits for the socket
 * to drain between items (real backpressure, unlike push engines).
 *
 * @example
 * const engine = iterableEngine(['m'], async function * (req, signal) { yield { text: 'hi', tokenIds: null, finishReason: 'stop', usage: null } })
 */
export function iterableEngine (models: readonly string[], generate: (req: NativeRequest, signal: AbortSignal) => AsyncIterable<ResponseItem>): NativeEngine {
  return {
    models,
    start (req, stream) {
      const signal = stream.signal
      void (async () => {
        try {
          for await (const item of generate(req, signal)) {
            if (stream.closed) return
            if (item.finishReason !== null) {
              stream.finish(item.finishReason, item.usage, item.text, item.tokenIds)
              return
            }
            stream.write(item.text, item.tokenIds)
            if (!stream.writable) await stream.waitDrain()
          }
          stream.end()
        } catch (err) {
          stream.fail(err)
        }
      })()
    }
  }
}
