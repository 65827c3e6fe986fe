/**
 * User-space instruction counts from Linux `perf stat`, for benchmarks on a shared machine: CPU
 * time per request moves 20-50% between runs there, while the instructions a process executes
 * for the same work move a few percent (mostly with how many requests one event-loop turn
 * batches). Optional: without perf, or where the kernel hides hardware counters (some VMs,
 * perf_event_paranoid), callers leave the column out.
 */
import { spawn, spawnSync } from 'node:child_process'

/** Whether `perf stat -e instructions:u` counts here (perf installed, hardware counters visible). */
export function perfCounts (): boolean {
  const r = spawnSync('perf', ['stat', '-x', ',', '-e', 'instructions:u', '--', 'true'], { encoding: 'utf8' })
  if (r.error !== undefined || r.status !== 0) return false
  const n = Number(r.stderr.split('\n').find(l => l.includes('instructions'))?.split(',')[0])
  return Number.isFinite(n) && n > 0
}

/** User-space instructions `pids` execute over the next `seconds` (NaN if perf fails). */
export function userInstructions (pids: number[], seconds: number): Promise<number> {
  return new Promise(resolve => {
    const p = spawn('perf', ['stat', '-x', ',', '-e', 'instructions:u', '-p', pids.join(','), '--', 'sleep', String(Math.max(0.1, seconds))], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    p.stderr.on('data', (d: Buffer) => { err += d.toString() })
    p.on('error', () => { resolve(NaN) })
    p.on('close', () => {
      const n = Number(err.split('\n').find(l => l.includes('instructions'))?.split(',')[0])
      resolve(Number.isFinite(n) ? n : NaN)
    })
  })
}
