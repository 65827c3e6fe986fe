/**
 * `switchyard register`: the registrar sidecar for an engine Switchyard does not run (vLLM,
 * SGLang). It discovers the engine's models from its GET /v1/models, writes its worker record to
 * the discovery bucket, and keeps it alive only while the engine answers GET /health: a dead
 * engine's record is deleted (or expires with the sidecar), so every gateway drops it.
 *
 * KV events: with `--kv-events`, the sidecar follows the engine's ZMQ stream itself (replaying
 * gaps from `--kv-replay`, clearing on an engine restart) and republishes it on the NATS event
 * plane (`switchyard.<ns>.kv.<worker>`, events/zmq-bridge.ts), answering gateways' snapshot
 * requests; the record says `nats_events: true`, so gateways decode nothing from ZMQ and need no
 * route to the engine's ZMQ ports. The ZMQ endpoints stay in the record for information.
 * `--kv-direct` keeps the older arrangement: no bridge, and every gateway subscribes to the
 * engine's ZMQ endpoints from the record.
 */
import { parseArgs } from 'node:util'
import { WorkerRegistration } from '../discovery/index.js'
import { checkNamespace, connectNats, ZmqNatsBridge } from '../events/index.js'
import { NATS_AUTH_FLAGS, natsAuthFlagsFrom, natsAuthFromFlags, natsAuthUsage, redactNatsUrl, type NatsAuthOptions } from '../events/nats.js'
import { discoverModelCard, probeHealth } from '../transport/probe.js'
import { workerIdFromUrl } from '../registry/worker.js'
import { natsErrorText } from './status.js'

const USAGE = `Usage: switchyard register --nats URL --url http://engine:8000 [flags]

Registers an engine (vLLM, SGLang, any OpenAI-compatible server) on NATS for distributed mode
and keeps its record alive while the engine answers GET /health.

  --nats URL            NATS server(s) (or SWITCHYARD_NATS); user:pass@ or token@ in the URL authenticate
${natsAuthUsage(22)}
  --url URL             the engine's HTTP base URL
  --model NAME          served model (default: discovered from GET /v1/models)
  --id ID               worker id (default host:port of --url)
  --native-url URL      swy://host:port when the engine speaks the native transport
  --kv-events EP        the engine's ZMQ KV events endpoint, e.g. tcp://10.0.0.11:5557; the
                        sidecar republishes them on NATS (gateways take them from there)
  --kv-replay EP        its replay endpoint, e.g. tcp://10.0.0.11:5558 (gaps are replayed from it)
  --kv-direct           do not bridge: gateways subscribe to --kv-events / --kv-replay themselves
  --nats-namespace NS   event plane namespace for the bridged events (default "default", or
                        SWITCHYARD_NATS_NAMESPACE); the gateways' --nats-namespace
  --block-size N        KV block size in tokens (vLLM: 16)
  --ttl MS              record TTL (default 15000)
  --probe-interval MS   health probe period (default: a third of the TTL)
  --bucket NAME         discovery bucket (default switchyard-workers)`

export async function runRegister (argv: string[]): Promise<number> {
  let v: Record<string, string | boolean | undefined>
  try {
    v = parseArgs({
      args: argv,
      options: {
        nats: { type: 'string' }, ...NATS_AUTH_FLAGS, url: { type: 'string' }, model: { type: 'string' }, id: { type: 'string' }, 'native-url': { type: 'string' },
        'kv-events': { type: 'string' }, 'kv-replay': { type: 'string' }, 'block-size': { type: 'string' }, ttl: { type: 'string' },
        'probe-interval': { type: 'string' }, bucket: { type: 'string' }, 'nats-namespace': { type: 'string' }, 'kv-direct': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (e) {
    console.error(`switchyard register: ${(e as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (v.help === true) { console.log(USAGE); return 0 }
  const str = (k: string): string | null => typeof v[k] === 'string' && v[k] !== '' ? v[k] as string : null
  const nats = str('nats') ?? process.env.SWITCHYARD_NATS ?? null
  const url = str('url')?.replace(/\/+$/, '') ?? null
  const problems: string[] = []
  if (nats === null) problems.push('--nats URL is required')
  if (url === null || !/^https?:\/\//.test(url)) problems.push('--url must be the engine\'s http:// or https:// base URL')
  for (const k of ['kv-events', 'kv-replay']) {
    const ep = str(k)
    if (ep !== null && !/^[a-z]+:\/\/./.test(ep)) problems.push(`--${k} must be a ZMQ endpoint such as tcp://host:5557 (got '${ep}')`)
  }
  let ns = 'default'
  try {
    ns = checkNamespace(str('nats-namespace') ?? process.env.SWITCHYARD_NATS_NAMESPACE ?? 'default')
  } catch (e) {
    problems.push((e as Error).message)
  }
  const kvEvents = str('kv-events')
  const bridging = kvEvents !== null && v['kv-direct'] !== true
  const int = (k: string, dflt: number | null): number | null => {
    const s = str(k)
    if (s === null) return dflt
    const n = Number(s)
    if (!Number.isInteger(n) || n < 1) { problems.push(`--${k} must be a positive integer (got '${s}')`); return dflt }
    return n
  }
  const blockSize = int('block-size', null)
  const ttl = int('ttl', 15_000)!
  const probeEvery = int('probe-interval', Math.max(100, Math.floor(ttl / 3)))!
  let auth: NatsAuthOptions = {}
  try {
    auth = natsAuthFromFlags(natsAuthFlagsFrom(v, process.env))
  } catch (e) {
    problems.push((e as Error).message)
  }
  if (problems.length > 0) { console.error(`switchyard register: ${problems.join('; ')}\n\n${USAGE}`); return 2 }

  let models: string[]
  const model = str('model')
  if (model !== null) models = [model]
  else {
    try {
      models = (await discoverModelCard(url!, 5_000, null)).models
    } catch (e) {
      console.error(`switchyard register: cannot discover the models of ${url!}: ${(e as Error).message} (give --model to skip discovery)`)
      return 1
    }
  }
  let handle
  try {
    handle = await connectNats({ servers: nats!, name: 'switchyard-register', ...auth })
  } catch (e) {
    console.error(`switchyard register: cannot reach NATS at ${redactNatsUrl(nats!)}: ${natsErrorText(e, auth)}`)
    return 1
  }
  const id = str('id') ?? workerIdFromUrl(url!)
  // Before the record exists: a gateway that sees `nats_events` asks for a snapshot at once.
  const bridge = bridging
    ? new ZmqNatsBridge(handle.nc, { namespace: ns, workerId: id, endpoint: kvEvents!, replayEndpoint: str('kv-replay'), blockSize })
    : null
  const reg = new WorkerRegistration(handle.nc, {
    record: { id, models, url: url!, native: str('native-url'), block_size: blockSize, nats_events: bridge !== null, kv_events: kvEvents, kv_replay: str('kv-replay'), labels: { registrar: 'switchyard-register' } },
    ttlMs: ttl,
    refreshMs: probeEvery,
    ...(str('bucket') === null ? {} : { bucket: str('bucket')! }),
    alive: () => probeHealth(url!, Math.min(2_000, probeEvery), null),
    onWarn: (msg) => console.error(`switchyard register: ${msg}`)
  })
  try {
    await reg.start()
  } catch (e) {
    await bridge?.close()
    await handle.close()
    throw e
  }
  const kvNote = kvEvents === null ? '' : bridge !== null ? `; KV events from ${kvEvents} bridged to NATS namespace ${ns}` : `; gateways follow KV events at ${kvEvents} directly`
  console.error(`switchyard register: ${reg.record.id} (${models.join(', ')}) ${reg.registered ? 'registered' : 'not answering yet; will register once it does'} on ${redactNatsUrl(nats!)}, record TTL ${reg.ttlMs} ms, probing every ${probeEvery} ms${kvNote}`)
  return await new Promise<number>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      // The bridge publishes on the connection: both go before it does.
      Promise.all([reg.close(), bridge?.close()]).then(async () => { await handle.close() }).then(() => resolve(0), () => resolve(1))
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
}
