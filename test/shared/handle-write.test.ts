// String writes straight to a socket's handle (the upstream pool's requests): they take the
// handle when node holds nothing for the socket, keep their order behind what node does hold,
// and a failed write ends the socket with the errno.
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import { test } from 'node:test'
import { writeString } from '../../src/shared/handle-write.js'
import { resetByPeer, withPair } from './loopback.js'

async function read (peer: Socket, bytes: number): Promise<string> {
  let got = ''
  return await new Promise(resolve => {
    peer.on('data', (d: Buffer) => { got += d.toString('latin1'); if (got.length >= bytes) resolve(got) })
  })
}

test('a string goes to the handle when node holds nothing, and through socket.write behind bytes node holds, in order', async () => {
  await withPair(async (client, peer) => {
    let viaNode = 0
    const write = client.write.bind(client) as (...a: unknown[]) => boolean
    client.write = ((...a: unknown[]) => { viaNode++; return write(...a) }) as Socket['write']
    writeString(client, 'GET / HTTP/1.1\r\n\r\n', 'latin1')
    writeString(client, 'é|', 'utf8')
    assert.equal(viaNode, 0, 'both went to the handle')
    assert.equal(client.bytesWritten, 18 + 3, 'node counts bytes written to its handle')
    // Fill the socket until node itself buffers, then write a string: it must queue behind.
    const big = 'x'.repeat(1 << 20)
    let filled = 0
    while (client.writableLength === 0 && filled < 64) { client.write(big); filled++ }
    assert.ok(client.writableLength > 0, 'node holds bytes')
    const before = viaNode
    writeString(client, '|tail', 'latin1')
    assert.equal(viaNode, before + 1, 'written through node')
    const want = 'GET / HTTP/1.1\r\n\r\n' + Buffer.from('é|').toString('latin1') + big.repeat(filled) + '|tail'
    assert.equal(await read(peer, want.length), want)
  })
})

test('a string write to a peer that reset the connection destroys the socket with the write errno', async () => {
  await withPair(async (client, peer) => {
    const closed = await resetByPeer(client, peer)
    for (let i = 0; i < 5 && !client.destroyed; i++) {
      writeString(client, 'x'.repeat(1024), 'latin1')
      await new Promise(resolve => setImmediate(resolve))
    }
    const err = await closed()
    assert.ok(err !== undefined && /^(EPIPE|ECONNRESET)$/.test(err.code ?? '') && err.syscall === 'write', `closed with ${String(err)}`)
  })
})
