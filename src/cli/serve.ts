import { loadServeConfig, type ServeConfig } from '../config/serve.js'
import { Gateway } from '../frontend/gateway.js'
import { startMockFleet, type MockFleet } from '../mocker/index.js'
import { ConfigError } from '../shared/errors.js'
import { serveHelp } from './help.js'
import { tuneHeapForGateway } from './heap-tuning.js'

/** `switchyard serve`: load and validate the configuration, start the gateway, shut down on signals. */
export async function runServe (argv: string[]): Promise<number> {
  const { config, help } = loadServeConfig(argv)
  if (help) {
    console.log(serveHelp())
    return 0
  }
  const heap = tuneHeapForGateway()
  let fleet: MockFleet | null = null
  // With NATS, workers come from the discovery bucket: no embedded fleet, and none is required.
  if (config.workers.length === 0 && config.mock_workers > 0 && config.nats === null) fleet = await startEmbeddedFleet(config)
  if (config.workers.length === 0 && config.nats === null) {
    throw new ConfigError([
      'no worker configured (and --mock-workers 0). Add one with any of:',
      '  switchyard serve --worker http://127.0.0.1:8000            (models discovered from GET /v1/models)',
      '  switchyard serve --worker my-model=http://127.0.0.1:8000   (model given, no discovery)',
      '  SWITCHYARD_WORKERS=http://127.0.0.1:8000 switchyard serve',
      '  switchyard serve --config switchyard.yaml                   (with a `workers:` list)'
    ].join('\n'))
  }
  const engines = new Map(fleet?.workers.map(w => [`mock-${w.index}`, w.engine]) ?? [])
  // The embedded engines report their windows as a discovered mock engine would (GET /v1/models).
  const reportedWindows = new Map(fleet?.workers.map(w => [`mock-${w.index}`, { requests: w.engine.options.maxNumSeqs, tokens: w.engine.options.numGpuBlocks * w.engine.options.blockSize }]) ?? [])
  const gateway = new Gateway(config, { engines, reportedWindows })
  // A start that fails half way (say NATS unreachable after the HTTP server listens) must not
  // leave a listening server keeping the process alive: close what started, then report.
  const url = await gateway.start().catch(async (err: unknown) => {
    await gateway.close(0).catch(() => {})
    await fleet?.close()
    throw err
  })
  const log = gateway.ctx.log
  const snap = gateway.ctx.registry.snapshot
  log.info({ url, workers: snap.workers.length, models: snap.modelNames, policy: config.policy, embedded_fleet: fleet !== null, v8_pretenuring: heap === 'applied' ? 'off' : 'node flags' }, 'switchyard listening')
  if (fleet !== null) {
    console.error(`switchyard: gateway on ${url} in front of ${fleet.workers.length} embedded mock engines (model ${config.mock_model}). Try:\n` +
      `  curl -s ${url}/v1/chat/completions -H 'content-type: application/json' -d '{"model": "${config.mock_model}", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 32}'`)
  }
  return await new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal, grace_ms: config.shutdown_grace }, 'shutting down')
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
      // The gateway first (its in-flight requests drain through the engines), then the engines.
      gateway.close()
        .then(async () => { await fleet?.close() })
        .then(() => resolve(0), (err) => { log.error({ err }, 'shutdown failed'); resolve(1) })
    }
    const onTerm = (): void => stop('SIGTERM')
    const onInt = (): void => stop('SIGINT')
    process.on('SIGTERM', onTerm)
    process.on('SIGINT', onInt)
  })
}

/** Starts the in-process mock engines and adds them to the configuration as `MODEL=URL` workers. */
async function startEmbeddedFleet (config: ServeConfig): Promise<MockFleet> {
  console.error(`switchyard: no worker configured; starting ${config.mock_workers} embedded mock engines (speed-up ${config.mock_speedup})...`)
  const fleet = await startMockFleet({ numWorkers: config.mock_workers, model: config.mock_model, port: 0, host: '127.0.0.1', speedupRatio: config.mock_speedup, nativePort: config.mock_transport === 'native' ? 0 : null })
  for (const w of fleet.workers) config.workers.push({ id: `mock-${w.index}`, url: w.url, model: config.mock_model, labels: { embedded: 'true' }, api_key: null, kv_events: null, kv_replay: null, block_size: w.engine.options.blockSize, max_inflight_requests: null, max_inflight_tokens: null, native_url: w.nativeUrl })
  return fleet
}
