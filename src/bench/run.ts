/**
 * One pass of load against a server: hands out jobs to a closed loop of virtual users or
 * dispatches them on an open-loop schedule (Poisson arrivals, trace timestamps), and collects
 * the records. Used twice by runLoad: for the warm-up and for the measured run.
 */
import { performance } from 'node:perf_hooks'
import { setImmediate as yieldNow, setTimeout as sleep } from 'node:timers/promises'
import type { ClientContext } from './client.js'
import { RequestHandler } from './client.js'
import { requestBody, requestHeaders, type RequestShape } from './body.js'
import type { LoadOptions } from './options.js'
import type { Progress } from './progress.js'
import type { RequestRecord } from './records.js'
import { mixSeed, Rng, STREAM } from './rng.js'
import { Samples } from './stats.js'
import type { Job, RequestSpec, Workload } from './workloads/index.js'

export type ArrivalMode = 'closed' | 'poisson' | 'trace'

export interface PassConfig {
  opts: LoadOptions
  workload: Workload
  shape: RequestShape
  ctx: ClientContext
  mode: ArrivalMode
  /** Closed loop: virtual users. */
  concurrency: number
  /** HTTP connections of the pool: more requests in flight than this wait inside the pool, unseen. */
  connections: number
  /** Requests to start at most. */
  limit: number
  durationMs: number | null
  onRecord: ((rec: RequestRecord) => void) | null
  warn: (message: string) => void
}

interface Prepared {
  spec: RequestSpec
  body: string
  headers: Record<string, string>
}

/** Sleeps shorter than this are skipped: Node timers have ~1 ms granularity anyway. */
const MIN_SLEEP_MS = 0.5
const WATCH_INTERVAL_MS = 1000

export class LoadPass {
  readonly records: RequestRecord[] = []
  /** Dispatch lag of every scheduled request (open loop). */
  readonly lags = new Samples()
  readonly warnings: string[] = []
  t0 = 0
  claimed = 0
  sent = 0
  done = 0
  failed = 0
  outputTokens = 0
  progress: Progress | null = null
  private readonly cfg: PassConfig
  private stopped = false
  private readonly stopCtl = new AbortController()
  private readonly tasks = new Set<Promise<void>>()
  private jobs: Iterator<Job> | null = null
  private drainTimer: NodeJS.Timeout | null = null
  private durationTimer: NodeJS.Timeout | null = null
  private recentLagMax = 0
  private lagWarned = false
  private connectionsWarned = false

  constructor (cfg: PassConfig) {
    this.cfg = cfg
  }

  get inflight (): number {
    return this.cfg.ctx.active.size
  }

  async run (): Promise<void> {
    const { cfg } = this
    this.jobs = cfg.workload.jobs()
    this.t0 = performance.now()
    if (cfg.durationMs !== null) {
      this.durationTimer = setTimeout(() => { this.stop('duration', true) }, cfg.durationMs)
    }
    const watch = cfg.mode === 'closed' ? null : setInterval(() => { this.watchLag() }, WATCH_INTERVAL_MS)
    try {
      if (cfg.mode === 'closed') {
        const users: Array<Promise<void>> = []
        for (let i = 0; i < cfg.concurrency; i++) users.push(this.user())
        await Promise.all(users)
      } else {
        await this.dispatchOpenLoop()
        while (this.tasks.size > 0) await Promise.all([...this.tasks])
      }
    } finally {
      if (watch !== null) clearInterval(watch)
      if (this.durationTimer !== null) clearTimeout(this.durationTimer)
      if (this.drainTimer !== null) clearTimeout(this.drainTimer)
      this.records.sort((a, b) => a.index - b.index)
    }
  }

  /**
   * No new requests from now on. With `drain`, requests in flight get drainTimeoutS to finish
   * before they are cancelled; without, they are cancelled now (abort).
   */
  stop (why: string, drain: boolean): void {
    if (!this.stopped) {
      this.stopped = true
      this.stopCtl.abort()
    }
    if (!drain) {
      this.cancelAll(why)
      return
    }
    if (this.drainTimer === null) {
      this.drainTimer = setTimeout(() => { this.cancelAll(`${why}: still in flight ${this.cfg.opts.drainTimeoutS} s after the last request started`) }, this.cfg.opts.drainTimeoutS * 1000)
      this.drainTimer.unref()
    }
  }

  private cancelAll (why: string): void {
    for (const h of [...this.cfg.ctx.active]) h.cancel(why)
  }

  private claim (): boolean {
    if (this.stopped) return false
    if (this.claimed >= this.cfg.limit) {
      // Count-bounded: what is in flight finishes on its own (each request has its idle timeout).
      this.stopped = true
      this.stopCtl.abort()
      return false
    }
    this.claimed++
    return true
  }

  private nextJob (): Job | null {
    const it = this.jobs!.next()
    return it.done === true ? null : it.value
  }

  private async user (): Promise<void> {
    for (;;) {
      if (this.stopped) return
      const job = this.nextJob()
      if (job === null || !this.claim()) return
      await this.runJob(job, this.prepare(job, 0), null)
    }
  }

  private async dispatchOpenLoop (): Promise<void> {
    const { cfg } = this
    const rate = cfg.opts.requestRate
    const rng = new Rng(mixSeed(cfg.opts.seed, STREAM.arrival))
    let nextAt = 0
    for (;;) {
      if (this.stopped) return
      const job = this.nextJob()
      if (job === null) return
      let atMs: number
      if (cfg.mode === 'poisson' && rate !== null) {
        atMs = nextAt
        nextAt += rng.exponential(rate) * 1000
      } else {
        atMs = job.atMs ?? 0
      }
      if (cfg.durationMs !== null && atMs >= cfg.durationMs) {
        this.stop('duration', true)
        return
      }
      if (!this.claim()) return
      // Build the body before waiting, so building it never makes the request late.
      const first = this.prepare(job, 0)
      const due = this.t0 + atMs
      let wait = due - performance.now()
      if (wait > MIN_SLEEP_MS) {
        // Timers count from libuv's loop time, cached at the start of the loop iteration and in
        // whole ms, so they can fire early: sleep again until the due time has really come.
        while (wait > MIN_SLEEP_MS) {
          try {
            await sleep(wait, undefined, { signal: this.stopCtl.signal })
          } catch {
            return
          }
          wait = due - performance.now()
        }
      } else {
        // Behind schedule: still let responses be read between dispatches.
        await yieldNow()
      }
      if (this.stopped) return
      const task = this.runJob(job, first, atMs)
      this.tasks.add(task)
      void task.finally(() => this.tasks.delete(task))
    }
  }

  private async runJob (job: Job, first: Prepared, scheduledMs: number | null): Promise<void> {
    let prepared = first
    for (let turn = 0; turn < job.turns; turn++) {
      if (turn > 0) {
        if (this.cfg.opts.turnDelayMs > 0) {
          try {
            await sleep(this.cfg.opts.turnDelayMs, undefined, { signal: this.stopCtl.signal })
          } catch {
            return
          }
        }
        if (!this.claim()) return
        prepared = this.prepare(job, turn)
      }
      const h = await this.send(job, turn, prepared, turn === 0 ? scheduledMs : null)
      if (job.wantsText) job.answer(turn, h.rec.ok ? h.text : '')
    }
  }

  private prepare (job: Job, turn: number): Prepared {
    const { opts, shape } = this.cfg
    const spec = job.request(turn)
    return {
      spec,
      body: requestBody(opts.model, opts.endpoint, shape, spec, job.priority),
      headers: requestHeaders(shape, job.priority, job.sessionId)
    }
  }

  private async send (job: Job, turn: number, p: Prepared, scheduledMs: number | null): Promise<RequestHandler> {
    const { cfg } = this
    const now = performance.now()
    const startMs = now - this.t0
    const lagMs = scheduledMs === null ? null : startMs - scheduledMs
    if (lagMs !== null) {
      this.lags.push(lagMs)
      if (lagMs > this.recentLagMax) this.recentLagMax = lagMs
    }
    const rec: RequestRecord = {
      index: this.sent++,
      job: job.index,
      turn,
      sessionId: job.sessionId,
      priority: job.priority,
      scheduledMs,
      startMs,
      lagMs,
      ttftMs: null,
      e2eMs: 0,
      itlMeanMs: null,
      itlMaxMs: null,
      tpotMs: null,
      contentChunks: 0,
      inputTokens: p.spec.inputTokens,
      promptTokens: null,
      cachedTokens: null,
      outputTokens: 0,
      outputTokensFrom: 'chunks',
      maxTokens: p.spec.maxTokens,
      finishReason: null,
      status: null,
      ok: false,
      error: null
    }
    return await new Promise<RequestHandler>((resolve) => {
      const h = new RequestHandler(cfg.ctx, rec, job.wantsText, (r) => {
        this.finished(r)
        resolve(h)
      })
      h.send({
        path: cfg.shape.path,
        method: 'POST',
        headers: p.headers,
        body: p.body,
        headersTimeout: cfg.opts.requestTimeoutS * 1000,
        bodyTimeout: cfg.opts.requestTimeoutS * 1000
      }, now)
    })
  }

  private finished (rec: RequestRecord): void {
    this.records.push(rec)
    this.done++
    if (!rec.ok) this.failed++
    this.outputTokens += rec.outputTokens
    this.cfg.onRecord?.(rec)
  }

  /** Warns once, during the run, when dispatches fall behind the schedule or run out of connections. */
  private watchLag (): void {
    if (!this.connectionsWarned && this.inflight > this.cfg.connections) {
      this.connectionsWarned = true
      this.report(`${this.inflight} requests in flight but only ${this.cfg.connections} connections: the excess waits inside the client, so sends are later than recorded (raise --max-connections)`)
    }
    const worst = this.recentLagMax
    this.recentLagMax = 0
    if (this.lagWarned || worst <= this.cfg.opts.lagWarnMs) return
    this.lagWarned = true
    this.report(`the generator is behind its schedule: a request went out ${worst.toFixed(1)} ms late (threshold ${this.cfg.opts.lagWarnMs} ms); the offered load is lower than asked`)
  }

  private report (msg: string): void {
    this.warnings.push(msg)
    this.cfg.warn(msg)
  }
}
