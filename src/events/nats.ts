/**
 * One NATS connection for a process (gateway, mocker, registrar, status), with the options every
 * Switchyard process shares: reconnect forever with capped, jittered exponential backoff,
 * credentials from the URL (`nats://user:pass@host`, `nats://token@host`) or a .creds file, and TLS
 * (natsAuthFromFlags turns the `--nats-creds` / `--nats-tls-*` flags into those options).
 *
 * @example
 * const nats = await connectNats({ servers: 'nats://10.0.0.2:4222', name: 'switchyard-gateway' })
 * nats.nc.publish('switchyard.default.load.w0', bytes)
 * await nats.close()
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions, type Status } from '@nats-io/transport-node'
import { ConfigError } from '../shared/errors.js'

export interface NatsOptions {
  /** `nats://host:4222`, or several (comma-separated string or list): the client picks one, fails over to the next. */
  servers: string | readonly string[]
  /** Connection name shown by the server's monitoring (`connz`). */
  name?: string
  user?: string
  pass?: string
  token?: string
  /** A `.creds` file (JWT + NKey seed), as `nats` CLI and nsc produce. */
  credsFile?: string
  /** TLS options for the client library (`{ caFile, certFile, keyFile }` or `{}` for system CAs). */
  tls?: NodeConnectionOptions['tls']
  /** First reconnect delay; doubles per failed attempt up to `reconnectMaxWaitMs`. Default 250 ms. */
  reconnectWaitMs?: number
  /** Cap of the reconnect delay. Default 5 s. */
  reconnectMaxWaitMs?: number
  /** Deadline of the first connection. Default 5 s. */
  timeoutMs?: number
  /** Called for connection state changes (disconnect, reconnect, error...). */
  onStatus?: (status: Status) => void
}

/** An open connection; `close()` drains pending publishes and is idempotent. */
export interface NatsHandle {
  readonly nc: NatsConnection
  close (): Promise<void>
}

/** Longest wait for pending publishes at close. */
const DRAIN_TIMEOUT_MS = 2_000

/** Splits `--nats` values: `nats://a:4222,nats://b:4222`. */
export function natsServers (servers: string | readonly string[]): string[] {
  const list = typeof servers === 'string' ? servers.split(',') : [...servers]
  return list.map(s => s.trim()).filter(s => s !== '')
}

/** Credentials found in server URLs, and the URLs without them. */
export interface UrlCredentials {
  servers: string[]
  user?: string
  pass?: string
  token?: string
}

/**
 * Moves `user:pass@` (or `token@`, the NATS convention for a user part without a password) out of
 * the server URLs. The client library ignores userinfo in URLs (nats.js 3 connects without it and
 * the server answers "Authorization Violation"), and a URL left with it would show up in the
 * client's status events, which the gateway logs.
 */
export function credentialsFromUrls (servers: readonly string[]): UrlCredentials {
  const out: UrlCredentials = { servers: [] }
  let seen: string | null = null
  for (const s of servers) {
    const at = s.lastIndexOf('@')
    if (at < 0) { out.servers.push(s); continue }
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s)?.[0] ?? ''
    const userinfo = s.slice(scheme.length, at)
    out.servers.push(scheme + s.slice(at + 1))
    const colon = userinfo.indexOf(':')
    const decode = (x: string): string => {
      try { return decodeURIComponent(x) } catch { return x }
    }
    const user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon))
    const pass = colon < 0 ? undefined : decode(userinfo.slice(colon + 1))
    // One connection authenticates once: different credentials per server cannot all be used.
    const key = JSON.stringify([user, pass ?? null])
    if (seen !== null && seen !== key) throw new ConfigError('the NATS server URLs carry different credentials; give the same user:pass@ (or token@) on each, or on one only')
    seen = key
    if (pass === undefined) out.token = user
    else { out.user = user; out.pass = pass }
  }
  return out
}

/** Replaces the userinfo of every URL in a (comma-separated) server list by `***`, for messages. */
export function redactNatsUrl (servers: string): string {
  return servers.replace(/\/\/[^@/,]*@/g, '//***@')
}

/** The authentication and TLS inputs every NATS-using command takes (flag, setting or env value). */
export interface NatsAuthFlags {
  /** `--nats-creds FILE` */
  creds?: string | undefined
  /** `--nats-tls-ca FILE|system` */
  tlsCa?: string | undefined
  /** `--nats-tls-cert FILE` (client certificate, for servers that verify clients: mTLS) */
  tlsCert?: string | undefined
  /** `--nats-tls-key FILE` */
  tlsKey?: string | undefined
}

export type NatsAuthOptions = Pick<NatsOptions, 'credsFile' | 'tls'>

/** parseArgs options for the flags of NatsAuthFlags (mocker, register, status; serve gets them from its settings table). */
export const NATS_AUTH_FLAGS = {
  'nats-creds': { type: 'string' },
  'nats-tls-ca': { type: 'string' },
  'nats-tls-cert': { type: 'string' },
  'nats-tls-key': { type: 'string' }
} as const

/** Usage lines for NATS_AUTH_FLAGS, the flag column `width` wide (as the command's other lines). */
export function natsAuthUsage (width: number): string {
  const line = (flag: string, text: string): string => `  ${flag.padEnd(Math.max(width, flag.length + 2))}${text}`
  return [
    line('--nats-creds FILE', 'NATS .creds file, JWT + NKey seed (or SWITCHYARD_NATS_CREDS)'),
    line('--nats-tls-ca CA', 'NATS over TLS, verifying the server with CA file CA, or `system` for the system CAs (or SWITCHYARD_NATS_TLS_CA)'),
    line('--nats-tls-cert FILE', 'client certificate for NATS mTLS, with --nats-tls-key (or SWITCHYARD_NATS_TLS_CERT)'),
    line('--nats-tls-key FILE', 'its private key (or SWITCHYARD_NATS_TLS_KEY)')
  ].join('\n')
}

/** NATS_AUTH_FLAGS' values from parsed flags, each falling back to its SWITCHYARD_NATS_* variable. */
export function natsAuthFlagsFrom (values: Record<string, string | boolean | undefined>, env: Record<string, string | undefined>): NatsAuthFlags {
  const pick = (flag: keyof typeof NATS_AUTH_FLAGS): string | undefined => {
    const v = values[flag]
    if (typeof v === 'string') return v
    return env['SWITCHYARD_' + flag.toUpperCase().replaceAll('-', '_')]
  }
  return { creds: pick('nats-creds'), tlsCa: pick('nats-tls-ca'), tlsCert: pick('nats-tls-cert'), tlsKey: pick('nats-tls-key') }
}

/**
 * The `credsFile` / `tls` options for connectNats. Checks the files now, so a typo fails at start
 * naming the flag instead of as an opaque error from inside the client library (which reads the
 * files at each connect). Empty values mean unset. Throws ConfigError.
 *
 * @example
 * await connectNats({ servers, ...natsAuthFromFlags({ tlsCa: 'ca.pem' }) })
 */
export function natsAuthFromFlags (flags: NatsAuthFlags): NatsAuthOptions {
  const set = (v: string | undefined): string | null => v === undefined || v.trim() === '' ? null : v
  const creds = set(flags.creds)
  const ca = set(flags.tlsCa)
  const cert = set(flags.tlsCert)
  const key = set(flags.tlsKey)
  const out: NatsAuthOptions = {}
  if (creds !== null) {
    checkFile('--nats-creds', creds)
    if (!readFileSync(creds, 'utf8').includes('-----BEGIN NATS USER JWT-----')) {
      throw new ConfigError(`--nats-creds ${creds}: not a NATS .creds file (no "BEGIN NATS USER JWT" block; nsc and the nats CLI write them)`)
    }
    out.credsFile = creds
  }
  if ((cert === null) !== (key === null)) throw new ConfigError(`--nats-tls-cert and --nats-tls-key go together (mTLS client certificate and its key); only ${cert === null ? '--nats-tls-key' : '--nats-tls-cert'} is set`)
  if (ca !== null || cert !== null) {
    const tls: NonNullable<NodeConnectionOptions['tls']> = {}
    // `system`: Node's bundled CAs, which the TLS stack uses when no `ca` is given.
    if (ca !== null && ca !== 'system') { checkFile('--nats-tls-ca', ca); tls.caFile = ca }
    if (cert !== null && key !== null) {
      checkFile('--nats-tls-cert', cert)
      checkFile('--nats-tls-key', key)
      tls.certFile = cert
      tls.keyFile = key
    }
    out.tls = tls
  }
  return out
}

function checkFile (flag: string, file: string): void {
  let isFile: boolean
  try {
    isFile = statSync(file).isFile()
  } catch {
    throw new ConfigError(`${flag} ${file}: no such file`)
  }
  if (!isFile) throw new ConfigError(`${flag} ${file}: not a regular file`)
  try {
    accessSync(file, constants.R_OK)
  } catch {
    throw new ConfigError(`${flag} ${file}: not readable by this process`)
  }
}

/** Connects; throws when no server answers within `timeoutMs`. Later drops reconnect forever. */
export async function connectNats (opts: NatsOptions): Promise<NatsHandle> {
  const base = opts.reconnectWaitMs ?? 250
  const cap = opts.reconnectMaxWaitMs ?? 5_000
  let attempts = 0
  const fromUrls = credentialsFromUrls(natsServers(opts.servers))
  const copts: NodeConnectionOptions = {
    servers: fromUrls.servers,
    maxReconnectAttempts: -1,
    // Exponential backoff with full jitter; `attempts` is reset on every successful reconnect.
    reconnectDelayHandler: () => {
      const d = Math.min(cap, base * 2 ** Math.min(attempts++, 16))
      return Math.round(d / 2 + Math.random() * d / 2)
    },
    timeout: opts.timeoutMs ?? 5_000
  }
  if (opts.name !== undefined) copts.name = opts.name
  // Explicit options win over the URL's.
  const user = opts.user ?? fromUrls.user
  const pass = opts.pass ?? fromUrls.pass
  const token = opts.token ?? fromUrls.token
  if (user !== undefined) copts.user = user
  if (pass !== undefined) copts.pass = pass
  if (token !== undefined) copts.token = token
  if (opts.credsFile !== undefined) {
    const file = opts.credsFile
    copts.authenticator = credsAuthenticator(() => readFileSync(file))
  }
  if (opts.tls !== undefined) copts.tls = opts.tls
  const nc = await connect(copts)
  const onStatus = opts.onStatus
  let connected = true
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'reconnect') { attempts = 0; connected = true } else if (s.type === 'disconnect') connected = false
      onStatus?.(s)
    }
  })().catch(() => {})
  let closing: Promise<void> | null = null
  return {
    nc,
    close () {
      // Drain (flush pending publishes) only while connected, and not forever: a drain while the
      // server is away waits for a reconnect that may never come (a gateway shutting down during
      // a NATS outage would hang).
      closing ??= (async () => {
        if (nc.isClosed()) return
        if (connected) {
          let timer: NodeJS.Timeout | undefined
          const drained = await Promise.race([
            nc.drain().then(() => true, () => false),
            new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), DRAIN_TIMEOUT_MS) })
          ])
          clearTimeout(timer)
          if (drained) return
        }
        await nc.close().catch(() => {})
      })()
      return closing
    }
  }
}
