// ChunkWriter writes HTTP/1.1 chunks straight to the socket; its byte path must produce exactly
// what prefix + JSON.stringify(text) + suffix would, for any text, through a real HTTP client.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { request } from 'undici'
import { ChunkWriter, jsonChunk } from '../../src/frontend/chunk-writer.js'

const PREFIX = Buffer.from('data: {"delta":"')
const SUFFIX = Buffer.from('"}\n\n')

/** Texts with every escape class: quotes, backslashes, all control bytes, DEL, multi-byte UTF-8, emoji, U+2028. */
function samples (): string[] {
  const out = ['', 'plain', ' "quoted" ', 'back\\slash', 'tab\tnew\nline\rcr', '\u2028\u2029', 'héllo wörld', '日本語のテキスト', '🙂🚀', 'x'.repeat(200), '"'.repeat(50)]
  let all = ''
  for (let c = 0; c < 0x80; c++) all += String.fromCharCode(c)
  out.push(all)
  let seed = 7
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff }
  const alphabet = ['a', ' ', '"', '\\', '\n', '\u0001', '\u001f', 'é', '€', '😀', '\u007f']
  for (let i = 0; i < 200; i++) {
    let s = ''
    const n = Math.floor(rnd() * 60)
    for (let k = 0; k < n; k++) s += alphabet[Math.floor(rnd() * alphabet.length)]
    out.push(s)
  }
  return out
}

async function serve (handler: Parameters<typeof createServer>[1]): Promise<{ server: Server, url: string }> {
  const server = createServer(handler)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

test('writeJsonString escapes bytes exactly as JSON.stringify does, framed as valid chunks', async () => {
  const texts = samples()
  const { server, url } = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const w = new ChunkWriter(res, 1 << 20)
    w.write('data: start\n\n')
    for (const t of texts) {
      const b = Buffer.from(t)
      // The text sits inside a larger buffer, as it does inside a frame.
      const frame = Buffer.concat([Buffer.from('xyz'), b, Buffer.from('tail')])
      assert.equal(w.writeJsonString(PREFIX, frame, 3, 3 + b.length, SUFFIX), true)
    }
    res.end('data: [DONE]\n\n')
  })
  try {
    const res = await request(url)
    assert.equal(res.headers['transfer-encoding'], 'chunked')
    const body = await res.body.text()
    const expected = 'data: start\n\n' + texts.map(t => `data: {"delta":${JSON.stringify(t)}}\n\n`).join('') + 'data: [DONE]\n\n'
    assert.equal(body, expected)
    for (const t of texts.slice(0, 20)) assert.equal(JSON.parse(JSON.stringify(t)), t)
  } finally {
    server.close()
  }
})

test('jsonChunk gives JSON.stringify\'s bytes, framed or not, wherever the first byte to escape sits (the one-pass copy hands over to the escaping path)', () => {
  const texts = samples()
  // An escape at every position of a plain run, so the hand-over happens at each offset.
  for (let i = 0; i <= 12; i++) texts.push('a'.repeat(i) + '"' + 'b'.repeat(12 - i), 'a'.repeat(i) + '\n', '\u0001' + 'a'.repeat(i))
  for (const t of texts) {
    const b = Buffer.from(t)
    const frame = Buffer.concat([Buffer.from('xyz'), b, Buffer.from('tail')])
    const payload = `data: {"delta":${JSON.stringify(t)}}\n\n`
    assert.equal(jsonChunk(PREFIX, frame, 3, 3 + b.length, SUFFIX, false).toString(), payload, `unframed ${JSON.stringify(t)}`)
    const size = Buffer.byteLength(payload)
    assert.equal(jsonChunk(PREFIX, frame, 3, 3 + b.length, SUFFIX, true).toString(), `${size.toString(16)}\r\n${payload}\r\n`, `framed ${JSON.stringify(t)}`)
  }
})

test('without chunked encoding (a content-length response) ChunkWriter falls back to res.write with the same bytes', async () => {
  const text = 'a "b" \\ c\n'
  const expected = `data: {"delta":${JSON.stringify(text)}}\n\n`
  const { server, url } = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': Buffer.byteLength(expected) })
    const w = new ChunkWriter(res, 1 << 20)
    const b = Buffer.from(text)
    w.writeJsonString(PREFIX, b, 0, b.length, SUFFIX)
    res.end()
  })
  try {
    const res = await request(url)
    assert.equal(await res.body.text(), expected)
  } finally {
    server.close()
  }
})
