import { envName, flagName, type SettingSpec, type SettingValues } from './settings.js'
import { parseBoolean, parseBytes, parseDuration, parseEnum, parseInteger, parseNumber, parseString } from './values.js'

/** Where a value came from, so a message can say `--port`, `SWITCHYARD_PORT` or `port in config.yaml`. */
export interface Sources {
  flags: Record<string, unknown>
  env: Record<string, string | undefined>
  file: Record<string, unknown>
  fileName: string | null
}

function parseValue (spec: SettingSpec, raw: unknown): unknown {
  switch (spec.kind) {
    case 'string': return parseString(raw)
    case 'secret': return parseString(raw)
    case 'int': return parseInteger(raw, spec.min, spec.max)
    case 'number': return parseNumber(raw, spec.min, spec.max)
    case 'duration': return parseDuration(raw, spec.min, spec.max)
    case 'bytes': return parseBytes(raw, spec.min, spec.max)
    case 'bool': return parseBoolean(raw)
    case 'enum': return parseEnum(raw, spec.values)
  }
}

/**
 * Resolves every setting of `specs` with precedence flag > environment > file > default.
 * Problems are pushed to `errors` (all of them, not only the first) and the default is used.
 */
export function resolveSettings<T extends Record<string, SettingSpec>> (specs: T, src: Sources, errors: string[]): SettingValues<T> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(specs)) {
    const spec = specs[key]!
    const flag = flagName(key)
    const env = envName(key)
    let raw: unknown
    let where: string
    if (src.flags[flag] !== undefined) { raw = src.flags[flag]; where = `--${flag}` } else if (src.env[env] !== undefined && src.env[env] !== '') { raw = src.env[env]; where = env } else if (src.file[key] !== undefined && src.file[key] !== null) { raw = src.file[key]; where = `'${key}' in ${src.fileName ?? 'the config file'}` } else {
      out[key] = spec.default
      continue
    }
    try {
      out[key] = parseValue(spec, raw)
    } catch (err) {
      errors.push(`${where} ${(err as Error).message} (got ${JSON.stringify(raw)})`)
      out[key] = spec.default
    }
  }
  return out as SettingValues<T>
}
