/**
 * The proxies the gateway is compared with, started the same way by every scenario (proxy,
 * streaming): nginx, the bare Node proxy, the gateway itself and Portkey's gateway, each its own
 * process in front of the same upstreams, plus what it takes to measure them (their pids, for
 * CPU time from /proc, and the headers a client must send).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuMs, freePort, waitForPort, type Proc } from './proc.js'
import { hasCommand } from './wrk.js'

export type PeerKind = 'nginx' | 'bare' | 'raw' | 'gateway' | 'gateway-warn' | 'baseline' | 'portkey'

export interface Peer {
  kind: PeerKind
  url: string
  proc: Proc
  /** Processes whose CPU is the proxy's (nginx: master and worker). */
  pids: number[]
  /** Headers every request must carry (Portkey: its routing config). */
  headers: Record<string, string>
}

export interface PeerSetup {
  /** Scratch directory (nginx's config, temp paths and logs). */
  dir: string
  /** Upstream base URLs, e.g. http://127.0.0.1:PORT (no /v1). */
  upstreams: string[]
  model: string
  /** Path of nginx (from ensureCommand), needed for kind nginx. */
  nginx: string | null
  /** Starts a process (the caller may pin it to CPUs). */
  start: (cmd: string, args: string[], env?: Record<string, string>) => Proc
  /** Extra node flags for the Node proxies (e.g. --cpu-prof ...). */
  nodeArgs?: (kind: PeerKind) => string[]
  /** Child pids to kill on exit if the master dies first (nginx workers). */
  strays?: number[]
  /** CLI entry of a past build (bench/lib/baseline.ts), needed for kind baseline: run as `gateway` is. */
  baselineCli?: string | undefined
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, Math.max(0, ms)))
const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url))

/** Child pids of `pid` (nginx's workers), from /proc. */
export function childrenOf (pid: number): number[] {
  try {
    const s = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
    if (s !== '') return s.split(/\s+/).map(Number)
  } catch { /* kernel without CONFIG_PROC_CHILDREN: scan */ }
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(d))
    } catch { /* gone */ }
  }
  return out
}

export function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

/** Summed CPU ms (utime + stime) of the processes. */
export function cpuOf (pids: number[]): number {
  let s = 0
  for (const p of pids) s += cpuMs(p)
  return s
}

/** Finds `cmd`, installing Debian's `pkg` with apt-get when missing, allowed and root. */
export function ensureCommand (cmd: string, pkg: string, versionArgs: string[], install: boolean): string | null {
  for (const c of [cmd, `/usr/sbin/${cmd}`, `/usr/bin/${cmd}`]) if (hasCommand(c, versionArgs)) return c
  if (!install || process.getuid?.() !== 0 || !hasCommand('apt-get', ['--version'])) return null
  process.stderr.write(`${cmd} is missing: apt-get install -y ${pkg} ...\n`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const apt = (args: string[]): number | null => spawnSync('apt-get', args, { stdio: ['ignore', 2, 2], env }).status
  if (apt(['install', '-y', '--no-install-recommends', pkg]) !== 0) {
    apt(['update'])
    apt(['install', '-y', '--no-install-recommends', pkg])
  }
  for (const c of [cmd, `/usr/sbin/${cmd}`, `/usr/bin/${cmd}`]) if (hasCommand(c, versionArgs)) return c
  return null
}

/** One nginx worker, upstream keepalive, no buffering (SSE goes through as it comes). */
export function nginxConfig (dir: string, port: number, upstreams: string[]): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 65535;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  upstream switchyard_bench {
${upstreams.map(u => `    server ${new URL(u).host};`).join('\n')}
    keepalive 512;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://switchyard_bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`
}

export interface PortkeyInstall {
  /** build/start-server.js of @portkey-ai/gateway. */
  entry: string
  version: string
  /** The @hono/node-server it runs on. */
  nodeServer: string
}

function packageJsonAbove (file: string, name: string): { version: string } | null {
  let d = dirname(file)
  for (let i = 0; i < 6; i++, d = dirname(d)) {
    const p = join(d, 'package.json')
    if (!existsSync(p)) continue
    const j = JSON.parse(readFileSync(p, 'utf8')) as { name?: string, version: string }
    if (j.name === name) return j
  }
  return null
}

/**
 * Where Portkey's gateway is installed (devDependency @portkey-ai/gateway), or why it cannot
 * run. Its Node build runs on @hono/node-server; from 1.14.2 on, node-server's lightweight
 * Response keeps the upstream fetch Response's immutable Headers, and Portkey's updateHeaders()
 * then throws `TypeError: immutable` on every stream (Portkey-AI/gateway#1389): package.json
 * pins node-server 1.14.1 under Portkey with `overrides`.
 */
export function findPortkey (): PortkeyInstall | { error: string } {
  const require = createRequire(import.meta.url)
  let pkgPath: string
  try {
    pkgPath = require.resolve('@portkey-ai/gateway/package.json')
  } catch {
    return { error: 'not installed (npm install: it is a devDependency, @portkey-ai/gateway)' }
  }
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }
  const entry = join(dirname(pkgPath), 'build', 'start-server.js')
  if (!existsSync(entry)) return { error: `@portkey-ai/gateway ${pkg.version} has no build/start-server.js` }
  let nodeServer = 'unknown'
  try {
    const ns = packageJsonAbove(createRequire(pkgPath).resolve('@hono/node-server'), '@hono/node-server')
    if (ns !== null) nodeServer = ns.version
  } catch {
    return { error: `@portkey-ai/gateway ${pkg.version}: @hono/node-server is missing` }
  }
  const [a = 0, b = 0, c = 0] = nodeServer.split('.').map(Number)
  if (a === 1 && (b > 14 || (b === 14 && c >= 2))) {
    return { error: `@portkey-ai/gateway ${pkg.version} on @hono/node-server ${nodeServer}: streams fail with "TypeError: immutable" (Portkey-AI/gateway#1389); pin @hono/node-server 1.14.1 under it (package.json overrides)` }
  }
  return { entry, version: pkg.version, nodeServer }
}

/**
 * Portkey's routing for the upstreams: provider openai at each custom host, load balanced
 * (weighted random: Portkey has no round robin). Sent as the x-portkey-config header, which
 * Portkey parses and validates on every request, as it would for a real client. Its schema
 * wants an api_key with every provider target; the upstreams ignore it.
 */
export function portkeyHeaders (upstreams: string[]): Record<string, string> {
  const target = (u: string): Record<string, unknown> => ({ provider: 'openai', api_key: 'unused', custom_host: u + '/v1' })
  const config = upstreams.length === 1
    ? target(upstreams[0]!)
    : { strategy: { mode: 'loadbalance' }, targets: upstreams.map(u => ({ ...target(u), weight: 1 })) }
  return { 'x-portkey-config': JSON.stringify(config) }
}

/** Starts one proxy in front of the upstreams and waits until it accepts connections. */
export async function startPeer (kind: PeerKind, s: PeerSetup): Promise<Peer> {
  const port = await freePort()
  const nodeArgs = s.nodeArgs?.(kind) ?? []
  let proc: Proc
  let headers: Record<string, string> = {}
  if (kind === 'nginx') {
    if (s.nginx === null) throw new Error('nginx is not installed')
    writeFileSync(join(s.dir, 'nginx.conf'), nginxConfig(s.dir, port, s.upstreams))
    proc = s.start(s.nginx, ['-p', s.dir, '-e', join(s.dir, 'error.log'), '-c', join(s.dir, 'nginx.conf')])
  } else if (kind === 'bare') {
    proc = s.start(process.execPath, [...nodeArgs, here('./bare-proxy.js'), String(port), ...s.upstreams])
  } else if (kind === 'raw') {
    proc = s.start(process.execPath, [...nodeArgs, here('./raw-proxy.js'), String(port), ...s.upstreams])
  } else if (kind === 'portkey') {
    const pk = findPortkey()
    if ('error' in pk) throw new Error(`portkey: ${pk.error}`)
    // --headless: no UI and no log-streaming routes, as a server deployment runs it.
    proc = s.start(process.execPath, [...nodeArgs, pk.entry, `--port=${port}`, '--headless'])
    headers = portkeyHeaders(s.upstreams)
  } else {
    if (kind === 'baseline' && s.baselineCli === undefined) throw new Error('baseline: no build given (--baseline REF)')
    const cli = kind === 'baseline' ? s.baselineCli! : here('../../src/cli/main.js')
    proc = s.start(process.execPath, [...nodeArgs, cli, 'serve', '--port', String(port), ...s.upstreams.flatMap(u => ['--worker', `${s.model}=${u}`]), '--log-level', kind === 'gateway-warn' ? 'warn' : 'info'])
  }
  await waitForPort(port)
  const pids = [proc.child.pid!]
  if (kind === 'nginx') {
    for (let i = 0; i < 50 && childrenOf(pids[0]!).length === 0; i++) await sleep(50)
    const workers = childrenOf(pids[0]!)
    if (workers.length === 0) throw new Error(`nginx started no worker; see ${join(s.dir, 'error.log')}`)
    pids.push(...workers)
    s.strays?.push(...workers)
  }
  return { kind, url: `http://127.0.0.1:${port}`, proc, pids, headers }
}

/** One thing a scenario measures: a proxy peer, or `direct` (the first upstream, no proxy). */
export interface Target<N extends string = string> {
  name: N
  url: string
  proc: Proc | null
  /** Processes whose CPU is the proxy's (empty for direct). */
  pids: number[]
  /** Headers every request carries (Portkey's routing config). */
  headers: Record<string, string>
}

/**
 * Starts the named targets in order (`direct` is the first upstream itself). Portkey failing to
 * start is reported through `skipPortkey` and left out; any other failure throws.
 */
export async function startTargets<N extends string> (names: readonly N[], directUrl: string, setup: PeerSetup, skipPortkey: (reason: string) => void): Promise<{ targets: Array<Target<N>>, procs: Proc[] }> {
  const targets: Array<Target<N>> = []
  const procs: Proc[] = []
  for (const name of names) {
    if (name === 'direct') { targets.push({ name, url: directUrl, proc: null, pids: [], headers: {} }); continue }
    let peer: Peer
    try {
      peer = await startPeer(name as unknown as PeerKind, setup)
    } catch (err) {
      if (name !== 'portkey') throw err
      skipPortkey((err as Error).message.split('\n')[0]!)
      continue
    }
    procs.push(peer.proc)
    targets.push({ name, url: peer.url, proc: peer.proc, pids: peer.pids, headers: peer.headers })
  }
  return { targets, procs }
}

/** The fast upstreams' counters (GET /stats): completions started and done, SSE chunks written. */
export interface UpStats { started: number, done: number, chunks: number }

export async function upstreamStats (urls: readonly string[]): Promise<UpStats[]> {
  return await Promise.all(urls.map(async u => (await (await fetch(`${u}/stats`)).json()) as UpStats))
}
