/** Parsers for the value kinds settings use; each returns the value or throws a message naming what was expected. */

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i
const BYTES = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?$/i
const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 }
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

export function parseInteger (raw: unknown, min: number, max: number): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`must be an integer from ${min} to ${max}`)
  return n
}

export function parseNumber (raw: unknown, min: number, max: number): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`must be a number from ${min} to ${max}`)
  return n
}

/** Milliseconds from a number (ms) or a string such as `250ms`, `5s`, `2m`. */
export function parseDuration (raw: unknown, min: number, max: number): number {
  let ms: number
  if (typeof raw === 'number') ms = raw
  else if (typeof raw === 'string' && DURATION.test(raw.trim())) {
    const m = DURATION.exec(raw.trim())!
    ms = Number(m[1]) * DURATION_UNITS[(m[2] ?? 'ms').toLowerCase()]!
  } else throw new Error('must be a duration such as 500ms, 5s or 2m (a bare number is milliseconds)')
  if (!Number.isFinite(ms) || ms < min || ms > max) throw new Error(`must be a duration from ${min} ms to ${max} ms`)
  return Math.round(ms)
}

/** Bytes from a number or a string such as `32MiB`, `512kb`. */
export function parseBytes (raw: unknown, min: number, max: number): number {
  let n: number
  if (typeof raw === 'number') n = raw
  else if (typeof raw === 'string' && BYTES.test(raw.trim())) {
    const m = BYTES.exec(raw.trim())!
    n = Number(m[1]) * BYTE_UNITS[(m[2] ?? 'b').toLowerCase()]!
  } else throw new Error('must be a size such as 32MiB, 512kb or a number of bytes')
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`must be a size from ${min} to ${max} bytes`)
  return Math.floor(n)
}

export function parseBoolean (raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw
  if (typeof raw === 'string') {
    const s = raw.trim().toLowerCase()
    if (s === 'true' || s === '1' || s === 'yes' || s === 'on') return true
    if (s === 'false' || s === '0' || s === 'no' || s === 'off') return false
  }
  throw new Error('must be true or false')
}

export function parseEnum<T extends string> (raw: unknown, values: readonly T[]): T {
  if (typeof raw === 'string' && (values as readonly string[]).includes(raw)) return raw as T
  throw new Error(`must be one of ${values.join(', ')}`)
}

export function parseString (raw: unknown): string {
  if (typeof raw === 'string' && raw.length > 0) return raw
  if (typeof raw === 'number') return String(raw)
  throw new Error('must be a non-empty string')
}
