/**
 * The generator's own ceiling: runs it against the null server (a child process, so the two do
 * not share a core) and prints what one generator process can drive. Figures go into
 * src/bench/README.md.
 *
 *   node dist/src/bench/ceiling.js [--requests N] [--tokens N] [--seconds S]
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { runLoad } from './load.js'
import type { LoadOptionsInput } from './options.js'
import type { LoadResult } from './results.js'

function arg (name: string, fallback: number): number {
  const i = process.argv.indexOf('--' + name)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

async function startNullServer (): Promise<{ url: string, stop: () => void }> {
  const child = fork(fileURLToPath(new URL('./null-server.js', import.meta.url)), ['0'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => { resolve((m as { port: number }).port) })
    child.once('exit', (code) => { reject(new Error(`null server exited with ${String(code)}`)) })
  })
  return { url: `http://127.0.0.1:${port}`, stop: () => { child.kill('SIGTERM') } }
}

interface Line {
  name: string
  reqPerS: number
  chunksPerS: number
  cpuUsPerReq: number
  lagP99: string
  loopP99: number
}

function line (name: string, r: LoadResult): Line {
  const s = r.summary
  const cpuUs = (r.generator.cpuMs.user + r.generator.cpuMs.system) * 1000
  const chunks = r.records.reduce((a, x) => a + x.contentChunks, 0)
  return {
    name,
    reqPerS: s.requestThroughput,
    chunksPerS: chunks / s.durationS,
    cpuUsPerReq: cpuUs / Math.max(1, s.requests.total),
    lagP99: r.generator.dispatchLagMs === null ? '-' : r.generator.dispatchLagMs.p99.toFixed(2),
    loopP99: r.generator.eventLoopDelayMs.p99
  }
}

async function main (): Promise<void> {
  const requests = arg('requests', 20_000)
  const tokens = arg('tokens', 16)
  const seconds = arg('seconds', 4)
  const server = await startNullServer()
  const base: LoadOptionsInput = { url: server.url, model: 'null', isl: 64, osl: tokens, scrapeMetrics: false, endpoint: 'chat' }
  const lines: Line[] = []
  try {
    // Prime connections and JIT before measuring.
    await runLoad({ ...base, stream: true, concurrency: 64, numRequests: 2000 })
    for (const c of [1, 64, 256]) {
      lines.push(line(`closed c=${c} stream ${tokens} tok`, await runLoad({ ...base, stream: true, concurrency: c, numRequests: c === 1 ? Math.min(requests, 3000) : requests })))
    }
    lines.push(line('closed c=64 non-stream', await runLoad({ ...base, stream: false, concurrency: 64, numRequests: requests })))
    // Highest Poisson rate the dispatcher keeps to (lag p99 ≤ 10 ms).
    let best = 0
    for (const rate of [500, 1000, 2000, 3000, 4000, 6000, 8000, 12_000]) {
      const r = await runLoad({ ...base, stream: true, requestRate: rate, durationS: seconds, seed: rate })
      lines.push(line(`poisson ${rate}/s stream`, r))
      if (r.generator.behindSchedule || r.summary.requestThroughput < rate * 0.9) break
      best = rate
    }
    process.stdout.write(`\nnull-server ceiling (${tokens} tokens per answer, ISL 64; generator and null server in separate processes)\n\n`)
    // CPU per request is the figure that survives a busy machine; 1e6 / it is the one-core ceiling.
    process.stdout.write('| run | req/s | content chunks/s | generator CPU µs/request | one-core ceiling req/s | dispatch lag p99 ms | event-loop p99 ms |\n|---|---:|---:|---:|---:|---:|---:|\n')
    for (const l of lines) {
      process.stdout.write(`| ${l.name} | ${l.reqPerS.toFixed(0)} | ${l.chunksPerS.toFixed(0)} | ${l.cpuUsPerReq.toFixed(0)} | ${(1e6 / l.cpuUsPerReq).toFixed(0)} | ${l.lagP99} | ${l.loopP99.toFixed(1)} |\n`)
    }
    process.stdout.write(`\nhighest Poisson rate kept (lag p99 ≤ 10 ms, ≥ 90% delivered): ${best} req/s\n`)
  } finally {
    server.stop()
  }
}

void main()
