/**
 * Child process of the routing-quality benchmark: one gateway (src/frontend Gateway, as `switchyard
 * serve` builds it) in front of the mock engines, subscribed to their KV events over ZMQ.
 *
 * Why a process of its own: the load generator, the gateway and the engines' simulation then each
 * have their own event loop, so a busy engine process cannot delay the gateway's routing decisions
 * or the client's TTFT clock, and each one's CPU is measured apart.
 *
 * The policy, session affinity and the engines' KV capacity go through the serve settings
 * (--policy, --session-affinity, models.<m>.kv_capacity_blocks); only tuning runs (--kv-opts)
 * replace the router manager's factory to pass kv options the settings do not expose.
 *
 * IPC: sends `{ type: 'ready', url }`; answers `{ type: 'stats' }` with the policies' counters.
 */
import { pino } from 'pino'
import { loadServeConfig } from '../../src/config/serve.js'
import { Gateway } from '../../src/frontend/gateway.js'
import { createPolicy, KvPolicy, SessionAffinity, type RoutingPolicyName } from '../../src/routing/index.js'
import type { Policy } from '../../src/routing/policy.js'
import type { RoutingMockerWorker } from './routing-mocker.js'

export interface RoutingGatewayConfig {
  policy: RoutingPolicyName
  model: string
  affinity: boolean
  workers: RoutingMockerWorker[]
  /** Overrides of the kv policies' options (tuning runs: --kv-opts). */
  kvOpts: Record<string, unknown>
}

function policyStats (p: Policy): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  let inner = p
  if (p instanceof SessionAffinity) { out.affinity = { ...p.stats, sessions: p.size }; inner = p.inner }
  if (inner instanceof KvPolicy) out.kv = { ...inner.stats }
  return out
}

async function main (): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as RoutingGatewayConfig
  const { config } = loadServeConfig(['--port', '0', '--log-level', 'warn', '--policy', cfg.policy, '--session-affinity', String(cfg.affinity), ...cfg.workers.flatMap(w => ['--worker', `${cfg.model}=${w.url}`])], {})
  const blockSize = cfg.workers[0]?.blockSize ?? 64
  config.models[cfg.model] = { policy: null, tokenizer: null, block_size: blockSize, kv_capacity_blocks: cfg.workers[0]?.numGpuBlocks ?? null }
  config.workers.forEach((w, i) => {
    const mw = cfg.workers[i]!
    w.id = `mock-${i}`
    w.kv_events = mw.kvEvents
    w.kv_replay = mw.kvReplay
    w.block_size = mw.blockSize
  })
  const gw = new Gateway(config, { logger: pino({ level: 'warn' }) })
  const ctx = gw.ctx
  if (Object.keys(cfg.kvOpts).length > 0) {
    // Tuning runs only: kv options the settings do not expose, through the router manager's factory.
    const kvCapacityFor = (): number | null => cfg.workers[0]?.numGpuBlocks ?? null
    ;(ctx.routers as unknown as { policyFor: (model: string) => Policy }).policyFor = (model) =>
      createPolicy(cfg.policy, model, { plane: ctx.plane, blockSizeFor: () => blockSize, kvCapacityFor }, { affinity: cfg.affinity ? {} : false, kv: cfg.kvOpts })
  }
  const url = await gw.start()
  process.on('message', (m: { type: string }) => {
    if (m.type !== 'stats') return
    const policies: Record<string, unknown> = {}
    const r = ctx.routers.get(cfg.model)
    if (r !== undefined) policies[cfg.model] = policyStats(r.policy)
    process.send?.({ type: 'stats', policies, kvEvents: ctx.plane.counters() })
  })
  const stop = (): void => { void gw.close(0).then(() => process.exit(0)) }
  process.on('SIGTERM', stop)
  process.on('disconnect', stop)
  process.send?.({ type: 'ready', url })
}

void main()
