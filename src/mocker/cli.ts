/**
 * `switchyard mocker`: flag parsing and start-up of a fleet of mock engines in this process.
 * The caller (src/cli) prints BadFlagError messages and exits with code 2.
 */
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { loadTokenizer } from '../tokenize/index.js'
import type { Tokenizer } from '../tokenize/index.js'
import { registerFleet, type FleetNats } from '../discovery/index.js'
import { NATS_AUTH_FLAGS, natsAuthFlagsFrom, natsAuthFromFlags, natsAuthUsage, type NatsAuthOptions } from '../events/nats.js'
import { BadFlagError } from './errors.js'
import { startMockFleet } from './fleet.js'
import type { MockFleet, MockFleetOptions } from './fleet.js'

export const MOCKER_USAGE = `Usage: switchyard mocker [flags]

Starts N simulated vLLM-like engines in one process. Engine i serves the OpenAI API on
port P+i, publishes KV events on E+i and answers replay on R+i.

  --port P                    first HTTP port (default 8000; 0 = free ports)
  --host H                    interface for HTTP and ZMQ (default 127.0.0.1)
  --model NAME                served model name (default mock-llm)
  --num-workers N             engines to start (default 1)
  --speedup-ratio X           divide modeled pass time by X; 0 = as fast as possible (default 1)
  --block-size B              tokens per KV block (default 64)
  --num-gpu-blocks K          KV blocks per engine (default 16384)
  --max-num-seqs S            sequences per pass (default 256)
  --max-waiting W             refuse requests with 429 while W are waiting (default: unlimited)
  --max-num-batched-tokens T  token budget per pass (default 8192)
  --native-port N             also serve the native transport (swy://) from port N (default: off; 0 = free ports)
  --kv-events-port E          publish KV events over ZMQ from port E (default: no ZMQ)
  --kv-replay-port R          replay ROUTER ports from R (default E+N)
  --load-port L               forward-pass metrics PUB ports from L (default E+2N)
  --kv-topic T                KV events topic frame (default "")
  --legacy-events             vLLM's legacy tagged-array events instead of maps
  --seed S                    output seed (default 0)
  --tokenizer DIR             Hugging Face tokenizer directory (default: built-in tokenizer)
  --nats URL                  register every engine in the NATS discovery bucket and publish its
                              KV events and load on the event plane (docs/distributed.md);
                              user:pass@ or token@ in the URL authenticate
${natsAuthUsage(28)}
  --nats-namespace NS         event plane namespace (default "default")
  --nats-ttl MS               record TTL: gone this long after the last refresh (default 15000;
                              capped by an existing bucket's max age)
`

const FLAGS = {
  port: { type: 'string' },
  host: { type: 'string' },
  model: { type: 'string' },
  'num-workers': { type: 'string' },
  'speedup-ratio': { type: 'string' },
  'block-size': { type: 'string' },
  'num-gpu-blocks': { type: 'string' },
  'max-num-seqs': { type: 'string' },
  'max-waiting': { type: 'string' },
  'max-num-batched-tokens': { type: 'string' },
  'native-port': { type: 'string' },
  'kv-events-port': { type: 'string' },
  'kv-replay-port': { type: 'string' },
  'load-port': { type: 'string' },
  'kv-topic': { type: 'string' },
  'legacy-events': { type: 'boolean' },
  seed: { type: 'string' },
  tokenizer: { type: 'string' },
  nats: { type: 'string' },
  'nats-namespace': { type: 'string' },
  'nats-ttl': { type: 'string' },
  ...NATS_AUTH_FLAGS,
  help: { type: 'boolean', short: 'h' }
} as const

export interface RunMockerIo {
  /** Where start-up lines go; default console.log. */
  log?: (line: string) => void
}

export interface RunningMocker {
  /** Empty when only --help was asked. */
  readonly fleet: MockFleet | null
  close (): Promise<void>
}

/**
 * Parses `argv` (the flags after `mocker`), starts the engines and returns a handle to stop them.
 *
 * @example
 * const m = await runMocker(['--num-workers', '2', '--port', '0'])
 * await m.close()
 */
export async function runMocker (argv: string[], io: RunMockerIo = {}): Promise<RunningMocker> {
  const log = io.log ?? ((line: string) => console.log(line))
  const opts = parseMockerFlags(argv)
  if (opts === null) {
    log(MOCKER_USAGE)
    return { fleet: null, async close () {} }
  }
  const t0 = performance.now()
  const n = opts.numWorkers ?? 1
  log(`mocker: starting ${n} engine${n === 1 ? '' : 's'} (model ${opts.model ?? 'mock-llm'}, speedup ${opts.speedupRatio ?? 1}, ` +
    `${opts.numGpuBlocks ?? 16384} blocks of ${opts.blockSize ?? 64} tokens${opts.tokenizerDir === undefined ? '' : `, tokenizer ${opts.tokenizerDir}`})`)
  const { tokenizerDir, nats, natsNamespace, natsTtlMs, natsAuth, ...fleetOpts } = opts
  if (tokenizerDir !== undefined) {
    let tokenizer: Tokenizer
    try {
      tokenizer = await loadTokenizer(tokenizerDir)
    } catch (err) {
      throw new BadFlagError(`--tokenizer ${tokenizerDir}: ${(err as Error).message}`, err)
    }
    fleetOpts.tokenizer = tokenizer
  }
  let fleet: MockFleet
  try {
    fleet = await startMockFleet({ ...fleetOpts, log: (line) => log(`mocker: ${line}`) })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new BadFlagError(`cannot listen: ${(err as Error).message} (check --port, --native-port, --kv-events-port, --kv-replay-port, --load-port, --host)`, err)
    }
    throw err
  }
  let reg: FleetNats | null = null
  if (nats !== undefined) {
    try {
      reg = await registerFleet(fleet.workers, {
        servers: nats,
        ...natsAuth,
        ...(natsNamespace === undefined ? {} : { namespace: natsNamespace }),
        ...(natsTtlMs === undefined ? {} : { ttlMs: natsTtlMs }),
        nativeOf: (i) => fleet.workers[i]?.nativeUrl ?? null,
        onWarn: (msg) => log(`mocker: nats: ${msg}`)
      })
    } catch (err) {
      await fleet.close()
      throw err
    }
    const ttl = reg.registrations[0]?.ttlMs
    log(`mocker: registered ${n} engine${n === 1 ? '' : 's'} on NATS (namespace ${natsNamespace ?? 'default'}${ttl === undefined ? '' : `, record TTL ${ttl} ms`})`)
  }
  log(`mocker: ready, ${n} engine${n === 1 ? '' : 's'} in ${Math.round(performance.now() - t0)} ms`)
  // Records first (gateways stop routing here), then the engines.
  return { fleet, close: async () => { await reg?.close(); await fleet.close() } }
}

export type MockerFlagOptions = Omit<MockFleetOptions, 'log'> & { tokenizerDir?: string, nats?: string, natsNamespace?: string, natsTtlMs?: number, natsAuth?: NatsAuthOptions }

/**
 * Flags to fleet options; null for --help. Throws BadFlagError naming the flag. `env` supplies
 * SWITCHYARD_NATS_CREDS / SWITCHYARD_NATS_TLS_* when the matching flag is absent (with --nats only).
 */
export function parseMockerFlags (argv: string[], env: Record<string, string | undefined> = process.env): MockerFlagOptions | null {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new BadFlagError(`${(err as Error).message}\n\n${MOCKER_USAGE}`, err)
  }
  if (values.help === true) return null
  const out: MockerFlagOptions = {}
  const numWorkers = intFlag(values, 'num-workers', 1, 1024)
  const n = numWorkers ?? 1
  if (numWorkers !== undefined) out.numWorkers = numWorkers
  const port = portFlag(values, 'port', n)
  if (port !== undefined) out.port = port
  const str = (key: string): string | undefined => {
    const v = values[key]
    if (v === undefined) return undefined
    if (typeof v !== 'string' || v.length === 0) throw new BadFlagError(`--${key} needs a non-empty value`)
    return v
  }
  const host = str('host')
  if (host !== undefined) out.host = host
  const model = str('model')
  if (model !== undefined) out.model = model
  const speedup = values['speedup-ratio']
  if (speedup !== undefined) {
    const x = Number(speedup)
    if (typeof speedup !== 'string' || speedup.trim() === '' || !Number.isFinite(x) || x < 0) {
      throw new BadFlagError(`--speedup-ratio must be a number ≥ 0 (0 = as fast as possible), got ${JSON.stringify(speedup)}`)
    }
    out.speedupRatio = x
  }
  const blockSize = intFlag(values, 'block-size', 1, 65536)
  if (blockSize !== undefined) out.blockSize = blockSize
  const numGpuBlocks = intFlag(values, 'num-gpu-blocks', 1, 1 << 26)
  if (numGpuBlocks !== undefined) out.numGpuBlocks = numGpuBlocks
  const maxNumSeqs = intFlag(values, 'max-num-seqs', 1, 1 << 20)
  if (maxNumSeqs !== undefined) out.maxNumSeqs = maxNumSeqs
  const maxWaiting = intFlag(values, 'max-waiting', 0, 1 << 30)
  if (maxWaiting !== undefined) out.maxWaiting = maxWaiting
  const maxBatched = intFlag(values, 'max-num-batched-tokens', 1, 1 << 30)
  if (maxBatched !== undefined) out.maxNumBatchedTokens = maxBatched
  const nativePort = portFlag(values, 'native-port', n)
  if (nativePort !== undefined) out.nativePort = nativePort
  const kvPort = portFlag(values, 'kv-events-port', n)
  if (kvPort !== undefined) out.kvEventsPort = kvPort
  const replayPort = portFlag(values, 'kv-replay-port', n)
  const loadPort = portFlag(values, 'load-port', n)
  if ((replayPort !== undefined || loadPort !== undefined || values['kv-topic'] !== undefined) && kvPort === undefined) {
    throw new BadFlagError('--kv-replay-port, --load-port and --kv-topic need --kv-events-port')
  }
  if (replayPort !== undefined) out.kvReplayPort = replayPort
  if (loadPort !== undefined) out.loadPort = loadPort
  if (kvPort !== undefined) {
    if (kvPort + 3 * n - 1 > 65535 && (replayPort === undefined || loadPort === undefined)) {
      throw new BadFlagError(`--kv-events-port ${kvPort} leaves no room for the default replay and load ports (E+N, E+2N); give --kv-replay-port and --load-port`)
    }
    const topic = values['kv-topic']
    if (typeof topic === 'string') out.kvTopic = topic
  }
  if (values['legacy-events'] === true) {
    if (kvPort === undefined) throw new BadFlagError('--legacy-events needs --kv-events-port')
    out.legacyEvents = true
  }
  const seed = intFlag(values, 'seed', 0, 0xffffffff)
  if (seed !== undefined) out.seed = seed
  const tokenizer = str('tokenizer')
  if (tokenizer !== undefined) out.tokenizerDir = tokenizer
  const nats = str('nats')
  if (nats !== undefined) out.nats = nats
  const ns = str('nats-namespace')
  if (ns !== undefined) {
    if (nats === undefined) throw new BadFlagError('--nats-namespace needs --nats')
    if (/[.*> \t\r\n]/.test(ns)) throw new BadFlagError(`--nats-namespace must be one subject token (no '.', '*', '>' or spaces), got ${JSON.stringify(ns)}`)
    out.natsNamespace = ns
  }
  const natsTtl = intFlag(values, 'nats-ttl', 100, 24 * 3600_000)
  if (natsTtl !== undefined) {
    if (nats === undefined) throw new BadFlagError('--nats-ttl needs --nats')
    out.natsTtlMs = natsTtl
  }
  const authFlag = Object.keys(NATS_AUTH_FLAGS).find(k => values[k] !== undefined)
  if (nats === undefined) {
    if (authFlag !== undefined) throw new BadFlagError(`--${authFlag} needs --nats`)
  } else {
    try {
      const auth = natsAuthFromFlags(natsAuthFlagsFrom(values, env))
      if (auth.credsFile !== undefined || auth.tls !== undefined) out.natsAuth = auth
    } catch (err) {
      throw new BadFlagError((err as Error).message, err)
    }
  }
  checkPortOverlap(out, n)
  return out
}

function intFlag (values: Record<string, string | boolean | undefined>, key: string, min: number, max: number): number | undefined {
  const v = values[key]
  if (v === undefined) return undefined
  const x = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN
  if (!Number.isSafeInteger(x) || x < min || x > max) {
    throw new BadFlagError(`--${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`)
  }
  return x
}

function portFlag (values: Record<string, string | boolean | undefined>, key: string, n: number): number | undefined {
  const p = intFlag(values, key, 0, 65535)
  if (p !== undefined && p !== 0 && p + n - 1 > 65535) {
    throw new BadFlagError(`--${key} ${p} with ${n} workers needs ports up to ${p + n - 1}, beyond 65535`)
  }
  return p
}

// Ranges of N ports each must not overlap (e.g. --port 5557 with --kv-events-port 5557).
function checkPortOverlap (o: MockerFlagOptions, n: number): void {
  const ranges: Array<[string, number]> = []
  const http = o.port ?? 8000
  if (http !== 0) ranges.push(['--port', http])
  const native = o.nativePort
  if (native !== undefined && native !== null && native !== 0) ranges.push(['--native-port', native])
  const kv = o.kvEventsPort
  if (kv !== undefined && kv !== null && kv !== 0) {
    ranges.push(['--kv-events-port', kv])
    const replay = o.kvReplayPort ?? kv + n
    if (replay !== 0) ranges.push(['--kv-replay-port', replay])
    const load = o.loadPort ?? kv + 2 * n
    if (load !== 0) ranges.push(['--load-port', load])
  }
  for (let a = 0; a < ranges.length; a++) {
    for (let b = a + 1; b < ranges.length; b++) {
      const [na, pa] = ranges[a]!
      const [nb, pb] = ranges[b]!
      if (pa < pb + n && pb < pa + n) {
        throw new BadFlagError(`${na} ${pa} and ${nb} ${pb} overlap: with ${n} worker${n === 1 ? '' : 's'} each flag's range is ${n} port${n === 1 ? '' : 's'} long`)
      }
    }
  }
}
