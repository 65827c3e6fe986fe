import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { loadServeConfig } from '../../src/config/serve.js'
import { Gateway } from '../../src/frontend/gateway.js'

/** The compiled CLI next to this compiled test (dist-xxx/src/cli/main.js). */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Polls `check` until it returns a value other than undefined/false, or throws after `ms`. */
export async function until<T> (what: string, ms: number, check: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(25)
  }
}

/** A `switchyard mocker --nats` in its own process; resolves once its engines are registered. */
export class MockerProcess {
  readonly proc: ChildProcess
  out = ''

  private constructor (proc: ChildProcess) {
    this.proc = proc
    proc.stdout?.on('data', (b: Buffer) => { this.out += b.toString() })
    proc.stderr?.on('data', (b: Buffer) => { this.out += b.toString() })
  }

  static async start (args: string[]): Promise<MockerProcess> {
    const m = new MockerProcess(spawn(process.execPath, [CLI, 'mocker', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }))
    const exited = new Promise<never>((_resolve, reject) => m.proc.once('exit', (code) => reject(new Error(`mocker exited (${code}): ${m.out}`))))
    exited.catch(() => {})
    await Promise.race([until('the mocker to register', 15_000, () => m.out.includes('mocker: ready')), exited])
    return m
  }

  /** The engines' URLs, from its start-up lines. */
  get urls (): string[] {
    return [...this.out.matchAll(/worker \d+: (http:\/\/\S+)/g)].map(x => x[1]!)
  }

  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const p = this.proc
    if (p.exitCode !== null || p.signalCode !== null) return p.exitCode
    const gone = new Promise<number | null>(resolve => p.once('exit', (code) => resolve(code)))
    p.kill(signal)
    return await gone
  }
}

/** An in-process gateway in distributed mode (no static workers, no embedded fleet), silent. */
export async function natsGateway (url: string, extra: string[] = []): Promise<Gateway> {
  const { config } = loadServeConfig(['--port', '0', '--nats', url, '--mock-workers', '0', '--health-interval', '50ms', ...extra], {})
  const g = new Gateway(config, { logger: pino({ level: process.env.SWY_TEST_LOG ?? 'silent' }) })
  await g.start()
  return g
}

export async function getJson (url: string): Promise<{ status: number, body: any }> {
  const r = await fetch(url)
  return { status: r.status, body: await r.json() }
}

export async function chat (gw: string, content: string, maxTokens = 4): Promise<{ status: number, body: any }> {
  const r = await fetch(`${gw}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-llm', messages: [{ role: 'user', content }], max_tokens: maxTokens })
  })
  return { status: r.status, body: await r.json() }
}

/** Healthy worker ids a gateway lists on GET /workers, sorted. */
export async function listedWorkers (gw: string): Promise<string[]> {
  const { body } = await getJson(`${gw}/workers`)
  return (body.data as Array<{ id: string, state: string }>).filter(w => w.state === 'healthy').map(w => w.id).sort()
}
