/** Helpers for scenarios that run a mocker process and a gateway process. */
import { createServer } from 'node:net'
import { freePort } from './proc.js'

async function isFree (port: number): Promise<boolean> {
  const s = createServer()
  return await new Promise<boolean>(resolve => {
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/** First of `n` consecutive free loopback ports (the mocker puts engine i on P+i). */
export async function freePortRange (n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const p = await freePort()
    if (p + n > 65535) continue
    let ok = true
    for (let i = 1; i < n && ok; i++) ok = await isFree(p + i)
    if (ok) return p
  }
  throw new Error(`no ${n} consecutive free ports found`)
}

/** Resolves when the gateway lists `n` healthy workers. */
export async function waitForWorkers (gwPort: number, n: number, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs
  let seen = 'nothing'
  for (;;) {
    try {
      const doc = await (await fetch(`http://127.0.0.1:${gwPort}/workers`)).json() as { data: Array<{ state: string }> }
      const healthy = doc.data.filter(w => w.state === 'healthy').length
      if (healthy === n) return
      seen = `${healthy}/${doc.data.length} healthy`
    } catch (err) { seen = String(err) }
    if (Date.now() > end) throw new Error(`gateway on port ${gwPort} has not ${n} healthy workers after ${timeoutMs} ms (${seen})`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
