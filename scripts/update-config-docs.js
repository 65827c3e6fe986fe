// Regenerates the settings table in README.md and docs/configuration.md from src/config/settings.ts
// (run after `npm run build`; test/shared/docs.test.ts fails while they are stale).
import { readFileSync, writeFileSync } from 'node:fs'
import { settingsMarkdown } from '../dist/src/config/doc.js'

const table = settingsMarkdown()
for (const file of ['README.md', 'docs/configuration.md']) {
  const text = readFileSync(file, 'utf8')
  const next = text.replace(/\| YAML key \| flag[\s\S]*?(?=\n\n)/, table)
  if (next !== text) { writeFileSync(file, next); console.log(`updated ${file}`) }
}
