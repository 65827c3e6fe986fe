/**
 * The `proxy` benchmark (bench/proxy.ts) end to end, at the smallest size that still goes through
 * every path a recorded run takes: two rounds (so each proxy is stopped, started afresh, checked
 * and warmed again), a warm-up per cell, the measured window, the upstreams' counts and the
 * summary. It asserts the run measured something, not what it measured: figures are for
 * docs/BENCHMARKS.md, not for a test. Needs wrk (CI installs Debian's package).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { hasCommand } from '../../bench/lib/wrk.js'

const RUN_JS = fileURLToPath(new URL('../../bench/run.js', import.meta.url))
const hasWrk = hasCommand('wrk', ['-v'])

interface Cell {
  round: number
  target: string
  mode: string
  conc: number
  requests: number
  non2xx: number
  socketErrors: number
  cpuMsPerReq: number | null
}

function runBench (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN_JS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('error', reject)
    child.on('close', code => { resolve({ code, stdout, stderr }) })
  })
}

test('proxy bench: every proxy is restarted, re-checked and measured each round, with CPU per request from its window', { skip: hasWrk ? false : 'wrk is not installed (Debian: apt-get install wrk)', timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'swy-test-bench-proxy-'))
  try {
    const out = join(dir, 'cells.json')
    const r = await runBench(['proxy', '--modes', 'json', '--concurrency', '8', '--rounds', '2', '--duration', '1', '--warmup', '1',
      '--targets', 'direct,bare,gateway', '--no-record', '--no-install', '--json', out])
    assert.equal(r.code, 0, `the bench failed:\n${r.stderr.slice(-2000)}`)
    const { cells } = JSON.parse(readFileSync(out, 'utf8')) as { cells: Cell[] }
    for (const target of ['direct', 'bare', 'gateway']) {
      for (const round of [0, 1]) {
        const c = cells.find(x => x.target === target && x.round === round)
        assert.ok(c !== undefined, `no cell for ${target} in round ${round + 1}`)
        assert.ok(c.requests > 0, `${target} round ${round + 1}: wrk completed no request`)
        assert.equal(c.non2xx + c.socketErrors, 0, `${target} round ${round + 1}: errors`)
        if (target === 'direct') assert.equal(c.cpuMsPerReq, null, 'direct has no proxy process to measure')
        else assert.ok(c.cpuMsPerReq !== null && c.cpuMsPerReq > 0 && c.cpuMsPerReq < 10, `${target} round ${round + 1}: CPU per request ${c.cpuMsPerReq}`)
      }
    }
    assert.match(r.stderr, /round 2 bare: warming up/, 'the second round warms the restarted proxy')
    assert.match(r.stdout, /goal \(json\): gateway CPU\/req <= 2x nginx and <= 1\.2x the bare Node proxy/)
    assert.match(r.stdout, /\| switchyard +\| +8 \|/, 'the goal table has the gateway row')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
