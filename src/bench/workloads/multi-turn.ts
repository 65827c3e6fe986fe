import type { ChatMessage } from '../../tokenize/index.js'
import type { LoadOptions, PriorityName } from '../options.js'
import type { PromptFactory } from '../prompts.js'
import { mixSeed, Rng, sampleLength, STREAM } from '../rng.js'
import { pickPriority } from './priority.js'
import type { Job, RequestSpec, Workload } from './types.js'

/**
 * Sessions of `turns` turns. Every turn resends the conversation so far (earlier user messages
 * and the server's actual answers) plus a new user message of a sampled ISL, so a server with a
 * prefix cache can reuse the whole history. Each session sends its own `x-session-id`.
 */
export class MultiTurnWorkload implements Workload {
  readonly kind = 'multi-turn'
  readonly naturalRequests: number
  readonly timed = false
  private readonly opts: LoadOptions
  private readonly prompts: PromptFactory

  constructor (opts: LoadOptions, prompts: PromptFactory) {
    this.opts = opts
    this.prompts = prompts
    this.naturalRequests = opts.numSessions * opts.turns
  }

  * jobs (): Iterator<Job> {
    // Exactly numSessions sessions, unless a request count or a duration asks for more: then new
    // sessions keep coming. (Capping by request count alone would let a user start a session it
    // cannot finish while another still has turns to send.)
    const extended = this.opts.numRequests !== null || this.opts.durationS !== null
    const sessions = extended ? Infinity : this.opts.numSessions
    for (let i = 0; i < sessions; i++) yield new Session(i, this.opts, this.prompts)
  }
}

export class Session implements Job {
  readonly index: number
  readonly atMs = null
  readonly turns: number
  readonly sessionId: string
  readonly priority: PriorityName | null
  readonly wantsText = true
  private readonly opts: LoadOptions
  private readonly prompts: PromptFactory
  private readonly users: string[] = []
  private readonly userTokens: number[] = []
  private readonly replies: string[] = []
  private historyTokens = 0

  constructor (index: number, opts: LoadOptions, prompts: PromptFactory) {
    this.index = index
    this.opts = opts
    this.prompts = prompts
    this.turns = opts.turns
    this.sessionId = `bench-${opts.seed}-${index}`
    this.priority = pickPriority(opts.priorityMix, opts.seed, index)
  }

  request (turn: number): RequestSpec {
    const { opts } = this
    const seed = mixSeed(opts.seed, STREAM.session, this.index, turn)
    const isl = sampleLength(new Rng(mixSeed(seed, STREAM.isl)), opts.isl)
    const osl = sampleLength(new Rng(mixSeed(seed, STREAM.osl)), opts.osl)
    const prompt = this.prompts.random(isl, mixSeed(seed, STREAM.prompt))
    this.users[turn] = prompt.text
    this.userTokens[turn] = prompt.tokens
    let messages: ChatMessage[] | null = null
    let fullText = prompt.text
    if (opts.endpoint === 'chat') {
      messages = []
      for (let t = 0; t < turn; t++) {
        messages.push({ role: 'user', content: this.users[t] ?? '' })
        messages.push({ role: 'assistant', content: this.replies[t] ?? '' })
      }
      messages.push({ role: 'user', content: prompt.text })
    } else {
      fullText = ''
      for (let t = 0; t < turn; t++) fullText += (this.users[t] ?? '') + (this.replies[t] ?? '')
      fullText += prompt.text
    }
    return { prompt, fullText, messages, inputTokens: this.historyTokens + prompt.tokens, maxTokens: osl }
  }

  answer (turn: number, text: string): void {
    this.replies[turn] = text
    // Client-side count of the history (no chat template): what the user sent plus the answer re-encoded.
    this.historyTokens += (this.userTokens[turn] ?? 0) + this.prompts.tokenizer.encode(text).length
  }
}
