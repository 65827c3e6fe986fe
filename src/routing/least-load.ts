import { lighter } from '../registry/load.js'
import type { LoadWatcher, Worker } from '../registry/worker.js'
import { isExcluded, type Policy, type RouteRequest } from './policy.js'

/**
 * Exact minimum of (in-flight requests, in-flight tokens).
 *
 * A scan is O(workers) per decision: 4096 workers cost ~300x what 8 do. Instead the policy keeps
 * an indexed binary min-heap, updated by the registry's load accounting (O(log n) per change,
 * two changes per request), so `select()` reads the root in O(1) whatever the fleet size.
 */
export class LeastLoadPolicy implements Policy, LoadWatcher {
  readonly name = 'least_load'
  readonly needs = 'nothing' as const
  private heap: Worker[] = []
  /** heap position by worker slot; -1 when the worker is not in this heap. */
  private pos = new Int32Array(16).fill(-1)

  setWorkers (workers: readonly Worker[]): void {
    for (const w of this.heap) detach(w, this)
    this.heap = workers.slice()
    let maxSlot = 0
    for (const w of workers) if (w.slot > maxSlot) maxSlot = w.slot
    if (maxSlot >= this.pos.length) this.pos = new Int32Array(Math.max(maxSlot + 1, this.pos.length * 2))
    this.pos.fill(-1)
    for (let i = 0; i < this.heap.length; i++) this.pos[this.heap[i]!.slot] = i
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i)
    for (const w of workers) w.watchers.push(this)
  }

  select (_workers: readonly Worker[], req: RouteRequest): Worker | null {
    const top = this.heap[0]
    if (top === undefined) return null
    if (req.excluded === null || !isExcluded(req, top)) return top
    let best: Worker | null = null
    for (const w of this.heap) if (!isExcluded(req, w) && (best === null || lighter(w, best))) best = w
    return best
  }

  onLoadChange (worker: Worker): void {
    const i = this.pos[worker.slot]
    if (i === undefined || i < 0 || this.heap[i] !== worker) return
    this.up(i)
    this.down(this.pos[worker.slot]!)
  }

  close (): void {
    for (const w of this.heap) detach(w, this)
    this.heap = []
  }

  private up (i: number): void {
    const h = this.heap
    const w = h[i]!
    while (i > 0) {
      const p = (i - 1) >> 1
      const pw = h[p]!
      if (!lighter(w, pw)) break
      h[i] = pw
      this.pos[pw.slot] = i
      i = p
    }
    h[i] = w
    this.pos[w.slot] = i
  }

  private down (i: number): void {
    const h = this.heap
    const n = h.length
    const w = h[i]!
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const c = r < n && lighter(h[r]!, h[l]!) ? r : l
      const cw = h[c]!
      if (!lighter(cw, w)) break
      h[i] = cw
      this.pos[cw.slot] = i
      i = c
    }
    h[i] = w
    this.pos[w.slot] = i
  }
}

function detach (w: Worker, watcher: LoadWatcher): void {
  const i = w.watchers.indexOf(watcher)
  if (i >= 0) w.watchers.splice(i, 1)
}
