/**
 * The floor of a Node process's cost per streamed token: it only writes a prebuilt ~190-byte SSE
 * chunk (HTTP/1.1 chunk framing included) to each of N loopback sockets every `ms` — what any Node
 * proxy must do per token at that pacing, before reading or formatting anything. A sink child
 * process reads. Prints `{"user":µs,"sys":µs}` per write on stdout.
 *
 * `node dist/bench/lib/write-floor.js <sockets> <ms> <seconds> [socket|handle]`: `handle` writes
 * to each socket's libuv handle as the gateway does (src/shared/handle-write.ts) instead of
 * through `socket.write` (TickWrites.sendNow, the gateway's own write path), to price node's
 * Writable per write.
 */
import { fork } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'

import { cpuSplitMs } from './proc.js'
import { TickWrites } from '../../src/frontend/http1/tick-writes.js'

async function writer (n: number, ms: number, seconds: number, mode: string): Promise<void> {
  if (mode !== 'socket' && mode !== 'handle') throw new Error(`mode must be socket or handle, not ${mode}`)
  const sink = fork(new URL(import.meta.url).pathname, ['sink'])
  const port = await new Promise<number>(resolve => sink.once('message', (p) => resolve(p as number)))
  const socks = await Promise.all(Array.from({ length: n }, async () => await new Promise<Socket>((resolve) => {
    const c = connect(port, '127.0.0.1', () => resolve(c))
    c.setNoDelay(true)
  })))
  const payload = 'data: {"id":"cmpl-0123456789abcdef","object":"text_completion","created":1795449545,"model":"mock-llm","choices":[{"index":0,"text":" token","logprobs":null,"finish_reason":null}]}\n\n'
  const framed = `${Buffer.byteLength(payload).toString(16)}\r\n${payload}\r\n`
  const outs = mode === 'handle' ? socks.map(c => new TickWrites(c)) : null
  let writes = 0
  const t0 = cpuSplitMs('self')
  const start = Date.now()
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      for (let i = 0; i < socks.length; i++) {
        // A fresh buffer per write, as a proxy has: the bytes differ per token.
        const b = Buffer.allocUnsafe(framed.length)
        b.write(framed, 0, 'latin1')
        if (outs === null) socks[i]!.write(b)
        else outs[i]!.sendNow(b)
        writes++
      }
      if (Date.now() - start > seconds * 1000) { clearInterval(timer); resolve() }
    }, ms)
  })
  const t1 = cpuSplitMs('self')
  process.stdout.write(JSON.stringify({ user: (t1.user - t0.user) * 1000 / writes, sys: (t1.sys - t0.sys) * 1000 / writes, writes }) + '\n')
  for (const c of socks) c.destroy()
  sink.kill()
}

if (process.argv[2] === 'sink') {
  const s = createServer((c) => { c.on('data', () => {}) })
  s.listen(0, '127.0.0.1', () => process.send!((s.address() as { port: number }).port))
} else {
  await writer(Number(process.argv[2] ?? 256), Number(process.argv[3] ?? 10), Number(process.argv[4] ?? 8), process.argv[5] ?? 'socket')
}
