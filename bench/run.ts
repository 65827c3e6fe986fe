/**
 * `npm run bench -- <name> [flags]`: runs one benchmark scenario. Each scenario starts what it
 * needs on loopback, prints one comparison table, and tears everything down.
 */
const SCENARIOS: Record<string, { about: string, load: () => Promise<{ main: (argv: string[]) => Promise<void> }> }> = {
  scaling: { about: '1, 2, 4, 8 mock engines at the same per-engine concurrency through the gateway: throughput ratio, gateway CPU', load: () => import('./scaling.js') },
  'admission-burst': { about: 'bursts of low- then high-priority requests: no queue vs FIFO vs priority queue, latency per class and throughput', load: () => import('./admission-burst.js') },
  streaming: { about: 'paced streams (1 and 10 ms per token) through nginx, a bare Node proxy, Portkey and the gateway: proxy CPU per token, TTFT, ITL', load: () => import('./streaming.js') },
  distributed: { about: '4 mock engines behind 1 gateway vs 2 gateways sharing them over NATS (replica sync on/off): TTFT and cached tokens', load: () => import('./distributed.js') },
  'event-plane': { about: 'KV block events through NATS from 8 publishers to 2 gateway subscribers: blocks applied per second, publish-to-apply lag', load: () => import('./event-plane.js') },
  transport: { about: 'the same mock fleet over HTTP/SSE vs the native transport, paced streams: gateway CPU per token, TTFT, ITL', load: () => import('./transport.js') },
  'request-parse': { about: 'reading an OpenAI request body: the one-pass byte scan vs JSON.parse + checks, small to 64 KiB bodies, µs and instructions per body; --baseline REF side by side', load: () => import('./request-parse.js') },
  'head-parse': { about: 'the worker answer\'s head (forward-lines bytes vs headers object) and the client request\'s head, ns and instructions per head; --baseline REF side by side', load: () => import('./head-parse.js') },
  primitives: { about: 'the request path\'s small hand-written pieces (request id, read-buffer views and copies) vs the node call each replaces: instructions and ns per call', load: () => import('./primitives.js') },
  tokenize: { about: 'chat template + Qwen3 tokenizer per request: plain vs the segment cache, fresh / shared system prompt / multi-turn', load: () => import('./tokenize.js') },
  selection: { about: 'ns and bytes per routing decision vs worker count, with and without registry churn', load: () => import('./selection.js') },
  'kv-index': { about: 'KV block events applied per second and lookup latency vs prompt length and worker count', load: () => import('./kv-index.js') },
  mocker: { about: 'one mock engine at full speed, c=256, ISL/OSL 1024/1024: direct vs through the gateway, CPU per request', load: () => import('./mocker.js') },
  proxy: { about: 'gateway vs direct vs nginx vs a bare Node proxy: req/s, p50/p99, CPU ms per request', load: () => import('./proxy.js') },
  'routing-quality': { about: 'TTFT, e2e, throughput and cached tokens vs the ceiling per policy on shared-prefix, multi-turn and Mooncake trace workloads', load: () => import('./routing-quality.js') }
}

async function main (): Promise<void> {
  const [name, ...rest] = process.argv.slice(2)
  const s = name === undefined ? undefined : SCENARIOS[name]
  if (s === undefined) {
    console.error(`usage: npm run bench -- <scenario> [flags]\n\nscenarios:\n${Object.entries(SCENARIOS).map(([k, v]) => `  ${k.padEnd(12)} ${v.about}`).join('\n')}`)
    process.exitCode = 2
    return
  }
  await (await s.load()).main(rest)
}

// A scenario's own failures are plain Errors whose message says it all (a missing tool, a bad
// flag, a target that answered wrongly); anything else (a TypeError: a bug) keeps its stack, and
// SWY_BENCH_VERBOSE shows every stack.
main().catch((err: unknown) => {
  const plain = err instanceof Error && err.constructor === Error && process.env.SWY_BENCH_VERBOSE === undefined
  console.error(`bench: ${plain ? (err as Error).message : err instanceof Error ? err.stack : String(err)}`)
  process.exitCode = 1
})
