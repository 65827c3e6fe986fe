// Runs every compiled test file under dist/test with node's test runner.
// Node 20's `node --test` takes no globs, so the files are listed here.
// Extra arguments filter by path substring: `npm test -- registry frontend`.
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
const args = ['--test', '--test-concurrency=2', '--test-timeout=120000', ...files]
const r = spawnSync(process.execPath, args, { stdio: 'inherit' })
process.exit(r.status ?? 1)
