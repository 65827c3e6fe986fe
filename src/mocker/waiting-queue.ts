/**
 * Waiting requests ordered by (priority, arrival): lower priority values first, then first come
 * first served — vLLM's priority policy, which is plain FCFS when every priority is 0. A preempted
 * request keeps its arrival number, so it goes back ahead of later arrivals.
 *
 * Cancelled requests are dropped lazily when they reach the top (the scheduler keeps the count).
 */
import { RequestState } from './request.js'
import type { EngineRequest } from './request.js'

function before (a: EngineRequest, b: EngineRequest): boolean {
  return a.priority < b.priority || (a.priority === b.priority && a.arrival < b.arrival)
}

export class WaitingQueue {
  private readonly heap: EngineRequest[]

  constructor () {
    this.heap = []
  }

  /** Entries including cancelled ones not yet dropped. */
  get length (): number {
    return this.heap.length
  }

  push (req: EngineRequest): void {
    const heap = this.heap
    heap.push(req)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(req, heap[parent]!)) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = req
  }

  /** The next live request, or null. */
  peek (): EngineRequest | null {
    while (this.heap.length > 0) {
      const top = this.heap[0]!
      if (top.state === RequestState.WAITING) return top
      this.pop()
    }
    return null
  }

  pop (): EngineRequest | null {
    const heap = this.heap
    if (heap.length === 0) return null
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      let i = 0
      const n = heap.length
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        const c = r < n && before(heap[r]!, heap[l]!) ? r : l
        if (!before(heap[c]!, last)) break
        heap[i] = heap[c]!
        i = c
      }
      heap[i] = last
    }
    return top
  }

  /** Live waiting requests, in no particular order (for close and metrics). */
  * live (): IterableIterator<EngineRequest> {
    for (const r of this.heap) if (r.state === RequestState.WAITING) yield r
  }
}
