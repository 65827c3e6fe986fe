/** A chat message as the OpenAI API sends it; content parts are flattened to text by the templates. */
export interface ChatMessage {
  role: string
  content?: string | ReadonlyArray<ChatContentPart> | null
  [field: string]: unknown
}

export interface ChatContentPart {
  type: string
  text?: string
  [field: string]: unknown
}

/**
 * What the gateway and the mock engine need from a tokenizer. Engine-independent.
 *
 * `encode` adds no special tokens of its own (no BOS): chat prompts get theirs from the template,
 * as vLLM does for chat requests.
 */
export interface Tokenizer {
  /** Short description for logs, e.g. `builtin` or `hf:/models/qwen3`. */
  readonly name: string
  /** The id that ends generation, when the tokenizer knows one. */
  readonly eosTokenId: number | null
  encode (text: string): Uint32Array
  decode (ids: ArrayLike<number>): string
  /** The prompt text for a conversation, ending with the assistant's generation prompt. */
  applyChatTemplate (messages: readonly ChatMessage[]): string
}

/** Flattens OpenAI content parts to text (text parts joined by newlines, as vLLM does). */
export function messageText (content: ChatMessage['content']): string {
  if (content === undefined || content === null) return ''
  if (typeof content === 'string') return content
  let out = ''
  let first = true
  for (const part of content) {
    if (typeof part.text !== 'string') continue
    out += first ? part.text : '\n' + part.text
    first = false
  }
  return out
}
