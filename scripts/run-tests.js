// Runs every compiled test file under dist/test with node's test runner.
// Node 20's `node --test` takes no globs, so the files are listed here.
// Extra arguments filter by path substring: `npm test -- registry frontend`.
// Two passes: the suite two files at a time, then test/bench-scenarios one file at a time (below).
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

function walk (dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p, out)
    else if (name.endsWith('.test.js')) out.push(p)
  }
  return out
}

const filters = process.argv.slice(2)
const dist = process.env.TEST_DIST ?? 'dist'
const files = walk(join(dist, 'test'), []).sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}
// Benchmark scenarios run at their smallest size still load both cores for seconds (wrk, the
// proxies, the upstreams): run beside the timing tests, they made those miss their bounds. They
// run afterwards, alone.
const alone = (f) => f.includes('bench-scenarios')
let status = 0
for (const [group, concurrency] of [[files.filter((f) => !alone(f)), 2], [files.filter(alone), 1]]) {
  if (group.length === 0) continue
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=120000', ...group], { stdio: 'inherit' })
  if (r.status !== 0) status = r.status ?? 1
}
process.exit(status)
