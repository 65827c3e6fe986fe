/**
 * A past version of the gateway, built from a git ref, for a benchmark's side-by-side "before":
 * `npm run bench -- proxy --baseline <ref>` runs that build next to the current one in the same
 * run (the machine drifts between runs; a change is only seen against its baseline in one run).
 *
 * The ref's files come from `git archive` into a scratch directory and are compiled there with
 * the ref's own tsconfig, against this checkout's node_modules (a ref whose dependencies differ
 * from the checkout's may not build; the error says so).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

/** Builds `ref` under `dir`; returns the path of its CLI entry (dist/src/cli/main.js) and the commit it resolved to. */
export function buildBaseline (ref: string, dir: string): { cli: string, commit: string } {
  const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim()
  const rev = spawnSync('git', ['-C', root, 'rev-parse', '--verify', '--quiet', '--short', `${ref}^{commit}`], { encoding: 'utf8' })
  if (rev.status !== 0) throw new Error(`--baseline ${ref}: not a commit of this repository (a branch, tag, hash or HEAD~N)`)
  const commit = rev.stdout.trim()
  const out = join(dir, `baseline-${commit}`)
  mkdirSync(out, { recursive: true })
  const archive = spawnSync('git', ['-C', root, 'archive', '--format=tar', commit], { maxBuffer: 1 << 30 })
  if (archive.status !== 0) throw new Error(`git archive ${ref} failed: ${archive.stderr.toString()}`)
  const untar = spawnSync('tar', ['-x', '-C', out], { input: archive.stdout })
  if (untar.status !== 0) throw new Error(`unpacking ${ref} failed: ${untar.stderr.toString()}`)
  // A directory built before (the same ref again) already has the link.
  if (!existsSync(join(out, 'node_modules'))) symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'))
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: out, encoding: 'utf8' })
  const cli = join(out, 'dist', 'src', 'cli', 'main.js')
  if (tsc.status !== 0 || !existsSync(cli)) throw new Error(`building ${ref} (${commit}) failed:\n${tsc.stdout}${tsc.stderr}`)
  return { cli, commit }
}

/**
 * Builds `ref` in a fresh scratch directory for a scenario that imports its modules (not its CLI):
 * the compiled src/ directory (dist/src) and the commit.
 */
export function baselineSource (ref: string, scenario: string): { src: string, commit: string } {
  const { cli, commit } = buildBaseline(ref, mkdtempSync(join(tmpdir(), `swy-${scenario}-baseline-`)))
  return { src: join(dirname(cli), '..'), commit }
}
