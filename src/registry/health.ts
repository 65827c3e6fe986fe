import type { Registry } from './registry.js'
import type { Worker } from './worker.js'

export interface HealthOptions {
  interval: number
  failureThreshold: number
  successThreshold: number
  discoveryRetries: number
}

export interface HealthHooks {
  /** One probe; true when the worker answered healthy in time. */
  probe (worker: Worker): Promise<boolean>
  /** The models the worker serves; throws with a reason when it cannot tell. */
  discover (worker: Worker): Promise<string[]>
  onTransition (worker: Worker, from: Worker['state'], to: Worker['state'], reason: string): void
}

/**
 * Active health checking and model discovery.
 *
 * A worker enters as `pending`. `register()` discovers its models (bounded retries with backoff)
 * or, when models were configured, probes it once; success makes it `healthy`. A worker whose
 * discovery keeps failing stays `pending` and discovery is retried at every probe tick, so an
 * engine that is still loading weights joins when it is ready. Probes then run every `interval`:
 * `failureThreshold` consecutive failures make a healthy worker `unhealthy`, `successThreshold`
 * consecutive successes bring it back.
 */
export class HealthChecker {
  private timer: NodeJS.Timeout | null = null
  private readonly inProbe = new Set<Worker>()
  private closed = false

  constructor (private readonly registry: Registry, private readonly opts: HealthOptions, private readonly hooks: HealthHooks) {}

  start (): void {
    if (this.timer !== null || this.closed) return
    this.timer = setInterval(() => this.tick(), this.opts.interval)
    this.timer.unref()
  }

  /** First contact with a new worker; resolves when it is healthy or has been left pending/unhealthy. */
  async register (worker: Worker): Promise<void> {
    if (worker.staticModels) {
      const ok = await this.hooks.probe(worker)
      this.set(worker, ok ? 'healthy' : 'unhealthy', ok ? 'first probe answered' : 'first probe failed')
      return
    }
    let delay = 200
    for (let attempt = 1; attempt <= this.opts.discoveryRetries && !this.closed; attempt++) {
      if (await this.tryDiscover(worker)) return
      if (attempt < this.opts.discoveryRetries) {
        await new Promise(resolve => setTimeout(resolve, delay).unref())
        delay = Math.min(delay * 2, 5_000)
      }
    }
  }

  private async tryDiscover (worker: Worker): Promise<boolean> {
    try {
      const models = await this.hooks.discover(worker)
      if (worker.state === 'removed') return true
      const from = worker.state
      this.registry.update(worker, 'healthy', models)
      worker.consecutiveFailures = 0
      worker.lastError = null
      this.hooks.onTransition(worker, from, 'healthy', `discovered models ${models.join(', ')}`)
      return true
    } catch (err) {
      worker.lastError = `model discovery failed: ${(err as Error).message}`
      return false
    }
  }

  private tick (): void {
    for (const w of this.registry.snapshot.workers) {
      if (this.inProbe.has(w)) continue
      this.inProbe.add(w)
      const work = w.state === 'pending' ? this.tryDiscover(w) : this.probeOnce(w)
      void work.finally(() => this.inProbe.delete(w))
    }
  }

  private async probeOnce (w: Worker): Promise<void> {
    const ok = await this.hooks.probe(w)
    if (this.closed || w.state === 'removed') return
    if (ok) {
      w.consecutiveFailures = 0
      w.consecutiveSuccesses++
      if (w.state === 'unhealthy' && w.consecutiveSuccesses >= this.opts.successThreshold) this.set(w, 'healthy', `${w.consecutiveSuccesses} good probes`)
    } else {
      w.consecutiveSuccesses = 0
      w.consecutiveFailures++
      w.lastError = 'health probe failed'
      if (w.state === 'healthy' && w.consecutiveFailures >= this.opts.failureThreshold) this.set(w, 'unhealthy', `${w.consecutiveFailures} failed probes`)
    }
  }

  private set (w: Worker, to: Worker['state'], reason: string): void {
    const from = w.state
    if (from === to || from === 'removed') return
    this.registry.update(w, to)
    this.hooks.onTransition(w, from, to, reason)
  }

  close (): void {
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }
}
