/**
 * Public surface of tokenize: the Tokenizer interface, the built-in tokenizer and the Hugging Face
 * loader.
 */
import { BuiltinTokenizer } from './builtin.js'
import { loadHfTokenizer } from './hf.js'
import type { Tokenizer } from './types.js'

export type { ChatMessage, ChatContentPart, Tokenizer } from './types.js'
export { messageText } from './types.js'
export { BuiltinTokenizer } from './builtin.js'
export { HfTokenizer, loadHfTokenizer } from './hf.js'
export { TokenizerError } from './errors.js'

let sharedBuiltin: BuiltinTokenizer | null = null

/** One built-in tokenizer per process: it is stateless apart from a scratch buffer used synchronously. */
export function builtinTokenizer (): BuiltinTokenizer {
  sharedBuiltin ??= new BuiltinTokenizer()
  return sharedBuiltin
}

/**
 * The tokenizer for a model: a Hugging Face directory when `dir` is given, else the built-in one.
 *
 * @example
 * const tok = await loadTokenizer(flags.tokenizer) // undefined → built-in
 */
export async function loadTokenizer (dir?: string | null): Promise<Tokenizer> {
  if (dir === undefined || dir === null || dir === '') return builtinTokenizer()
  return await loadHfTokenizer(dir)
}
