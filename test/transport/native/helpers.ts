/**
 * Test helpers: a collecting stream handler and a fake worker that speaks the wire protocol byte by
 * byte, so tests can make it misbehave (never accept, never answer, send junk or oversized frames).
 */
import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { FrameKind, FrameReader, FrameWriter, HEADER_BYTES, PROTOCOL_VERSION, packr } from '../../../src/transport/native/index.js'
import type { NativeRequest, NativeStream, NativeStreamError, NativeUpstream } from '../../../src/transport/native/index.js'

export interface Outcome {
  accepted: boolean
  text: string
  items: number
  tokenIds: number[]
  finishReason: string | null
  usage: { promptTokens: number, completionTokens: number, cachedTokens: number } | null
  error: NativeStreamError | null
  /** ms from open to the end or error. */
  ms: number
  calls: number
}

export function openCollect (up: NativeUpstream, req: NativeRequest, onFirstItem?: (s: NativeStream) => void): { stream: NativeStream, done: Promise<Outcome> } {
  const t0 = performance.now()
  const o: Outcome = { accepted: false, text: '', items: 0, tokenIds: [], finishReason: null, usage: null, error: null, ms: 0, calls: 0 }
  let resolve!: (o: Outcome) => void
  const done = new Promise<Outcome>((r) => { resolve = r })
  let stream: NativeStream | null = null
  stream = up.open(req, {
    onAccept () { o.accepted = true },
    onItem (item) {
      o.items++
      if (item.text !== null) o.text += item.text
      if (item.tokenIds !== null) o.tokenIds.push(...item.tokenIds)
      if (item.finishReason !== null) o.finishReason = item.finishReason
      if (item.usage !== null) o.usage = { ...item.usage }
      if (o.items === 1 && onFirstItem !== undefined && stream !== null) onFirstItem(stream)
    },
    onEnd () { o.calls++; o.ms = performance.now() - t0; resolve(o) },
    onError (err) { o.calls++; o.error = err; o.ms = performance.now() - t0; resolve(o) }
  })
  return { stream, done }
}

export interface FakeWorker {
  readonly url: string
  readonly sockets: Set<Socket>
  /** Stream ids of requests received, and of cancels. */
  readonly requests: number[]
  readonly cancels: number[]
  close (): Promise<void>
}

export interface FakeWorkerBehaviour {
  /** What the hello answer says: the real version, another one, or no answer at all. */
  hello?: 'ok' | 'none' | { version: number }
  /** Called per request; default: accept and never answer. */
  onRequest?: (w: FrameWriter, id: number, socket: Socket) => void
}

export async function startFakeWorker (b: FakeWorkerBehaviour = {}): Promise<FakeWorker> {
  const sockets = new Set<Socket>()
  const requests: number[] = []
  const cancels: number[] = []
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    const w = new FrameWriter(socket)
    const reader = new FrameReader({
      onFrame (kind, id) {
        if (kind === FrameKind.HELLO) {
          const hello = b.hello ?? 'ok'
          if (hello === 'none') return
          const version = hello === 'ok' ? PROTOCOL_VERSION : hello.version
          w.frame(FrameKind.HELLO, 0, packr.pack({ version, maxFrameBytes: 1 << 20 }))
        } else if (kind === FrameKind.REQUEST) {
          requests.push(id)
          if (b.onRequest !== undefined) b.onRequest(w, id, socket)
          else w.frame(FrameKind.ACCEPT, id)
        } else if (kind === FrameKind.CANCEL) {
          cancels.push(id)
        } else if (kind === FrameKind.PING) {
          w.frame(FrameKind.PONG, id)
        }
      }
    })
    socket.on('data', (c: Buffer) => { reader.push(c) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `swy://127.0.0.1:${port}`,
    sockets,
    requests,
    cancels,
    async close () {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** Raw frame bytes, for writing junk. */
export function rawFrame (kind: number, id: number, body: Buffer, lengthOverride?: number): Buffer {
  const b = Buffer.alloc(HEADER_BYTES + body.length)
  b.writeUInt32BE(lengthOverride ?? body.length + 5, 0)
  b[4] = kind
  b.writeUInt32BE(id, 5)
  body.copy(b, HEADER_BYTES)
  return b
}

export async function waitFor (cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

export const chat = (content: string, maxTokens: number, extra: Partial<NativeRequest> = {}): NativeRequest => ({
  model: 'mock-llm', endpoint: 'chat', messages: [{ role: 'user', content }], sampling: { maxTokens, ignoreEos: true }, ...extra
})
