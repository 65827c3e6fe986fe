import type { ChatMessage, Tokenizer } from '../tokenize/index.js'
import type { ParsedRequest } from './validate.js'

/**
 * The prompt as token ids, the way the worker will see it: chat messages through the model's
 * chat template (with the generation prompt, as vLLM renders it), completions prompts encoded,
 * token-id prompts taken as they are. Only computed when the model's policy needs tokens (kv).
 */
export function promptTokens (p: ParsedRequest, tokenizer: Tokenizer): Uint32Array {
  const body = p.body
  if (p.endpoint === 'chat') return tokenizer.encode(tokenizer.applyChatTemplate(body.messages as ChatMessage[]))
  const prompt = body.prompt
  if (typeof prompt === 'string') return tokenizer.encode(prompt)
  if (Array.isArray(prompt)) {
    const first = prompt[0]
    if (typeof first === 'number') return Uint32Array.from(prompt as number[])
    if (typeof first === 'string') return tokenizer.encode(first)
    if (Array.isArray(first)) return Uint32Array.from(first as number[])
  }
  return new Uint32Array(0)
}
