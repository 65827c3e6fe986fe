/**
 * `selection`: cost of one routing decision on the request path, per policy, as the fleet grows
 * from 1 to 4096 workers, with and without registry churn (a worker added and removed every
 * millisecond), and the bytes allocated per decision.
 *
 * A decision is what the proxy does per attempt: `routers.get(model)` on the current snapshot,
 * `policy.select()`, then `addLoad` / `removeLoad` (the load accounting that load-aware policies
 * read). Decisions run in batches; between batches the event loop runs, so the churn timer fires
 * about every millisecond and the next batch reads a fresh snapshot. Allocation is the heap growth
 * over a batch in which no GC ran (checked with a PerformanceObserver), divided by its decisions.
 */
import { PerformanceObserver } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import type { PolicyName } from '../src/config/settings.js'
import { addLoad, removeLoad } from '../src/registry/load.js'
import { Registry } from '../src/registry/registry.js'
import { RouterManager } from '../src/registry/router-manager.js'
import { createPolicy } from '../src/routing/index.js'
import type { Policy, RouteRequest } from '../src/routing/policy.js'
import type { Worker } from '../src/registry/worker.js'
import { recordFigures } from './lib/docs.js'
import { machine, median, table } from './lib/table.js'

interface Cell { policy: PolicyName, workers: number, churn: boolean, selectNs: number, ns: number, bytes: number, churnEvents: number }

let gcs = 0
new PerformanceObserver(list => { gcs += list.getEntries().length }).observe({ entryTypes: ['gc'] })

function addWorker (registry: Registry, i: number): Worker {
  const w = registry.add({ id: `w${i}`, url: `http://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8000`, models: ['m'], labels: {}, apiKey: null, staticModels: true })
  registry.update(w, 'healthy')
  return w
}

async function measure (policy: PolicyName, n: number, churn: boolean, batches: number, batchSize: number): Promise<Cell> {
  const registry = new Registry()
  const routers = new RouterManager<Policy>(registry, () => createPolicy(policy))
  for (let i = 0; i < n; i++) addWorker(registry, i)
  // Give every worker some load so load-aware policies have something to compare.
  for (const w of registry.snapshot.workers) addLoad(w, (w.slot * 7919) % 13)
  const req: RouteRequest = { model: 'm', text: null, tokens: null, headers: new Map(), tokenEstimate: 100, excluded: null, policyPrefill: 0, policyBlocks: 0 }
  let churnEvents = 0
  let extra: Worker | null = null
  const timer = churn
    ? setInterval(() => {
      if (extra === null) extra = addWorker(registry, 1_000_000)
      else { void registry.remove(extra.id); extra = null }
      churnEvents++
    }, 1)
    : null
  const nsPerBatch: number[] = []
  const selectNsPerBatch: number[] = []
  const bytesPerBatch: number[] = []
  // A ring of in-flight picks, so load moves the way it does under real traffic.
  const ring: Worker[] = new Array(64)
  let r = 0
  try {
    for (let b = 0; b < batches; b++) {
      await new Promise(resolve => setImmediate(resolve))
      // select() alone: what the policy costs, without the load accounting every policy shares.
      const s0 = process.hrtime.bigint()
      let sink = 0
      for (let i = 0; i < batchSize; i++) {
        const router = routers.get('m')!
        sink += router.policy.select(router.workers, req)!.slot
      }
      const s1 = process.hrtime.bigint()
      if (sink < 0) console.log(sink)
      const gc0 = gcs
      const h0 = process.memoryUsage().heapUsed
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < batchSize; i++) {
        const router = routers.get('m')!
        const w = router.policy.select(router.workers, req)!
        addLoad(w, 100)
        const old = ring[r]
        if (old !== undefined) removeLoad(old, 100)
        ring[r] = w
        r = (r + 1) & 63
      }
      const t1 = process.hrtime.bigint()
      const h1 = process.memoryUsage().heapUsed
      if (b < 10) continue // warm-up batches (JIT)
      nsPerBatch.push(Number(t1 - t0) / batchSize)
      selectNsPerBatch.push(Number(s1 - s0) / batchSize)
      if (gcs === gc0) bytesPerBatch.push(Math.max(0, h1 - h0) / batchSize)
    }
  } finally {
    if (timer !== null) clearInterval(timer)
    routers.close()
  }
  return { policy, workers: n, churn, selectNs: median(selectNsPerBatch), ns: median(nsPerBatch), bytes: bytesPerBatch.length > 0 ? median(bytesPerBatch) : NaN, churnEvents }
}

export async function main (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      workers: { type: 'string', default: '1,8,64,512,4096' },
      // kv and cache_aware scan every worker per decision by design (cost per worker); measure them with --policies.
      policies: { type: 'string', default: 'round_robin,random,power_of_two,least_load' },
      batches: { type: 'string', default: '30' },
      'batch-size': { type: 'string', default: '2000' },
      'no-record': { type: 'boolean', default: false }
    }
  })
  const sizes = values.workers.split(',').map(Number)
  const policies = values.policies.split(',') as PolicyName[]
  const batches = Number(values.batches)
  const batchSize = Number(values['batch-size'])
  console.error(`selection: ${policies.length} policies x ${sizes.length} fleet sizes x churn off/on, ${batches} batches of ${batchSize} decisions`)
  // Warm every policy's code paths up first: otherwise the first cells measure the JIT, not the policy.
  for (const policy of policies) for (const n of [8, 4096]) await measure(policy, n, false, 15, batchSize)
  const cells: Cell[] = []
  let k = 0
  const total = policies.length * sizes.length * 2
  for (const policy of policies) {
    for (const n of sizes) {
      for (const churn of [false, true]) {
        process.stderr.write(`\r[${++k}/${total}] ${policy} ${n} workers churn=${churn ? 'on ' : 'off'}   `)
        cells.push(await measure(policy, n, churn, batches, batchSize))
      }
    }
  }
  process.stderr.write('\n')
  const header = `selection — ${await machine()}\ncommand: npm run bench -- selection ${argv.join(' ')}`
  console.log(`\n${header}\n`)
  const t1 = table(['policy', 'workers', 'select ns', 'select ns churn', 'decision ns', 'decision ns churn', 'bytes/decision', 'bytes churn', 'churn events'],
    policies.flatMap(p => sizes.map(n => {
      const a = cells.find(c => c.policy === p && c.workers === n && !c.churn)!
      const b = cells.find(c => c.policy === p && c.workers === n && c.churn)!
      return [p, String(n), a.selectNs, b.selectNs, a.ns, b.ns, a.bytes, b.bytes, String(b.churnEvents)]
    })))
  const flat = '\nflatness (goal: 4096 / 8 workers <= 1.2x, churn / no churn ~1x); decision = select + load accounting:'
  console.log(flat)
  const t2 = table(['policy', 'select 4096/8', 'select 4096/8 churn', 'decision 4096/8', 'decision 4096/8 churn', 'churn/no churn @4096'], policies.map(p => {
    const at = (n: number, churn: boolean, k: 'ns' | 'selectNs'): number => cells.find(c => c.policy === p && c.workers === n && c.churn === churn)?.[k] ?? NaN
    return [p, at(4096, false, 'selectNs') / at(8, false, 'selectNs'), at(4096, true, 'selectNs') / at(8, true, 'selectNs'), at(4096, false, 'ns') / at(8, false, 'ns'), at(4096, true, 'ns') / at(8, true, 'ns'), at(4096, true, 'ns') / at(4096, false, 'ns')]
  }))
  if (!values['no-record']) recordFigures('selection', `## selection\n\n${header.replace('\n', '\n\n')}\n\n${t1}\n${flat}\n\n${t2}`)
}
