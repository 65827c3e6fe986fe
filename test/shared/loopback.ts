/**
 * Test helpers: a connected loopback socket pair, and a peer reset that the client's next write
 * (not a read) discovers.
 */
import { connect, createServer, type Socket } from 'node:net'

/**
 * Runs `fn` on a loopback pair, closed afterwards: `client` is the connecting end, `peer` the
 * server's end (paused until read when `pausePeer`).
 */
export async function withPair (fn: (client: Socket, peer: Socket) => Promise<void>, opts: { pausePeer?: boolean } = {}): Promise<void> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const accepted = new Promise<Socket>(resolve => server.once('connection', resolve))
  const client = connect((server.address() as { port: number }).port, '127.0.0.1')
  try {
    await new Promise<void>(resolve => client.once('connect', resolve))
    const peer = await accepted
    if (opts.pausePeer === true) peer.pause()
    await fn(client, peer)
  } finally {
    client.destroy()
    server.close()
  }
}

export type SocketError = Error & { code?: string, syscall?: string }

/**
 * Resets the connection from `peer`'s side with the client's reads stopped, so the client's next
 * write is what finds out. Resolves to the error the client closes with.
 */
export async function resetByPeer (client: Socket, peer: Socket): Promise<() => Promise<SocketError | undefined>> {
  const closed = new Promise<SocketError | undefined>(resolve => {
    let err: SocketError | undefined
    client.on('error', (e) => { err = e })
    client.once('close', () => { resolve(err) })
  })
  const handle = (client as unknown as { _handle: { readStop: () => number } })._handle
  handle.readStop()
  peer.resetAndDestroy()
  await new Promise(resolve => setTimeout(resolve, 20))
  return async () => await closed
}
