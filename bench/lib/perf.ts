/**
 * User-space instruction counts from Linux `perf stat`, for benchmarks on a shared machine: CPU
 * time per request moves 20-50% between runs there, while the instructions a process executes
 * for the same work move a few percent (mostly with how many requests one event-loop turn
 * batches). Optional: without perf, or where the kernel hides hardware counters (some VMs,
 * perf_event_paranoid), callers leave the column out.
 */
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { median } from './table.js'

/** Whether `perf stat -e instructions:u` counts here (perf installed, hardware counters visible). */
export function perfCounts (): boolean {
  const r = spawnSync('perf', ['stat', '-x', ',', '-e', 'instructions:u', '--', 'true'], { encoding: 'utf8' })
  if (r.error !== undefined || r.status !== 0) return false
  return instructionsIn(r.stderr) > 0
}

/** User-space instructions `pids` execute over the next `seconds` (NaN if perf fails). */
export function userInstructions (pids: number[], seconds: number): Promise<number> {
  return new Promise(resolve => {
    const p = spawn('perf', ['stat', '-x', ',', '-e', 'instructions:u', '-p', pids.join(','), '--', 'sleep', String(Math.max(0.1, seconds))], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    p.stderr.on('data', (d: Buffer) => { err += d.toString() })
    p.on('error', () => { resolve(NaN) })
    p.on('close', () => {
      resolve(instructionsIn(err))
    })
  })
}

/** The instructions count in `perf stat -x ,` output (NaN when there is none, e.g. <not counted>). */
function instructionsIn (stderr: string): number {
  const n = Number(stderr.split('\n').find(l => l.includes('instructions'))?.split(',')[0])
  return Number.isFinite(n) ? n : NaN
}

/** dist/bench/run.js, the bench entry a child process runs a loop through. */
const RUN_JS = fileURLToPath(new URL('../run.js', import.meta.url))

/** User-space instructions `node dist/bench/run.js <args>` executes (NaN if perf fails). */
function countRun (args: string[]): number {
  const r = spawnSync('perf', ['stat', '-x', ',', '-e', 'instructions:u', '--', process.execPath, RUN_JS, ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] })
  if (r.error !== undefined || r.status !== 0) return NaN
  return instructionsIn(r.stderr)
}

/**
 * User-space instructions per call of the loop `key` a scenario runs in a child process
 * (`<scenario> --loop KEY --calls N [--src DIR]`, see runLoop; `src`: a baseline's compiled src/
 * to take the code from): perf stat of 2N calls minus that of N, so node's start-up, the module
 * loads and the JIT's warm-up (which both runs pay) drop out; the median of three such pairs, as
 * the JIT does not compile the same code every run (a few percent apart for a parse of a 1 KiB
 * body). For per-parse figures a time per call cannot give on a shared machine. NaN without perf.
 */
export function instructionsPerCall (scenario: string, key: string, src: string | undefined, calls: number): number {
  const args = [scenario, '--loop', key, ...(src === undefined ? [] : ['--src', src])]
  const per: number[] = []
  for (let k = 0; k < 3; k++) per.push((countRun([...args, '--calls', String(2 * calls)]) - countRun([...args, '--calls', String(calls)])) / calls)
  return median(per)
}

/** The child's side of instructionsPerCall: `fn` `calls` times, nothing printed (its results summed, so no call is dropped). */
export function runLoop (fn: () => number, calls: number): void {
  let sink = 0
  for (let n = calls; n > 0; n--) sink += fn()
  if (sink === -1) console.log('')
}
