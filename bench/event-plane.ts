/**
 * `event-plane` (issue 8): KV block events through NATS from 8 publishers (one connection each,
 * as 8 workers) to 2 gateway-side subscribers (one connection each), each feeding its own KV
 * index through the same in-process source the gateway uses. Publishers send paced batches (one
 * per simulated engine pass) of BlockStored events that chain into prefixes, then BlockRemoved
 * to keep the indexes bounded.
 *
 * Throughput: blocks applied per second at each subscriber while the publishers run flat out
 * (`--rate 0`). Lag: with paced publishers, time from publish to the subscriber's listener for
 * each batch (per worker the batches arrive in order, so each subscriber pops a FIFO of send
 * times), p50 / p99. A real nats-server (Debian's) with a temp store, on a free port.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { connectNats, NatsKvPublisher, NatsKvSubscriber, type NatsHandle } from '../src/events/index.js'
import { InProcessKvEventSource, KvIndex, type InProcessKvEvent } from '../src/kv/index.js'
import { recordFigures } from './lib/docs.js'
import { freePort, waitForPort } from './lib/proc.js'
import { machine, median, table } from './lib/table.js'

const NS = 'bench'
const BLOCK = 64

interface Result { mode: string, blocksPerS: number[], lagP50: number, lagP99: number, batches: number }

function percentile (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!
}

/** One batch: `stored` new blocks chained after the previous one, and the oldest removed. */
function makeBatch (worker: number, n: number, stored: number, tokens: Uint32Array): InProcessKvEvent[] {
  const base = BigInt(worker) << 40n
  const first = BigInt(n * stored)
  const hashes: bigint[] = []
  for (let i = 0n; i < BigInt(stored); i++) hashes.push(base + first + i + 1n)
  const events: InProcessKvEvent[] = [{ type: 'BlockStored', blockHashes: hashes, parentBlockHash: n === 0 ? null : base + first, tokenIds: tokens.subarray(0, stored * BLOCK), blockSize: BLOCK }]
  if (n >= 64) {
    const old: bigint[] = []
    for (let i = 0n; i < BigInt(stored); i++) old.push(base + BigInt((n - 64) * stored) + i + 1n)
    events.push({ type: 'BlockRemoved', blockHashes: old })
  }
  return events
}

async function measure (mode: 'throughput' | 'lag', publishers: number, gateways: number, durationS: number, stored: number, rate: number, natsUrl: string): Promise<Result> {
  const pubConns: NatsHandle[] = []
  const subConns: NatsHandle[] = []
  const closers: Array<() => void> = []
  try {
    const subs: Array<{ sub: NatsKvSubscriber, index: KvIndex, blocks: number, sent: number[][], lags: number[] }> = []
    for (let g = 0; g < gateways; g++) {
      const h = await connectNats({ servers: natsUrl, name: `bench-gw-${g}` })
      subConns.push(h)
      const sub = new NatsKvSubscriber(h.nc, { namespace: NS })
      const index = new KvIndex({ blockSize: BLOCK })
      const entry = { sub, index, blocks: 0, sent: Array.from({ length: publishers }, () => [] as number[]), lags: [] as number[] }
      for (let w = 0; w < publishers; w++) {
        const stream = sub.engineFor(`w${w}`)
        const source = new InProcessKvEventSource(index, stream, { workerId: `w${w}` })
        closers.push(() => { void source.close() })
        const off = stream.onKvEvents((batch) => {
          for (const e of batch.events) if (e.type === 'BlockStored') entry.blocks += e.blockHashes.length
          const t = entry.sent[w]!.shift()
          if (t !== undefined) entry.lags.push(performance.now() - t)
        })
        closers.push(off)
      }
      subs.push(entry)
    }
    const pubs: NatsKvPublisher[] = []
    for (let w = 0; w < publishers; w++) {
      const h = await connectNats({ servers: natsUrl, name: `bench-worker-${w}` })
      pubConns.push(h)
      pubs.push(new NatsKvPublisher(h.nc, { namespace: NS, workerId: `w${w}` }))
    }
    // Let the subscribers' attach snapshots settle before measuring.
    await new Promise(resolve => setTimeout(resolve, 500))
    for (const s of subs) { s.blocks = 0; for (const q of s.sent) q.length = 0; s.lags.length = 0 }
    const tokens = new Uint32Array(stored * BLOCK).map((_, i) => i % 30000)
    const t0 = performance.now()
    const end = t0 + durationS * 1000
    let n = 0
    let batches = 0
    while (performance.now() < end) {
      for (let w = 0; w < publishers; w++) {
        const now = performance.now()
        for (const s of subs) s.sent[w]!.push(now)
        pubs[w]!.publish(makeBatch(w, n, stored, tokens))
        batches++
      }
      n++
      // Paced: one batch per publisher per 1000/rate ms; flat out: yield so NATS can flush.
      await new Promise(resolve => rate > 0 ? setTimeout(resolve, 1000 / rate) : setImmediate(resolve))
    }
    for (const h of pubConns) await h.nc.flush()
    const deadline = performance.now() + 10_000
    const expected = batches / publishers * stored * publishers
    while (subs.some(s => s.blocks < expected) && performance.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    const elapsed = (performance.now() - t0) / 1000
    const lags = subs.flatMap(s => s.lags)
    for (const p of pubs) await p.close()
    return { mode: mode === 'throughput' ? 'flat out' : `paced ${rate}/s per publisher`, blocksPerS: subs.map(s => s.blocks / elapsed), lagP50: percentile(lags, 0.5), lagP99: percentile(lags, 0.99), batches }
  } finally {
    for (const c of closers) c()
    for (const h of [...pubConns, ...subConns]) await h.close()
  }
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { publishers: { type: 'string', default: '8' }, gateways: { type: 'string', default: '2' }, duration: { type: 'string', default: '5' }, blocks: { type: 'string', default: '16' }, rate: { type: 'string', default: '50' }, 'no-record': { type: 'boolean', default: false } } })
  const publishers = Number(values.publishers)
  const gateways = Number(values.gateways)
  const durationS = Number(values.duration)
  const stored = Number(values.blocks)
  const rate = Number(values.rate)
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'swy-nats-ep-'))
  const server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' })
  try {
    await waitForPort(port)
    const url = `nats://127.0.0.1:${port}`
    process.stderr.write(`event-plane: ${publishers} publishers -> ${gateways} subscribers, flat out for ${durationS} s...\n`)
    const flat = await measure('throughput', publishers, gateways, durationS, stored, 0, url)
    process.stderr.write(`event-plane: paced at ${rate} batches/s per publisher for ${durationS} s...\n`)
    const paced = await measure('lag', publishers, gateways, durationS, stored, rate, url)
    const rows = [flat, paced].map(r => [r.mode, r.batches, median(r.blocksPerS), Math.min(...r.blocksPerS), r.lagP50, r.lagP99])
    const header = `event-plane — ${await machine()}\ncommand: npm run bench -- event-plane ${argv.join(' ')}\n${publishers} KV event publishers (NatsKvPublisher, one NATS connection each) -> ${gateways} gateway-side subscribers (NatsKvSubscriber -> in-process source -> KvIndex, one connection each), all in this process; nats-server (Debian's) on loopback; batches of ${stored} chained BlockStored blocks (+ the matching BlockRemoved after 64 batches); lag = publish to the subscriber's listener`
    const t = table(['mode', 'batches sent', 'blocks applied/s per subscriber (median)', 'slowest subscriber', 'lag p50 ms', 'lag p99 ms'], rows)
    console.log('\n' + header + '\n\n' + t)
    if (!values['no-record']) recordFigures('event-plane', `## event-plane\n\n${header.replace('\n', '\n\n')}\n\n${t}\n`)
  } finally {
    server.kill('SIGTERM')
    await new Promise(resolve => server.once('exit', resolve))
    rmSync(dir, { recursive: true, force: true })
  }
}
