/**
 * Child process of the routing-quality benchmark: N mock engines (one process, as `switchyard
 * mocker`) publishing KV events over ZMQ on free ports, plus the workload's ceiling: every prompt
 * any engine receives is also counted against one infinite global prefix cache (block-prefix
 * counting over the exact token ids the engines see, after the chat template), which is what
 * "the cached ratio an infinite global cache would give for the same request sequence" means
 * (finished sequences' output blocks included, as the engines cache them).
 *
 * Protocol (IPC, `child_process.fork`): sends `{ type: 'ready', workers: [...] }` once started;
 * answers `{ type: 'reset' }` (forget the ceiling's cache and counts: after a warm-up) and
 * `{ type: 'ceiling' }` with `{ type: 'ceiling', promptTokens, hitTokens, requests }`.
 * Options come as one JSON argument (MockFleetOptions without functions).
 */
import { BlockKeyer, BlockKeys } from '../../src/kv/index.js'
import { startMockFleet, type MockFleetOptions, type RequestSink } from '../../src/mocker/index.js'

interface Ceiling { seen: Set<number>, promptTokens: number, hitTokens: number, requests: number }

export interface RoutingMockerWorker { url: string, kvEvents: string, kvReplay: string | null, blockSize: number, numGpuBlocks: number }

/**
 * Counts one prompt (`prompt` true): its leading full blocks already seen by any engine are hits
 * (the last token is always computed, as the engine does); every block becomes seen. With
 * `prompt` false it only marks a finished sequence's blocks (prompt + output: engines cache
 * output blocks too, and a multi-turn history resends them) as seen.
 */
function scan (c: Ceiling, keyer: BlockKeyer, keys: BlockKeys, tokens: ArrayLike<number>, prompt: boolean): void {
  const bs = keyer.blockSize
  keyer.keys(tokens, keys)
  let hi = 0x2545f491
  let lo = 0x4f6cdd1d
  let hits = 0
  let prefix = true
  const usable = Math.floor((tokens.length - 1) / bs)
  for (let i = 0; i < keys.length; i++) {
    // Chain the local keys so a key names the block and everything before it (a sequence hash).
    hi = Math.imul(hi ^ keys.data[2 * i]!, 0x85ebca6b) ^ (lo >>> 13)
    lo = Math.imul(lo ^ keys.data[2 * i + 1]!, 0xc2b2ae35) ^ (hi >>> 16)
    const k = (hi >>> 0) * 2097152 + (lo >>> 11)
    if (prefix && c.seen.has(k)) { if (i < usable) hits++ } else { prefix = false; c.seen.add(k) }
  }
  if (!prompt) return
  c.promptTokens += tokens.length
  c.hitTokens += hits * bs
  c.requests++
}

async function main (): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? '{}') as MockFleetOptions
  const fleet = await startMockFleet({ ...opts, port: 0, kvEventsPort: 0 })
  const c: Ceiling = { seen: new Set(), promptTokens: 0, hitTokens: 0, requests: 0 }
  const keys = new BlockKeys()
  for (const w of fleet.workers) {
    const e = w.engine
    const keyer = new BlockKeyer(e.options.blockSize)
    const submit = e.submit.bind(e)
    e.submit = (input, sink, context) => {
      const wrapped: RequestSink = {
        onToken: (r, id, text) => sink.onToken(r, id, text),
        onFinish: (r, reason, text) => {
          // The last sampled token is never computed, so it is not in the cache.
          scan(c, keyer, keys, r.tokens.subarray(0, r.numTokens - 1), false)
          sink.onFinish(r, reason, text)
        }
      }
      const req = submit(input, wrapped, context)
      scan(c, keyer, keys, input.promptTokens, true)
      return req
    }
  }
  const workers: RoutingMockerWorker[] = fleet.workers.map(w => ({ url: w.url, kvEvents: w.kvEvents!.endpoint, kvReplay: w.kvEvents!.replayEndpoint, blockSize: w.engine.options.blockSize, numGpuBlocks: w.engine.options.numGpuBlocks }))
  process.on('message', (m: { type: string }) => {
    if (m.type === 'reset') { c.seen.clear(); c.promptTokens = 0; c.hitTokens = 0; c.requests = 0; process.send?.({ type: 'reset' }) }
    if (m.type === 'ceiling') process.send?.({ type: 'ceiling', promptTokens: c.promptTokens, hitTokens: c.hitTokens, requests: c.requests })
  })
  const stop = (): void => { void fleet.close().then(() => process.exit(0)) }
  process.on('SIGTERM', stop)
  process.on('disconnect', stop)
  process.send?.({ type: 'ready', workers })
}

void main()
