import { SwitchyardError } from '../shared/errors.js'
import { Worker, workerIdFromUrl, type WorkerInit } from './worker.js'

const EMPTY: readonly Worker[] = Object.freeze([])

/**
 * One immutable view of the fleet. Built by writers, read by the request path as is.
 * `routable` lists, per model, the healthy workers serving it; a model whose workers are all
 * unhealthy keeps an empty entry so the frontend can answer 503 (known model) rather than 404.
 */
export class RegistrySnapshot {
  readonly version: number
  readonly workers: readonly Worker[]
  readonly byId: ReadonlyMap<string, Worker>
  readonly routable: ReadonlyMap<string, readonly Worker[]>
  readonly modelNames: readonly string[]

  constructor (version: number, workers: readonly Worker[]) {
    this.version = version
    this.workers = Object.freeze(workers.slice())
    const byId = new Map<string, Worker>()
    const routable = new Map<string, Worker[]>()
    for (const w of workers) {
      byId.set(w.id, w)
      for (const m of w.models) {
        let list = routable.get(m)
        if (list === undefined) { list = []; routable.set(m, list) }
        if (w.state === 'healthy') list.push(w)
      }
    }
    for (const list of routable.values()) Object.freeze(list)
    this.byId = byId
    this.routable = routable
    this.modelNames = Object.freeze([...routable.keys()].sort())
  }

  /** Healthy workers for a model; an empty list for a known model with none; null for an unknown model. */
  workersFor (model: string): readonly Worker[] | null {
    return this.routable.get(model) ?? null
  }
}

export type SnapshotListener = (snap: RegistrySnapshot, prev: RegistrySnapshot) => void

/**
 * The workers the gateway knows. All mutations go through here and end in `publish()`, which
 * builds a new snapshot and swaps it in one assignment, then tells listeners (the router manager,
 * metrics). Reads take `registry.snapshot` and keep using that object for the whole request.
 */
export class Registry {
  snapshot: RegistrySnapshot
  private readonly live = new Map<string, Worker>()
  private readonly freeSlots: number[] = []
  private nextSlot = 0
  private version = 0
  private readonly listeners: SnapshotListener[] = []

  constructor () {
    this.snapshot = new RegistrySnapshot(0, EMPTY)
  }

  onChange (fn: SnapshotListener): () => void {
    this.listeners.push(fn)
    return () => { const i = this.listeners.indexOf(fn); if (i >= 0) this.listeners.splice(i, 1) }
  }

  /** Largest slot ever handed out + 1: the length a per-slot typed array needs. */
  get slotCapacity (): number {
    return this.nextSlot
  }

  add (init: Omit<WorkerInit, 'id'> & { id: string | null }): Worker {
    const id = init.id ?? workerIdFromUrl(init.url)
    if (this.live.has(id)) {
      throw new SwitchyardError('SWY_ERR_WORKER_EXISTS', `a worker with id '${id}' is already registered`, { status: 409, type: 'invalid_request_error', apiCode: 'worker_exists', param: 'id' })
    }
    for (const w of this.live.values()) {
      if (w.url === init.url) {
        throw new SwitchyardError('SWY_ERR_WORKER_EXISTS', `worker '${w.id}' already has the URL ${init.url}`, { status: 409, type: 'invalid_request_error', apiCode: 'worker_exists', param: 'url' })
      }
    }
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.nextSlot++
    const worker = new Worker({ ...init, id }, slot)
    this.live.set(id, worker)
    this.publish()
    return worker
  }

  get (id: string): Worker | undefined {
    return this.live.get(id)
  }

  /** Sets health state (and, for discovery, the models); publishes only when something changed. */
  update (worker: Worker, state: Worker['state'], models?: readonly string[]): void {
    if (worker.state === 'removed' || !this.live.has(worker.id)) return
    const modelsChanged = models !== undefined && (models.length !== worker.models.length || models.some((m, i) => m !== worker.models[i]))
    if (worker.state === state && !modelsChanged) return
    worker.state = state
    if (modelsChanged) worker.models = Object.freeze(models.slice())
    this.publish()
  }

  /**
   * Removes a worker from routing at once. Requests already on it finish (draining); the returned
   * promise resolves when the last one has, after the worker's client is closed.
   */
  remove (id: string): Promise<void> | null {
    const worker = this.live.get(id)
    if (worker === undefined) return null
    this.live.delete(id)
    worker.state = 'removed'
    this.publish()
    worker.drained = new Promise<void>((resolve) => {
      const finish = (): void => {
        worker.drainResolve = null
        const client = worker.client
        worker.client = null
        this.freeSlots.push(worker.slot)
        void (client?.close() ?? Promise.resolve()).catch(() => {}).then(resolve)
      }
      if (worker.inflightRequests === 0) finish()
      else worker.drainResolve = finish
    })
    return worker.drained
  }

  /** Removes every worker and waits for all of them to drain. */
  async close (): Promise<void> {
    await Promise.all([...this.live.keys()].map(id => this.remove(id)))
  }

  private publish (): void {
    const prev = this.snapshot
    this.snapshot = new RegistrySnapshot(++this.version, [...this.live.values()])
    // A copy: a listener may unsubscribe itself while being told.
    for (const fn of this.listeners.slice()) fn(this.snapshot, prev)
  }
}
