/**
 * The mock engine behind the native worker runtime: the same engine that serves HTTP
 * (server.ts), answering native streams instead. Output is identical for the same prompt tokens
 * and knobs: the gateway can compare transports on one fleet.
 *
 * Per token: the engine calls the shared sink at the end of a pass; the sink writes one item frame
 * into the connection's write arena (no object, no JSON). Frames of one pass for all streams of a
 * connection leave in one socket write.
 */
import { startNativeWorker } from '../worker/index.js'
import type { NativeEngine, NativeWorkerOptions, NativeWorkerServer, WorkerStream } from '../worker/index.js'
import type { NativeRequest } from '../transport/native/index.js'
import type { ChatMessage } from '../tokenize/index.js'
import type { GenerateInput, MockEngine } from './engine.js'
import { MockerClosedError, MockerRequestError } from './errors.js'
import { SwitchyardError } from '../shared/errors.js'
import type { EngineRequest, FinishReason, RequestSink } from './request.js'

// One sink for every native request: the stream rides in the engine request's `context`.
const SINK: RequestSink = {
  onToken (req: EngineRequest, tokenId: number, text: string): void {
    (req.context as WorkerStream).writeToken(text, tokenId)
  },
  onFinish (req: EngineRequest, reason: FinishReason, text: string): void {
    const stream = req.context as WorkerStream
    if (stream.closed) return
    // "abort" reaches an open stream only when the engine is closing (a cancel closed it first).
    if (reason === 'abort') stream.fail(new MockerClosedError(), true)
    else stream.finish(reason, req.usage, text)
  }
}

/** Adapts a MockEngine to the worker runtime's NativeEngine interface. */
export class MockNativeEngine implements NativeEngine {
  readonly engine: MockEngine
  readonly models: readonly string[]
  private readonly boundCancel: (stream: WorkerStream) => void

  constructor (engine: MockEngine) {
    this.engine = engine
    this.models = [engine.model]
    this.boundCancel = (stream) => { this.engine.cancel(stream.context as EngineRequest) }
  }

  start (req: NativeRequest, stream: WorkerStream): void {
    const e = this.engine
    if (e.scheduler.numWaiting >= e.options.maxWaiting) {
      // As the HTTP server does: refuse beyond --max-waiting; the gateway requeues such pushback.
      throw new SwitchyardError('SWY_ERR_ENGINE_OVERLOADED', `the engine already has ${e.scheduler.numWaiting} requests waiting (max_waiting ${e.options.maxWaiting})`, { status: 429, type: 'rate_limit_error', apiCode: 'engine_overloaded' })
    }
    const engineReq = this.engine.submit(generateInput(this.engine, req), SINK, stream)
    stream.context = engineReq
    stream.onCancel = this.boundCancel
  }
}

/** NativeRequest to the engine's input; tokenizes only when the gateway sent no token ids. */
export function generateInput (engine: MockEngine, req: NativeRequest): GenerateInput {
  let promptTokens: ArrayLike<number>
  const tok = engine.tokenizer
  if (req.tokenIds !== undefined && req.tokenIds !== null) promptTokens = req.tokenIds
  else if (req.endpoint === 'chat') {
    if (req.messages === undefined || req.messages === null || req.messages.length === 0) throw new MockerRequestError('messages must be a non-empty array', 'messages')
    promptTokens = tok.encode(tok.applyChatTemplate(req.messages as readonly ChatMessage[]))
  } else {
    if (typeof req.prompt !== 'string') throw new MockerRequestError('prompt must be a string (or send token ids)', 'prompt')
    promptTokens = tok.encode(req.prompt)
  }
  const input: GenerateInput = { promptTokens }
  const s = req.sampling
  if (s !== undefined) {
    if (s.maxTokens !== undefined) input.maxTokens = s.maxTokens
    if (s.minTokens !== undefined) input.minTokens = s.minTokens
    if (s.ignoreEos !== undefined) input.ignoreEos = s.ignoreEos
    if (s.stop !== undefined) input.stop = s.stop
    if (s.seed !== undefined) input.seed = s.seed
  }
  if (req.priority !== undefined) input.priority = req.priority
  return input
}

/**
 * Serves `engine` over the native transport.
 *
 * @example
 * const worker = await startMockNativeServer(engine, { port: 0 })
 * const up = new NativeUpstream(worker.url)
 */
export async function startMockNativeServer (engine: MockEngine, opts: NativeWorkerOptions = {}): Promise<NativeWorkerServer> {
  return await startNativeWorker(new MockNativeEngine(engine), { agent: 'switchyard-mocker', ...opts })
}
