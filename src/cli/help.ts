import { envName, flagName, SERVE_SETTINGS, type SettingSpec } from '../config/settings.js'

function defaultText (spec: SettingSpec): string {
  if (spec.default === null) return 'unset'
  if (spec.kind === 'duration') return `${spec.default}ms`
  if (spec.kind === 'bytes') return spec.default % (1024 * 1024) === 0 ? `${spec.default / (1024 * 1024)}MiB` : `${spec.default}`
  return String(spec.default)
}

export function serveHelp (): string {
  const lines = [
    'Usage: switchyard serve [flags]',
    '',
    'Starts the OpenAI-compatible gateway in front of the configured workers.',
    '',
    '  -c, --config FILE        YAML config file (or SWITCHYARD_CONFIG)',
    '  -w, --worker [MODEL=]URL a worker; repeatable (or SWITCHYARD_WORKERS=url1,url2)',
    '  --tokenizer MODEL=DIR    a Hugging Face tokenizer directory for MODEL; repeatable (or SWITCHYARD_TOKENIZERS=m1=dir1,m2=dir2)',
    '  -h, --help               this text',
    ''
  ]
  for (const [key, spec] of Object.entries(SERVE_SETTINGS) as Array<[string, SettingSpec]>) {
    const values = spec.kind === 'enum' ? ` (${spec.values.join('|')})` : ''
    lines.push(`  --${flagName(key)}`.padEnd(30) + `${spec.doc}${values}; default ${defaultText(spec)}; env ${envName(key)}`)
  }
  return lines.join('\n')
}

export function mainHelp (): string {
  return [
    'Usage: switchyard <command> [flags]',
    '',
    'Commands:',
    '  serve     start the gateway (switchyard serve --help)',
    '  mocker    run simulated vLLM-like engines (switchyard mocker --help)',
    '  bench     load generator: workloads, traces, reports (switchyard bench --help)',
    '  status    the fleet registered on NATS (switchyard status --nats URL)',
    '  register  keep an engine we do not run (vLLM, SGLang) registered on NATS while it answers',
    '',
    'Run `switchyard <command> --help` for the flags of a command.'
  ].join('\n')
}
