import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'

const TICKS = 100 // USER_HZ on Linux

/** User and system CPU time a process (`self` or a pid) has used so far, in ms, from /proc. */
export function cpuSplitMs (pid: number | 'self'): { user: number, sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[11] = utime, fields[12] = stime (0-based after the command name)
  return { user: Number(fields[11]) * 1000 / TICKS, sys: Number(fields[12]) * 1000 / TICKS }
}

/** CPU time (user + system) a process has used so far, in ms, from /proc. */
export function cpuMs (pid: number): number {
  const c = cpuSplitMs(pid)
  return c.user + c.sys
}

export interface Proc {
  child: ChildProcess
  stop (): Promise<void>
}

/** Starts a process; stdout/stderr go to the parent's stderr only when SWY_BENCH_VERBOSE is set. */
export function start (cmd: string, args: string[], env: Record<string, string> = {}): Proc {
  const verbose = process.env.SWY_BENCH_VERBOSE !== undefined
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', verbose ? 'inherit' : 'ignore', verbose ? 'inherit' : 'pipe'] })
  let err = ''
  child.stderr?.on('data', d => { err += d; if (err.length > 10_000) err = err.slice(-10_000) })
  child.on('exit', (code, sig) => { if (code !== 0 && code !== null && sig === null) process.stderr.write(`[bench] ${cmd} ${args.join(' ')} exited ${code}\n${err}\n`) })
  return {
    child,
    stop: () => new Promise<void>(resolve => {
      if (child.exitCode !== null || child.signalCode !== null) { resolve(); return }
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
      setTimeout(() => child.kill('SIGKILL'), 3000).unref()
    })
  }
}

/** Resolves when something accepts TCP connections on the port. */
export async function waitForPort (port: number, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > end) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** A free TCP port on loopback (bound, then released). */
export async function freePort (): Promise<number> {
  const { createServer } = await import('node:net')
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as import('node:net').AddressInfo).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}
