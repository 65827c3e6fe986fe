import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { ERROR_CODES } from '../../src/shared/errors.js'
import { settingsMarkdown } from '../../src/config/doc.js'
import { SERVE_SETTINGS, flagName } from '../../src/config/settings.js'

const root = new URL('../../../', import.meta.url)
const read = (p: string): string => readFileSync(new URL(p, root), 'utf8')

test('every error code is documented in docs/errors.md, and the docs list no dead code', () => {
  const doc = read('docs/errors.md')
  const documented = new Set([...doc.matchAll(/`(SWY_ERR_[A-Z_]+)`/g)].map(m => m[1]))
  for (const code of Object.keys(ERROR_CODES)) assert.ok(documented.has(code), `${code} is not in docs/errors.md`)
  for (const code of documented) assert.ok(code! in ERROR_CODES, `docs/errors.md lists ${code}, which the code no longer has`)
})

test('every error code raised in src/ is declared in ERROR_CODES', () => {
  const out = execFileSync('grep', ['-rhoE', "'SWY_ERR_[A-Z_]+'", new URL('src', root).pathname]).toString()
  for (const m of out.matchAll(/SWY_ERR_[A-Z_]+/g)) assert.ok(m[0] in ERROR_CODES, `${m[0]} is raised but not declared`)
})

test('the configuration reference in docs/configuration.md is current, and the README names every flag', () => {
  assert.ok(read('docs/configuration.md').includes(settingsMarkdown()), 'docs/configuration.md is stale: regenerate with node dist/src/config/doc.js')
  const readme = read('README.md')
  for (const key of Object.keys(SERVE_SETTINGS)) assert.ok(readme.includes(`--${flagName(key)}`), `README does not mention --${flagName(key)}`)
})
