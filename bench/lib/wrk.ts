/**
 * wrk as the load generator: a Lua script per request shape (written to a temp dir at run time),
 * one run, and its figures. The script's `done()` prints exact counts and percentiles on one
 * line; the human-readable output is parsed as well, as a cross-check and a fallback.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface WrkResult {
  requests: number
  durationS: number
  rps: number
  p50Ms: number
  p99Ms: number
  meanMs: number
  /** Responses with a status outside 2xx/3xx ("Non-2xx or 3xx responses"). */
  non2xx: number
  /** connect + read + write + timeout socket errors. */
  socketErrors: number
  raw: string
}

export interface WrkRun {
  child: ChildProcess
  result: Promise<WrkResult>
}

function luaString (s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"'
}

/** Writes a Lua script that POSTs `body` as JSON (plus `headers`) and reports exact figures; returns its path. */
export function writePostScript (dir: string, name: string, body: string, headers: Record<string, string> = {}): string {
  const path = join(dir, `${name}.lua`)
  writeFileSync(path, [
    'wrk.method = "POST"',
    `wrk.body = ${luaString(body)}`,
    'wrk.headers["Content-Type"] = "application/json"',
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`),
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("SWY_WRK %d %d %d %d %d %d %d %d %d %.1f\\n", summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,',
    '    latency:percentile(50), latency:percentile(99), latency.mean))',
    'end',
    ''
  ].join('\n'))
  return path
}

/** wrk's duration units to ms ("812.00us", "1.23ms", "2.00s", "1.5m"). */
function toMs (v: string, unit: string): number {
  const n = Number(v)
  switch (unit) {
    case 'us': return n / 1000
    case 'ms': return n
    case 's': return n * 1000
    case 'm': return n * 60_000
    default: return NaN
  }
}

/** Parses wrk's text output (and the SWY_WRK line when the script printed one). */
export function parseWrk (out: string): WrkResult {
  const exact = /^SWY_WRK (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) ([\d.]+)$/m.exec(out)
  const non2xxText = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const reqs = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(out)
  const rpsText = /Requests\/sec:\s+([\d.]+)/.exec(out)
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out)
    return m === null ? NaN : toMs(m[1]!, m[2]!)
  }
  if (exact !== null) {
    const n = exact.slice(1).map(Number)
    const [requests, durUs, status, c, r, w, t, p50, p99, mean] = n as [number, number, number, number, number, number, number, number, number, number]
    const non2xx = Math.max(status, non2xxText === null ? 0 : Number(non2xxText[1]))
    return { requests, durationS: durUs / 1e6, rps: requests / (durUs / 1e6), p50Ms: p50 / 1000, p99Ms: p99 / 1000, meanMs: mean / 1000, non2xx, socketErrors: c + r + w + t, raw: out }
  }
  if (reqs === null || rpsText === null) throw new Error(`cannot parse wrk output:\n${out}`)
  return {
    requests: Number(reqs[1]),
    durationS: toMs(reqs[2]!, reqs[3]!) / 1000,
    rps: Number(rpsText[1]),
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    meanMs: NaN,
    non2xx: non2xxText === null ? 0 : Number(non2xxText[1]),
    socketErrors: sock === null ? 0 : sock.slice(1).reduce((a, b) => a + Number(b), 0),
    raw: out
  }
}

export interface WrkOptions {
  url: string
  script: string
  connections: number
  /** Whole seconds (wrk takes no fractions). */
  durationS: number
  threads?: number
  timeoutS?: number
  /** CPU list to pin wrk to (taskset -c), or null. */
  cpus?: string | null
}

/** Starts one wrk run; `result` resolves when it exits (rejects if wrk fails). */
export function runWrk (o: WrkOptions): WrkRun {
  const args = [`-t${o.threads ?? 1}`, `-c${o.connections}`, `-d${o.durationS}s`, `--timeout`, `${o.timeoutS ?? 30}s`, '--latency', '-s', o.script, o.url]
  const child = o.cpus === undefined || o.cpus === null ? spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn('taskset', ['-c', o.cpus, 'wrk', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
  const result = new Promise<WrkResult>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, sig) => {
      if (code !== 0) { reject(new Error(`wrk ${args.join(' ')} exited ${code ?? sig}\n${out}${err}`)); return }
      try { resolve(parseWrk(out)) } catch (e) { reject(e as Error) }
    })
  })
  return { child, result }
}

/** True when `cmd` runs (`cmd -v` or similar exits without ENOENT). */
export function hasCommand (cmd: string, args: string[] = ['-v']): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' })
  return r.error === undefined
}
