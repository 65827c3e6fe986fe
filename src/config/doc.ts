import { envName, flagName, SERVE_SETTINGS, type SettingSpec } from './settings.js'

function shown (spec: SettingSpec): string {
  if (spec.default === null) return 'unset'
  if (spec.kind === 'duration') return spec.default % 1000 === 0 ? `${spec.default / 1000}s` : `${spec.default}ms`
  if (spec.kind === 'bytes') return spec.default % (1024 * 1024) === 0 ? `${spec.default / (1024 * 1024)}MiB` : `${spec.default}`
  return `${spec.default}`
}

/** The settings reference as a Markdown table (README and docs/configuration.md carry it). */
export function settingsMarkdown (): string {
  const rows = (Object.entries(SERVE_SETTINGS) as Array<[string, SettingSpec]>).map(([key, spec]) => {
    const values = spec.kind === 'enum' ? ` One of ${spec.values.map(v => `\`${v}\``).join(', ')}.` : ''
    return `| \`${key}\` | \`--${flagName(key)}\` | \`${envName(key)}\` | ${shown(spec)} | ${spec.doc}.${values} |`
  })
  return ['| YAML key | flag | environment | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n')
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\/dist\//, '/dist/'))) console.log(settingsMarkdown())
