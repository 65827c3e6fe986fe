import { readFileSync, writeFileSync, existsSync } from 'node:fs'

const FILE = new URL('../../../docs/BENCHMARKS.md', import.meta.url)

/**
 * Replaces (or appends) the section of docs/BENCHMARKS.md that belongs to one scenario, between
 * `<!-- bench:NAME -->` markers, so each run leaves the latest figures with their command and machine.
 */
export function recordFigures (name: string, body: string): void {
  const begin = `<!-- bench:${name} -->`
  const end = `<!-- /bench:${name} -->`
  const section = `${begin}\n${body.trim()}\n${end}`
  let text = existsSync(FILE) ? readFileSync(FILE, 'utf8') : '# Benchmarks\n\nEach section is written by its scenario (`npm run bench -- <name>`); rerun it to refresh.\n'
  const i = text.indexOf(begin)
  const j = text.indexOf(end)
  if (i >= 0 && j > i) text = text.slice(0, i) + section + text.slice(j + end.length)
  else text = text.trimEnd() + '\n\n' + section + '\n'
  writeFileSync(FILE, text)
  console.error(`[bench] figures written to docs/BENCHMARKS.md (section ${name})`)
}
