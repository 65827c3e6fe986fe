/**
 * `mocker` (seed 001's setup, scaled to this machine): one mock engine at maximum speed-up,
 * closed loop at concurrency 256, ISL/OSL 1024/1024 exact with ignore_eos, streaming. Measured
 * directly and then through the gateway: req/s, output tokens/s, the engine's CPU per request and,
 * through the gateway, the gateway's CPU per request and its share of the CPU both spend.
 * `--profile` writes a CPU profile of the engine (and the gateway) and prints the top frames.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { runLoad, type LoadResult } from '../src/bench/index.js'
import { topFrames } from './lib/cpuprofile.js'
import { recordFigures } from './lib/docs.js'
import { cpuMs, freePort, start, waitForPort, type Proc } from './lib/proc.js'
import { fmt, machine, table } from './lib/table.js'

const CLI = new URL('../src/cli/main.js', import.meta.url).pathname

interface Row { path: string, res: LoadResult, engineCpu: number, gatewayCpu: number | null }

async function measure (url: string, opts: { concurrency: number, requests: number, isl: number, osl: number }, procs: { engine: Proc, gateway: Proc | null }): Promise<Omit<Row, 'path'>> {
  const e0 = cpuMs(procs.engine.child.pid!)
  const g0 = procs.gateway === null ? 0 : cpuMs(procs.gateway.child.pid!)
  const res = await runLoad({ url, model: 'mock-llm', endpoint: 'completions', stream: true, concurrency: opts.concurrency, numRequests: opts.requests, isl: opts.isl, osl: opts.osl, ignoreEos: true, progress: true, scrapeMetrics: false })
  const ok = Math.max(1, res.summary.requests.ok)
  const engineCpu = (cpuMs(procs.engine.child.pid!) - e0) / ok
  const gatewayCpu = procs.gateway === null ? null : (cpuMs(procs.gateway.child.pid!) - g0) / ok
  return { res, engineCpu, gatewayCpu }
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      concurrency: { type: 'string', default: '256' },
      requests: { type: 'string', default: '768' },
      isl: { type: 'string', default: '1024' },
      osl: { type: 'string', default: '1024' },
      profile: { type: 'boolean', default: false },
      'no-record': { type: 'boolean', default: false }
    }
  })
  const opts = { concurrency: Number(values.concurrency), requests: Number(values.requests), isl: Number(values.isl), osl: Number(values.osl) }
  const profDir = values.profile ? mkdtempSync(join(tmpdir(), 'swy-prof-')) : null
  const prof = (name: string): string[] => profDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', join(profDir, name)]
  const enginePort = await freePort()
  const gwPort = await freePort()
  const engine = start(process.execPath, [...prof('engine'), CLI, 'mocker', '--port', String(enginePort), '--num-workers', '1', '--speedup-ratio', '0'])
  let gateway: Proc | null = null
  const rows: Row[] = []
  try {
    await waitForPort(enginePort)
    console.error(`[1/2] direct to the engine: c=${opts.concurrency}, ${opts.requests} requests, ISL/OSL ${opts.isl}/${opts.osl}`)
    rows.push({ path: 'direct', ...await measure(`http://127.0.0.1:${enginePort}`, opts, { engine, gateway: null }) })
    gateway = start(process.execPath, [...prof('gateway'), CLI, 'serve', '--port', String(gwPort), '--worker', `mock-llm=http://127.0.0.1:${enginePort}`], {})
    await waitForPort(gwPort)
    console.error('[2/2] through the gateway')
    rows.push({ path: 'gateway', ...await measure(`http://127.0.0.1:${gwPort}`, opts, { engine, gateway }) })
  } finally {
    await gateway?.stop()
    await engine.stop()
  }
  const header = `mocker — ${await machine()}\ncommand: npm run bench -- mocker ${argv.join(' ')}\none engine, speed-up 0 (as fast as possible), completions, stream, c=${opts.concurrency}, ISL/OSL ${opts.isl}/${opts.osl} exact, ignore_eos, ${opts.requests} requests per row`
  console.log('\n' + header + '\n')
  const t = table(['path', 'req/s', 'output tok/s', 'TTFT p50 ms', 'ITL p50 ms', 'engine CPU ms/req', 'gateway CPU ms/req', 'gateway CPU share', 'gateway CPU µs/token', 'errors'], rows.map(r => {
    const s = r.res.summary
    const share = r.gatewayCpu === null ? NaN : r.gatewayCpu / (r.gatewayCpu + r.engineCpu)
    return [r.path, s.requestThroughput, s.outputTokenThroughput, s.latency.ttftMs?.p50 ?? NaN, s.latency.itlMs?.p50 ?? NaN, r.engineCpu, r.gatewayCpu ?? NaN, Number.isFinite(share) ? `${(share * 100).toFixed(1)}%` : '-', r.gatewayCpu === null ? NaN : r.gatewayCpu * 1000 / opts.osl, String(s.requests.failed)]
  }))
  const direct = rows[0]!.res.summary.outputTokenThroughput
  const via = rows[1]!.res.summary.outputTokenThroughput
  const ratio = `\nthroughput through the gateway / direct: ${fmt(via / direct)}x (both share the machine's 2 cores with the load generator)`
  console.log(ratio)
  let profText = ''
  if (profDir !== null) {
    for (const name of ['engine', 'gateway']) {
      const top = topFrames(join(profDir, name))
      profText += `\ntop self-time frames, ${name}:\n` + top.map(f => `  ${f.selfPct.toFixed(1).padStart(5)}%  ${f.frame}`).join('\n') + '\n'
    }
    console.log(profText)
    rmSync(profDir, { recursive: true, force: true })
  }
  if (!values['no-record']) recordFigures('mocker', `## mocker\n\n${header.replace('\n', '\n\n')}\n\n${t}\n${ratio}\n${profText === '' ? '' : '\n```\n' + profText.trim() + '\n```\n'}`)
}
