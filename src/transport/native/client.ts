/**
 * Gateway side of the native transport: one NativeUpstream per worker address, a small pool of
 * persistent connections, and on each connection its own table of open streams (keyed by stream
 * id: stream-table.ts). There is no registry shared between connections or upstreams, so nothing on the
 * request path takes a lock or scans more than one connection's streams.
 *
 * Failure model (issue 7: Dynamo's call-home design hung requests whose worker died between
 * accepting and calling home): the stream lives on the connection that carries it, so a connection
 * that ends for any reason fails every stream in its table at once, synchronously, with a retryable
 * error, and the upstream is tombstoned for `tombstoneMs` so routing can skip it.
 *
 * Deadlines: connect (TCP + handshake), accept (the worker acknowledges the stream), first item,
 * idle between items, and the request's own budget. One coarse sweep timer per upstream checks
 * them, armed only while streams are open (undici's timer-wheel reasoning: no setTimeout per
 * request). Resolution is a quarter of the shortest deadline, between 5 and 250 ms.
 */
import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { ConfigError } from '../../shared/errors.js'
import { NativeFailure, NativeProtocolError, NativeStreamError } from './errors.js'
import type { NativeFailureReason } from './errors.js'
import {
  DEFAULT_MAX_FRAME_BYTES, FrameKind, FrameReader, FrameWriter, HEADER_BYTES, KIND_NAMES, PROTOCOL_VERSION,
  decodeBody, decodeItem, encodeRequest, packr
} from './protocol.js'
import type { FrameKindValue, FrameSink } from './protocol.js'
import { StreamTable } from './stream-table.js'
import type { NativeRequest, ResponseItem } from './types.js'

export interface NativeUpstreamOptions {
  /** Connections kept to the worker. Default 2. */
  connections?: number
  /** Open another connection (up to `connections`) once the least busy one carries this many streams. Default 128. */
  streamsPerConnection?: number
  /** TCP connect plus version handshake, ms. Default 5000. */
  connectTimeoutMs?: number
  /** From sending a request to the worker's accept, ms. Default 5000. */
  acceptTimeoutMs?: number
  /** From accept to the first item, ms (covers queueing and prefill). Default 300000. */
  firstItemTimeoutMs?: number
  /** Between two items, ms. Default 60000. */
  idleTimeoutMs?: number
  /** How long a failed upstream refuses new streams, ms. Default 5000; 0 disables. */
  tombstoneMs?: number
  /** Ping a connection with open streams that has been silent this long, and give it as long again to answer, ms. Default 5000; 0 disables. */
  pingIntervalMs?: number
  /** Largest frame this side accepts, bytes. Default 8 MiB. */
  maxFrameBytes?: number
}

type Resolved = Required<NativeUpstreamOptions>

const DEFAULTS: Resolved = {
  connections: 2,
  streamsPerConnection: 128,
  connectTimeoutMs: 5000,
  acceptTimeoutMs: 5000,
  firstItemTimeoutMs: 300_000,
  idleTimeoutMs: 60_000,
  tombstoneMs: 5000,
  pingIntervalMs: 5000,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES
}

function resolveOptions (opts: NativeUpstreamOptions): Resolved {
  const out = { ...DEFAULTS }
  for (const [k, v] of Object.entries(opts)) {
    if (!(k in DEFAULTS)) throw new ConfigError(`unknown native upstream option "${k}"; accepted: ${Object.keys(DEFAULTS).join(', ')}`)
    if (v === undefined) continue
    const min = k === 'tombstoneMs' || k === 'pingIntervalMs' ? 0 : 1
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new ConfigError(`native upstream option ${k} must be a number ≥ ${min}, got ${String(v)}`)
    out[k as keyof Resolved] = v
  }
  return out
}

/** Callbacks of one stream. Exactly one of onEnd / onError is called, once; nothing after it. */
export interface NativeStreamHandler {
  /** The worker took the stream. */
  onAccept?: () => void
  /** `item` is reused for the next item of the connection: copy what you keep. */
  onItem: (item: ResponseItem) => void
  /** Deltas arrive as bytes only (`item.raw`, `text` null); the last item still has its text. */
  readonly rawText?: boolean
  onEnd: () => void
  onError: (err: NativeStreamError) => void
}

const StreamState = { OPEN: 0, ACCEPTED: 1, STREAMING: 2, DONE: 3 } as const
type StreamStateValue = typeof StreamState[keyof typeof StreamState]

/** A stream handle: cancel() sends a cancel frame and ends the stream with a `cancelled` error. */
export class NativeStream {
  readonly id: number
  readonly handler: NativeStreamHandler
  /** @internal */ conn: NativeConnection | null
  /** @internal */ state: StreamStateValue
  /** @internal */ deadlineAt: number
  /** @internal Overall request deadline (performance.now() ms), 0 for none. */
  endAt: number
  /** Items received so far. */
  items: number

  constructor (id: number, conn: NativeConnection | null, handler: NativeStreamHandler, deadlineAt: number, endAt: number) {
    this.id = id
    this.conn = conn
    this.handler = handler
    this.state = StreamState.OPEN
    this.deadlineAt = deadlineAt
    this.endAt = endAt
    this.items = 0
  }

  get done (): boolean {
    return this.state === StreamState.DONE
  }

  /** Tells the worker to stop (it frees the request's KV blocks). No-op once the stream ended. */
  cancel (): void {
    if (this.state === StreamState.DONE) return
    const conn = this.conn
    if (conn !== null) expireStream(conn, this, NativeFailure.CANCELLED, 'the stream was cancelled')
  }
}

const ConnState = { CONNECTING: 0, READY: 1, DRAINING: 2, CLOSED: 3 } as const
type ConnStateValue = typeof ConnState[keyof typeof ConnState]

/** One TCP connection and its stream table. */
class NativeConnection implements FrameSink {
  readonly upstream: NativeUpstream
  readonly socket: Socket
  readonly reader: FrameReader
  readonly writer: FrameWriter
  readonly streams: StreamTable<NativeStream>
  state: ConnStateValue
  nextId: number
  /** performance.now() of the last socket read (one clock read per chunk, not per item). */
  lastReadAt: number
  pingSentAt: number
  /** The worker's frame limit, from its hello. */
  peerMaxFrame: number
  connectTimer: NodeJS.Timeout | null
  readonly item: ResponseItem

  constructor (upstream: NativeUpstream) {
    this.upstream = upstream
    const o = upstream.options
    this.streams = new StreamTable()
    this.state = ConnState.CONNECTING
    this.nextId = 1
    this.lastReadAt = performance.now()
    this.pingSentAt = 0
    this.peerMaxFrame = DEFAULT_MAX_FRAME_BYTES
    this.item = { text: null, tokenIds: null, finishReason: null, usage: null, raw: null, rawStart: 0, rawEnd: 0, receivedAt: 0 }
    this.reader = new FrameReader(this, o.maxFrameBytes)
    this.socket = connect({ host: upstream.host, port: upstream.port, noDelay: true })
    this.writer = new FrameWriter(this.socket)
    // Requests queue in the writer until the worker's hello: a version mismatch then sends nothing.
    this.writer.corked = true
    this.connectTimer = setTimeout(() => {
      failConnection(this, NativeFailure.CONNECT_TIMEOUT, `native connect to ${upstream.address} exceeded ${o.connectTimeoutMs} ms`, null)
    }, o.connectTimeoutMs)
    this.connectTimer.unref()
    const socket = this.socket
    socket.on('connect', () => {
      const hello = packr.pack({ versions: [PROTOCOL_VERSION], maxFrameBytes: o.maxFrameBytes, agent: 'switchyard-gateway' })
      socket.write(frameBytes(FrameKind.HELLO, 0, hello))
    })
    socket.on('data', (chunk: Buffer) => {
      this.lastReadAt = performance.now()
      try {
        this.reader.push(chunk)
      } catch (err) {
        failConnection(this, NativeFailure.PROTOCOL, `native protocol error from ${upstream.address}: ${(err as Error).message}`, err)
      }
    })
    socket.on('drain', () => { this.writer.needDrain = false })
    socket.on('error', (err) => {
      failConnection(this, NativeFailure.CONNECTION_LOST, `native connection to ${upstream.address} failed: ${err.message}`, err)
    })
    socket.on('close', () => {
      failConnection(this, NativeFailure.CONNECTION_LOST, `native connection to ${upstream.address} closed`, null)
      upstream.onConnectionClosed(this)
    })
  }

  onFrame (kind: FrameKindValue, id: number, buf: Buffer, start: number, end: number): void {
    if (this.state === ConnState.CLOSED) return
    switch (kind) {
      case FrameKind.ITEM: {
        const s = this.streams.get(id)
        if (s === undefined) { this.upstream.counters.framesIgnored++; return }
        const item = this.item
        decodeItem(buf, start, end, item, s.handler.rawText === true)
        item.receivedAt = this.lastReadAt
        s.state = StreamState.STREAMING
        s.items++
        s.deadlineAt = this.lastReadAt + this.upstream.options.idleTimeoutMs
        this.upstream.counters.items++
        try {
          s.handler.onItem(item)
        } catch (err) {
          handlerThrew(this, s, err)
        }
        return
      }
      case FrameKind.END: {
        const s = this.streams.get(id)
        if (s === undefined) { this.upstream.counters.framesIgnored++; return }
        removeStream(this, s)
        this.upstream.counters.streamsEnded++
        callSafely(s.handler.onEnd, s.handler)
        return
      }
      case FrameKind.ACCEPT: {
        const s = this.streams.get(id)
        if (s === undefined) { this.upstream.counters.framesIgnored++; return }
        if (s.state === StreamState.OPEN) {
          s.state = StreamState.ACCEPTED
          s.deadlineAt = this.lastReadAt + this.upstream.options.firstItemTimeoutMs
        }
        if (s.handler.onAccept !== undefined) callSafely(s.handler.onAccept, s.handler)
        return
      }
      case FrameKind.ERROR: {
        const e = decodeBody(buf.subarray(start, end), 'error')
        const message = typeof e.message === 'string' ? e.message : 'worker error'
        if (id === 0) {
          failConnection(this, NativeFailure.PROTOCOL, `worker ${this.upstream.address} closed the connection: ${message}`, null)
          return
        }
        const s = this.streams.get(id)
        if (s === undefined) { this.upstream.counters.framesIgnored++; return }
        removeStream(this, s)
        this.upstream.countFailure(NativeFailure.WORKER_ERROR)
        reportError(s, new NativeStreamError(NativeFailure.WORKER_ERROR, message, s.items > 0, undefined, {
          code: typeof e.code === 'string' ? e.code : 'unknown',
          message,
          retryable: e.retryable === true,
          status: typeof e.status === 'number' ? e.status : 0,
          param: typeof e.param === 'string' ? e.param : null,
          apiCode: typeof e.apiCode === 'string' ? e.apiCode : null
        }))
        return
      }
      case FrameKind.PONG:
        this.pingSentAt = 0
        return
      case FrameKind.PING:
        this.writer.frame(FrameKind.PONG, id)
        return
      case FrameKind.HELLO:
        onHello(this, buf.subarray(start, end))
        return
      case FrameKind.GOAWAY:
        // The worker is draining: no new streams here; close once the open ones finish.
        if (this.state === ConnState.READY || this.state === ConnState.CONNECTING) {
          this.state = ConnState.DRAINING
          this.upstream.retire(this)
          if (this.streams.size === 0) this.socket.end()
        }
        return
      default:
        throw new NativeProtocolError(`a worker sent a ${KIND_NAMES[kind] ?? kind} frame, which only gateways send`)
    }
  }
}

function onHello (conn: NativeConnection, body: Buffer): void {
  if (conn.state !== ConnState.CONNECTING) throw new NativeProtocolError('a second hello on the same connection')
  const h = decodeBody(body, 'hello')
  if (h.version !== PROTOCOL_VERSION) throw new NativeProtocolError(`the worker speaks native protocol version ${String(h.version)}; this gateway speaks ${PROTOCOL_VERSION}`)
  if (typeof h.maxFrameBytes === 'number' && h.maxFrameBytes >= HEADER_BYTES) conn.peerMaxFrame = h.maxFrameBytes
  if (conn.connectTimer !== null) clearTimeout(conn.connectTimer)
  conn.connectTimer = null
  conn.state = ConnState.READY
  conn.upstream.counters.connectionsOpened++
  // The accept deadline counts from when the request could actually be sent.
  const acceptBy = performance.now() + conn.upstream.options.acceptTimeoutMs
  for (const s of conn.streams.values()) s.deadlineAt = acceptBy
  conn.writer.corked = false
  conn.writer.flush()
}

function frameBytes (kind: FrameKindValue, id: number, body: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES + body.length)
  b.writeUInt32BE(body.length + 5, 0)
  b[4] = kind
  b.writeUInt32BE(id, 5)
  b.set(body, HEADER_BYTES)
  return b
}

function removeStream (conn: NativeConnection, s: NativeStream): void {
  s.state = StreamState.DONE
  conn.streams.delete(s.id)
  conn.upstream.openStreamCount--
  if (conn.state === ConnState.DRAINING && conn.streams.size === 0) conn.socket.end()
}

/** Ends one stream with an error and tells the worker to stop it (if the connection still stands). */
function expireStream (conn: NativeConnection, s: NativeStream, reason: NativeFailureReason, message: string): void {
  removeStream(conn, s)
  if (conn.state !== ConnState.CLOSED) conn.writer.frame(FrameKind.CANCEL, s.id)
  conn.upstream.countFailure(reason)
  reportError(s, new NativeStreamError(reason, message, s.items > 0))
}

function handlerThrew (conn: NativeConnection, s: NativeStream, err: unknown): void {
  if (s.state === StreamState.DONE) return
  removeStream(conn, s)
  if (conn.state !== ConnState.CLOSED) conn.writer.frame(FrameKind.CANCEL, s.id)
  conn.upstream.countFailure(NativeFailure.CANCELLED)
  reportError(s, new NativeStreamError(NativeFailure.CANCELLED, `the stream handler threw: ${(err as Error)?.message ?? String(err)}`, true, err))
}

// A throwing onEnd/onError must not be taken for a protocol error and kill the connection.
function callSafely (fn: () => void, handler: NativeStreamHandler): void {
  try {
    fn.call(handler)
  } catch (err) {
    process.emitWarning(`native stream handler threw: ${(err as Error)?.message ?? String(err)}`)
  }
}

function reportError (s: NativeStream, err: NativeStreamError): void {
  try {
    s.handler.onError(err)
  } catch (e) {
    process.emitWarning(`native stream handler threw in onError: ${(e as Error)?.message ?? String(e)}`)
  }
}

/** Closes the connection and fails every stream in its table at once. Idempotent. */
function failConnection (conn: NativeConnection, reason: NativeFailureReason, message: string, cause: unknown): void {
  if (conn.state === ConnState.CLOSED) return
  const up = conn.upstream
  // A worker that sent GOAWAY closes the connection once its streams are done: not a failure.
  const graceful = reason === NativeFailure.CLOSED || (conn.state === ConnState.DRAINING && conn.streams.size === 0)
  conn.state = ConnState.CLOSED
  if (conn.connectTimer !== null) clearTimeout(conn.connectTimer)
  conn.connectTimer = null
  up.retire(conn)
  if (graceful) conn.socket.end()
  else conn.socket.destroy()
  if (!graceful) {
    up.counters.connectionFailures++
    up.tombstone()
  }
  const streams = conn.streams
  if (streams.size === 0) return
  // Copy out first: handlers may open new streams (on another connection) while we fail these.
  const failed = Array.from(streams.values())
  streams.clear()
  up.openStreamCount -= failed.length
  for (const s of failed) {
    s.state = StreamState.DONE
    up.countFailure(reason)
    reportError(s, new NativeStreamError(reason, message, s.items > 0, cause))
  }
}

export interface NativeUpstreamStats {
  address: string
  connections: number
  connectionsOpened: number
  connectionFailures: number
  openStreams: number
  streamsOpened: number
  streamsEnded: number
  items: number
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
  /** Frames for streams no longer in the table (late items after a cancel or timeout). */
  framesIgnored: number
  /** open() calls refused because the upstream was tombstoned. */
  tombstoneHits: number
  /** Stream failures by reason (NativeFailure values). */
  failures: Record<NativeFailureReason, number>
}

class Counters {
  connectionsOpened = 0
  connectionFailures = 0
  streamsOpened = 0
  streamsEnded = 0
  items = 0
  framesIgnored = 0
  tombstoneHits = 0
  /** Totals of connections already closed. */
  framesIn = 0
  framesOut = 0
  bytesIn = 0
  bytesOut = 0
}

/**
 * The client for one worker (`swy://host:port`).
 *
 * @example
 * const up = new NativeUpstream('swy://127.0.0.1:9000', { idleTimeoutMs: 30_000 })
 * const s = up.open({ model: 'mock-llm', endpoint: 'chat', messages, sampling: { maxTokens: 64 } }, {
 *   onItem (item) { if (item.text !== null) res.write(item.text) },
 *   onEnd () { res.end() },
 *   onError (err) { err.retryable && !err.received ? retryElsewhere() : res.destroy(err) }
 * })
 * req.on('close', () => s.cancel())
 * await up.close()
 */
export class NativeUpstream {
  readonly address: string
  readonly host: string
  readonly port: number
  readonly options: Resolved
  /** Date.now() ms until which open() fails fast (the worker's connection failed); 0 when not tombstoned. */
  tombstonedUntil: number
  /** @internal */ openStreamCount: number
  /** @internal */ readonly counters: Counters
  private readonly failures: Record<NativeFailureReason, number>
  private conns: NativeConnection[]
  /** @internal Every connection not yet closed (including draining ones), for close(), sweep and stats. */
  readonly live: Set<NativeConnection>
  /** @internal */ sweepTimer: NodeJS.Timeout | null
  private readonly sweepMs: number
  private closed: boolean
  private closeWaiters: Array<() => void>
  private readonly boundSweep: () => void

  constructor (address: string, opts: NativeUpstreamOptions = {}) {
    const { host, port } = parseNativeAddress(address)
    this.address = address
    this.host = host
    this.port = port
    this.options = resolveOptions(opts)
    const o = this.options
    this.tombstonedUntil = 0
    this.openStreamCount = 0
    this.counters = new Counters()
    this.failures = Object.fromEntries(Object.values(NativeFailure).map((r) => [r, 0])) as Record<NativeFailureReason, number>
    this.conns = []
    this.live = new Set()
    this.sweepTimer = null
    const shortest = Math.min(o.acceptTimeoutMs, o.firstItemTimeoutMs, o.idleTimeoutMs, o.pingIntervalMs > 0 ? o.pingIntervalMs : Infinity)
    this.sweepMs = Math.max(5, Math.min(250, Math.floor(shortest / 4)))
    this.closed = false
    this.closeWaiters = []
    this.boundSweep = () => { sweep(this) }
  }

  /** Streams in flight on all connections. */
  get openStreams (): number {
    return this.openStreamCount
  }

  /**
   * Starts one stream. Never throws and never calls the handler synchronously: a refusal (closed,
   * tombstoned, request too large) arrives as onError on a later microtask.
   */
  open (req: NativeRequest, handler: NativeStreamHandler): NativeStream {
    const now = performance.now()
    const o = this.options
    const endAt = req.deadlineMs !== undefined && req.deadlineMs > 0 ? now + req.deadlineMs : 0
    if (this.closed) return refuse(this, handler, NativeFailure.CLOSED, `native upstream ${this.address} is closed`)
    if (this.tombstonedUntil !== 0) {
      if (Date.now() < this.tombstonedUntil) {
        this.counters.tombstoneHits++
        return refuse(this, handler, NativeFailure.TOMBSTONED, `native upstream ${this.address} failed recently; skipped until ${new Date(this.tombstonedUntil).toISOString()}`)
      }
      this.tombstonedUntil = 0
    }
    const body = encodeRequest(req)
    const conn = this.pick()
    if (body.length + 5 > conn.peerMaxFrame) {
      return refuse(this, handler, NativeFailure.REQUEST_TOO_LARGE, `the request needs a ${body.length + 5}-byte frame; the worker accepts at most ${conn.peerMaxFrame}`)
    }
    const id = nextStreamId(conn)
    const s = new NativeStream(id, conn, handler, now + o.acceptTimeoutMs, endAt)
    conn.streams.add(s)
    this.openStreamCount++
    this.counters.streamsOpened++
    conn.writer.frame(FrameKind.REQUEST, id, body)
    if (this.sweepTimer === null) {
      this.sweepTimer = setInterval(this.boundSweep, this.sweepMs)
      this.sweepTimer.unref()
    }
    return s
  }

  stats (): NativeUpstreamStats {
    const c = this.counters
    let framesIn = c.framesIn
    let framesOut = c.framesOut
    let bytesIn = c.bytesIn
    let bytesOut = c.bytesOut
    for (const conn of this.live) {
      framesIn += conn.reader.framesIn
      framesOut += conn.writer.framesOut
      bytesIn += conn.reader.bytesIn
      bytesOut += conn.writer.bytesOut
    }
    return {
      address: this.address,
      connections: this.live.size,
      connectionsOpened: c.connectionsOpened,
      connectionFailures: c.connectionFailures,
      openStreams: this.openStreamCount,
      streamsOpened: c.streamsOpened,
      streamsEnded: c.streamsEnded,
      items: c.items,
      framesIn,
      framesOut,
      bytesIn,
      bytesOut,
      framesIgnored: c.framesIgnored,
      tombstoneHits: c.tombstoneHits,
      failures: { ...this.failures }
    }
  }

  /**
   * Fails open streams with a retryable `closed` error, closes the connections and resolves when
   * their sockets are closed. Idempotent. (For a removed worker: let in-flight streams finish first
   * by waiting for openStreams to reach 0 if you want a drain.)
   */
  async close (): Promise<void> {
    this.closed = true
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer)
    this.sweepTimer = null
    for (const conn of Array.from(this.live)) failConnection(conn, NativeFailure.CLOSED, `native upstream ${this.address} was closed`, null)
    if (this.live.size === 0) return
    await new Promise<void>((resolve) => { this.closeWaiters.push(resolve) })
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }

  /** @internal */
  countFailure (reason: NativeFailureReason): void {
    this.failures[reason]++
  }

  /** @internal */
  tombstone (): void {
    if (this.options.tombstoneMs > 0 && !this.closed) this.tombstonedUntil = Date.now() + this.options.tombstoneMs
  }

  /** @internal Takes a connection out of the pool (no new streams); it stays live until its socket closes. */
  retire (conn: NativeConnection): void {
    const i = this.conns.indexOf(conn)
    if (i >= 0) this.conns = this.conns.filter((c) => c !== conn)
  }

  /** @internal */
  onConnectionClosed (conn: NativeConnection): void {
    if (!this.live.delete(conn)) return
    const c = this.counters
    c.framesIn += conn.reader.framesIn
    c.framesOut += conn.writer.framesOut
    c.bytesIn += conn.reader.bytesIn
    c.bytesOut += conn.writer.bytesOut
    if (this.live.size === 0 && this.closeWaiters.length > 0) {
      const w = this.closeWaiters
      this.closeWaiters = []
      for (const f of w) f()
    }
  }

  private pick (): NativeConnection {
    const conns = this.conns
    let best: NativeConnection | null = null
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i]!
      if (best === null || c.streams.size < best.streams.size) best = c
    }
    if (best === null || (best.streams.size >= this.options.streamsPerConnection && conns.length < this.options.connections)) {
      best = new NativeConnection(this)
      this.conns = [...conns, best]
      this.live.add(best)
    }
    return best
  }
}

function refuse (up: NativeUpstream, handler: NativeStreamHandler, reason: NativeFailureReason, message: string): NativeStream {
  const s = new NativeStream(0, null, handler, 0, 0)
  s.state = StreamState.DONE
  up.countFailure(reason)
  queueMicrotask(() => { handler.onError(new NativeStreamError(reason, message, false)) })
  return s
}

function nextStreamId (conn: NativeConnection): number {
  // u32 ids, 0 reserved for the connection; the next one whose table slot is free.
  const id = conn.streams.freeId(conn.nextId)
  conn.nextId = (id + 1) >>> 0
  return id
}

const EXPIRY: Record<number, { reason: NativeFailureReason, what: string, key: 'acceptTimeoutMs' | 'firstItemTimeoutMs' | 'idleTimeoutMs' }> = {
  [StreamState.OPEN]: { reason: NativeFailure.ACCEPT_TIMEOUT, what: 'accept the stream', key: 'acceptTimeoutMs' },
  [StreamState.ACCEPTED]: { reason: NativeFailure.FIRST_ITEM_TIMEOUT, what: 'send the first item', key: 'firstItemTimeoutMs' },
  [StreamState.STREAMING]: { reason: NativeFailure.IDLE_TIMEOUT, what: 'send the next item', key: 'idleTimeoutMs' }
}

function sweep (up: NativeUpstream): void {
  const now = performance.now()
  const o = up.options
  for (const conn of Array.from(up.live)) {
    if (conn.state === ConnState.CLOSED) continue
    for (const s of conn.streams.values()) {
      // Streams of a connection still connecting wait for the connect deadline instead.
      if (conn.state === ConnState.CONNECTING) break
      // Failed by an earlier expiry's handler (a retry can grow the table under this walk).
      if (s.state === StreamState.DONE) continue
      if (s.endAt !== 0 && now >= s.endAt) {
        expireStream(conn, s, NativeFailure.DEADLINE, `the request's deadline passed before worker ${up.address} finished`)
      } else if (now >= s.deadlineAt) {
        const e = EXPIRY[s.state]!
        expireStream(conn, s, e.reason, `worker ${up.address} did not ${e.what} within ${o[e.key]} ms`)
      }
    }
    if (o.pingIntervalMs > 0 && conn.state !== ConnState.CONNECTING && conn.streams.size > 0 && now - conn.lastReadAt >= o.pingIntervalMs) {
      if (conn.pingSentAt === 0) {
        conn.pingSentAt = now
        conn.writer.frame(FrameKind.PING, 1)
      } else if (now - conn.pingSentAt >= o.pingIntervalMs) {
        failConnection(conn, NativeFailure.CONNECTION_LOST, `worker ${up.address} did not answer a ping within ${o.pingIntervalMs} ms`, null)
      }
    }
  }
  if (up.openStreamCount === 0) {
    if (up.sweepTimer !== null) clearInterval(up.sweepTimer)
    up.sweepTimer = null
  }
}

/** Parses `swy://host:port`. Throws ConfigError. */
export function parseNativeAddress (address: string): { host: string, port: number } {
  let u: URL
  try {
    u = new URL(address)
  } catch {
    throw new ConfigError(`native worker address ${JSON.stringify(address)} is not a URL; expected swy://host:port`)
  }
  if (u.protocol !== 'swy:') throw new ConfigError(`native worker address ${JSON.stringify(address)} must start with swy://`)
  const port = Number(u.port)
  if (u.port === '' || !Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`native worker address ${JSON.stringify(address)} needs a port (swy://host:port)`)
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname
  return { host, port }
}
