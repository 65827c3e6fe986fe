/**
 * The engine's notion of time, in milliseconds. The real clock follows performance.now(); the
 * virtual clock only moves when the engine advances it by a pass's modeled duration, so runs are
 * reproducible and take no wall time (tests, offline replay).
 */
import { performance } from 'node:perf_hooks'

export interface Clock {
  readonly virtual: boolean
  now (): number
  /** Unix time in seconds for event timestamps. */
  unixSeconds (): number
}

export class RealClock implements Clock {
  readonly virtual = false
  now (): number {
    return performance.now()
  }

  unixSeconds (): number {
    return (performance.timeOrigin + performance.now()) / 1000
  }
}

export class VirtualClock implements Clock {
  readonly virtual = true
  private ms: number
  private readonly epochSeconds: number

  /** `epochSeconds` is the unix time that virtual time 0 maps to (0 keeps event timestamps small and exact). */
  constructor (startMs = 0, epochSeconds = 0) {
    this.ms = startMs
    this.epochSeconds = epochSeconds
  }

  now (): number {
    return this.ms
  }

  unixSeconds (): number {
    return this.epochSeconds + this.ms / 1000
  }

  advance (ms: number): void {
    if (ms > 0) this.ms += ms
  }
}
