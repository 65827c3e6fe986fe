/**
 * One NATS connection for a process (gateway, mocker, registrar, status), with the options every
 * Switchyard process shares: reconnect forever with capped, jittered exponential backoff, and the
 * credentials / TLS options passed through to the client library untouched.
 *
 * @example
 * const nats = await connectNats({ servers: 'nats://10.0.0.2:4222', name: 'switchyard-gateway' })
 * nats.nc.publish('switchyard.default.load.w0', bytes)
 * await nats.close()
 */
import { readFileSync } from 'node:fs'
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions, type Status } from '@nats-io/transport-node'

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

/** Connects; throws when no server answers within `timeoutMs`. Later drops reconnect forever. */
export async function connectNats (opts: NatsOptions): Promise<NatsHandle> {
  const base = opts.reconnectWaitMs ?? 250
  const cap = opts.reconnectMaxWaitMs ?? 5_000
  let attempts = 0
  const copts: NodeConnectionOptions = {
    servers: natsServers(opts.servers),
    maxReconnectAttempts: -1,
    // Exponential backoff with full jitter; `attempts` is reset on every successful reconnect.
    reconnectDelayHandler: () => {
      const d = Math.min(cap, base * 2 ** Math.min(attempts++, 16))
      return Math.round(d / 2 + Math.random() * d / 2)
    },
    timeout: opts.timeoutMs ?? 5_000
  }
  if (opts.name !== undefined) copts.name = opts.name
  if (opts.user !== undefined) copts.user = opts.user
  if (opts.pass !== undefined) copts.pass = opts.pass
  if (opts.token !== undefined) copts.token = opts.token
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
