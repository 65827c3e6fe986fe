import type { PriorityName } from '../options.js'
import type { Prompt } from '../prompts.js'
import type { Job, RequestSpec } from './types.js'

/** A job of one request whose prompt is built on demand. */
export class SingleJob implements Job {
  readonly index: number
  readonly atMs: number | null
  readonly turns = 1
  readonly sessionId = null
  readonly priority: PriorityName | null
  readonly wantsText = false
  private readonly build: () => Prompt
  private readonly maxTokens: number

  constructor (index: number, atMs: number | null, priority: PriorityName | null, maxTokens: number, build: () => Prompt) {
    this.index = index
    this.atMs = atMs
    this.priority = priority
    this.maxTokens = maxTokens
    this.build = build
  }

  request (): RequestSpec {
    const prompt = this.build()
    return { prompt, fullText: prompt.text, messages: null, inputTokens: prompt.tokens, maxTokens: this.maxTokens }
  }

  answer (): void {}
}
