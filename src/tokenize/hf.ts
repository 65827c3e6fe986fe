/**
 * A Hugging Face tokenizer from a model directory: tokenizer.json for the vocabulary and merges
 * (run by @lenml/tokenizers, a pure-JS port of transformers.js' tokenizers), and the chat template
 * from chat_template.jinja, chat_template.json or tokenizer_config.json, rendered with
 * @huggingface/jinja with add_generation_prompt true, as vLLM does for chat requests.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Template } from '@huggingface/jinja'
import type { ChatMessage, Tokenizer } from './types.js'
import { messageText } from './types.js'
import { TokenizerError } from './errors.js'
import { SegmentCache } from './segment-cache.js'
import { invalidBody } from '../shared/errors.js'

interface LenmlTokenizer {
  encode (text: string, opts?: { add_special_tokens?: boolean }): number[]
  decode (ids: number[], opts?: { skip_special_tokens?: boolean }): string
}

interface LenmlModule {
  TokenizerLoader: { fromPreTrained (model: { tokenizerJSON: unknown, tokenizerConfig: unknown }): LenmlTokenizer }
}

type JsonObject = Record<string, unknown>

// Special tokens templates may refer to by name (bos_token, eos_token, ...).
const TEMPLATE_TOKEN_NAMES = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const

export class HfTokenizer implements Tokenizer {
  readonly name: string
  readonly eosTokenId: number | null
  private readonly inner: LenmlTokenizer
  private readonly template: Template | null
  private readonly templateTokens: Record<string, string>
  /** Ids of text pieces between added tokens, cached; null when the tokenizer does not allow it. */
  readonly segments: SegmentCache | null

  constructor (name: string, inner: LenmlTokenizer, template: Template | null, templateTokens: Record<string, string>, eosTokenId: number | null, added: ReadonlyMap<string, number> | null = null) {
    this.name = name
    this.inner = inner
    this.template = template
    this.templateTokens = templateTokens
    this.eosTokenId = eosTokenId
    this.segments = added === null || added.size === 0 ? null : this.checkedCache(added)
  }

  encode (text: string): Uint32Array {
    if (this.segments !== null) return this.segments.encode(text)
    return this.encodePlain(text)
  }

  private encodePlain (text: string): Uint32Array {
    return Uint32Array.from(this.inner.encode(text, { add_special_tokens: false }))
  }

  /** The segment cache, if it encodes a probe conversation exactly as the tokenizer does. */
  private checkedCache (added: ReadonlyMap<string, number>): SegmentCache | null {
    const cache = new SegmentCache(added, (t) => this.inner.encode(t, { add_special_tokens: false }))
    const tokens = [...added.keys()]
    let probe = `${tokens.join(' a\n')}  The quick brown fox.\n\n${tokens.join('x')} ünïcödé 123 ${tokens[0]}`
    if (this.template !== null) {
      try { probe += this.applyChatTemplate([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there!\n' }, { role: 'assistant', content: ' Hello.' }, { role: 'user', content: 'Why?' }]) } catch { /* a template that rejects the probe: the plain probe decides */ }
    }
    const a = this.encodePlain(probe)
    const b = cache.encode(probe)
    return a.length === b.length && a.every((v, i) => v === b[i]) ? cache : null
  }

  decode (ids: ArrayLike<number>): string {
    return this.inner.decode(Array.from(ids), { skip_special_tokens: false })
  }

  /** Throws a 400 (SWY_ERR_INVALID_BODY) when the template rejects the conversation, as vLLM answers. */
  applyChatTemplate (messages: readonly ChatMessage[]): string {
    if (this.template === null) {
      throw invalidBody(`${this.name} has no chat template (looked in chat_template.jinja, chat_template.json, tokenizer_config.json)`, 'messages')
    }
    // Templates index content as a string; flatten OpenAI content parts the way vLLM does.
    const flat = messages.map((m) => typeof m.content === 'string' ? m : { ...m, content: messageText(m.content) })
    try {
      return this.template.render({ ...this.templateTokens, messages: flat, add_generation_prompt: true })
    } catch (err) {
      throw invalidBody(`the chat template rejected the messages: ${(err as Error).message}`, 'messages')
    }
  }
}

/**
 * Loads tokenizer.json (+ tokenizer_config.json, chat template files) from `dir`.
 *
 * @example
 * const tok = await loadHfTokenizer('/models/Qwen3-0.6B')
 * tok.encode(tok.applyChatTemplate([{ role: 'user', content: 'hi' }]))
 */
export async function loadHfTokenizer (dir: string): Promise<HfTokenizer> {
  const tokenizerJSON = await readJson(join(dir, 'tokenizer.json'), true)
  const config = (await readJson(join(dir, 'tokenizer_config.json'), false)) ?? {}
  let lenml: LenmlModule
  try {
    lenml = (await import('@lenml/tokenizers')) as unknown as LenmlModule
  } catch (err) {
    throw new TokenizerError('loading a tokenizer.json needs the @lenml/tokenizers package, which is not installed', err)
  }
  let inner: LenmlTokenizer
  try {
    inner = lenml.TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig: config })
  } catch (err) {
    throw new TokenizerError(`cannot build a tokenizer from ${join(dir, 'tokenizer.json')}: ${(err as Error).message}`, err)
  }
  const source = await findChatTemplate(dir, config)
  let template: Template | null = null
  if (source !== null) {
    try {
      template = new Template(source)
    } catch (err) {
      throw new TokenizerError(`the chat template in ${dir} does not parse: ${(err as Error).message}`, err)
    }
  }
  const templateTokens: Record<string, string> = {}
  for (const key of TEMPLATE_TOKEN_NAMES) {
    const text = tokenText(config[key])
    if (text !== null) templateTokens[key] = text
  }
  const eos = templateTokens.eos_token
  let eosTokenId: number | null = null
  if (eos !== undefined) {
    const ids = inner.encode(eos, { add_special_tokens: false })
    if (ids.length === 1) eosTokenId = ids[0]!
  }
  return new HfTokenizer(`hf:${dir}`, inner, template, templateTokens, eosTokenId, addedTokens(tokenizerJSON))
}

async function readJson (path: string, required: true): Promise<JsonObject>
async function readJson (path: string, required: false): Promise<JsonObject | null>
async function readJson (path: string, required: boolean): Promise<JsonObject | null> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new TokenizerError(`cannot read ${path}: ${(err as Error).message}`, err)
  }
  try {
    const value: unknown = JSON.parse(text)
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object')
    return value as JsonObject
  } catch (err) {
    throw new TokenizerError(`${path} is not valid JSON: ${(err as Error).message}`, err)
  }
}

// Newer transformers save the template beside the config; older ones inside it, sometimes as a
// list of named templates of which "default" is the chat one.
async function findChatTemplate (dir: string, config: JsonObject): Promise<string | null> {
  try {
    return await readFile(join(dir, 'chat_template.jinja'), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new TokenizerError(`cannot read chat_template.jinja in ${dir}`, err)
  }
  const side = await readJson(join(dir, 'chat_template.json'), false)
  const fromSide = pickTemplate(side?.chat_template)
  if (fromSide !== null) return fromSide
  return pickTemplate(config.chat_template)
}

function pickTemplate (value: unknown): string | null {
  if (typeof value === 'string') return value
  if (!Array.isArray(value)) return null
  let first: string | null = null
  for (const entry of value as unknown[]) {
    if (entry === null || typeof entry !== 'object') continue
    const { name, template } = entry as { name?: unknown, template?: unknown }
    if (typeof template !== 'string') continue
    if (name === 'default') return template
    first ??= template
  }
  return first
}

// Config tokens are strings or AddedToken objects ({ content: "<|im_end|>", ... }).
function tokenText (value: unknown): string | null {
  if (typeof value === 'string') return value
  if (value !== null && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content
  }
  return null
}

/**
 * tokenizer.json's added tokens as content -> id, or null when one of them strips or normalizes
 * its neighbours (then pieces between them are not independent and nothing is cached).
 */
function addedTokens (tokenizerJSON: JsonObject): Map<string, number> | null {
  const list = tokenizerJSON.added_tokens
  if (!Array.isArray(list)) return null
  const out = new Map<string, number>()
  for (const t of list as Array<Record<string, unknown>>) {
    if (typeof t?.content !== 'string' || typeof t.id !== 'number' || t.content === '') return null
    if (t.lstrip === true || t.rstrip === true || t.normalized === true || t.single_word === true) return null
    out.set(t.content, t.id)
  }
  return out
}
