import { loadServeConfig } from '../config/serve.js'
import { Gateway } from '../frontend/gateway.js'
import { ConfigError } from '../shared/errors.js'
import { serveHelp } from './help.js'

/** `switchyard serve`: load and validate the configuration, start the gateway, shut down on signals. */
export async function runServe (argv: string[]): Promise<number> {
  const { config, help } = loadServeConfig(argv)
  if (help) {
    console.log(serveHelp())
    return 0
  }
  if (config.workers.length === 0) {
    throw new ConfigError([
      'no worker configured. Add one with any of:',
      '  switchyard serve --worker http://127.0.0.1:8000            (models discovered from GET /v1/models)',
      '  switchyard serve --worker my-model=http://127.0.0.1:8000   (model given, no discovery)',
      '  SWITCHYARD_WORKERS=http://127.0.0.1:8000 switchyard serve',
      '  switchyard serve --config switchyard.yaml                   (with a `workers:` list)'
    ].join('\n'))
  }
  const gateway = new Gateway(config)
  const url = await gateway.start()
  const log = gateway.ctx.log
  const snap = gateway.ctx.registry.snapshot
  log.info({ url, workers: snap.workers.length, models: snap.modelNames, policy: config.policy }, 'switchyard listening')
  return await new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal, grace_ms: config.shutdown_grace }, 'shutting down')
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
      gateway.close().then(() => resolve(0), (err) => { log.error({ err }, 'shutdown failed'); resolve(1) })
    }
    const onTerm = (): void => stop('SIGTERM')
    const onInt = (): void => stop('SIGINT')
    process.on('SIGTERM', onTerm)
    process.on('SIGINT', onInt)
  })
}
