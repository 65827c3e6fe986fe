import { invalidBody, SwitchyardError } from '../shared/errors.js'
import { HIGH, LOW, MEDIUM } from './scheduler.js'

/** How vLLM-style integer priorities (lower is more urgent) map onto the three classes. */
export interface PriorityThresholds {
  /** `priority` below this is high (default 0: negative priorities are urgent). */
  highBelow: number
  /** `priority` above this is low (default 0: positive priorities can wait). */
  lowAbove: number
}

// A Map, not an object literal: 'constructor' or '__proto__' must not name a class.
const HEADER_CLASSES: ReadonlyMap<string, number> = new Map([['high', HIGH], ['medium', MEDIUM], ['low', LOW]])

/**
 * The request's class: the `x-priority` header (high|medium|low) when present, so an operator's
 * front proxy can override what clients claim; else the body's integer `priority` (which also
 * reaches vLLM untouched); else medium.
 */
export function priorityClass (p: unknown, h: string | undefined, t: PriorityThresholds): number {
  if (h !== undefined) {
    const cls = HEADER_CLASSES.get(h.toLowerCase())
    if (cls === undefined) {
      throw new SwitchyardError('SWY_ERR_INVALID_BODY', `the x-priority header must be high, medium or low (got ${JSON.stringify(h)})`, { status: 400, type: 'invalid_request_error', apiCode: 'invalid_value', param: 'x-priority' })
    }
    return cls
  }
  if (p === undefined || p === null) return MEDIUM
  if (typeof p !== 'number' || !Number.isInteger(p)) throw invalidBody("'priority' must be an integer (lower is more urgent, as in vLLM)", 'priority')
  return p < t.highBelow ? HIGH : p > t.lowAbove ? LOW : MEDIUM
}
