/**
 * The event plane's wire form (DESIGN 4.6): subjects `switchyard.<namespace>.<topic>.<worker>`
 * and a msgpack envelope {publisher, seq, ts, payload} around every message.
 *
 * - `publisher` is a random id per publisher instance: a new one means the worker restarted.
 * - `seq` starts at 1 per publisher instance and topic, and rises by one per message: a jump is
 *   a loss (the subscriber resynchronises), a new publisher id with seq 1 is a clean restart.
 * - `ts` is the publisher's wall clock, ms since the epoch (for ageing load, not for ordering).
 *
 * Subjects and the encoder are built once per publisher (`EnvelopeWriter`): publishing a message
 * allocates the payload and the encoded bytes, nothing else.
 */
import { randomBytes } from 'node:crypto'
import { Packr } from 'msgpackr'

export const TOPICS = ['kv', 'load', 'routing', 'kvsnap'] as const
export type Topic = typeof TOPICS[number]

/** msgpack with plain maps (no msgpackr records) so any msgpack reader can consume the plane. */
export function newPackr (): Packr {
  return new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false })
}

/**
 * A NATS subject token for a worker id. Ids are often `host:port`, and '.', '*', '>' and
 * whitespace cannot appear in a token: they (and '%') are percent-encoded, reversibly.
 */
export function subjectToken (id: string): string {
  return id.replace(/[%.*> \t\r\n]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'))
}

export function fromSubjectToken (token: string): string {
  return token.replace(/%([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))
}

/** A namespace must itself be one token. */
export function checkNamespace (ns: string): string {
  if (ns === '' || /[.*> \t\r\n]/.test(ns)) throw new TypeError(`NATS namespace must be one subject token (no '.', '*', '>' or spaces), got ${JSON.stringify(ns)}`)
  return ns
}

export function subjectFor (ns: string, topic: Topic, workerId: string): string {
  return `switchyard.${ns}.${topic}.${subjectToken(workerId)}`
}

/** All workers' subjects of a topic. */
export function wildcardFor (ns: string, topic: Topic): string {
  return `switchyard.${ns}.${topic}.*`
}

/** The worker id in a subject built by `subjectFor`. */
export function workerOfSubject (subject: string): string {
  return fromSubjectToken(subject.slice(subject.lastIndexOf('.') + 1))
}

export function newPublisherId (): string {
  return randomBytes(8).toString('hex')
}

export interface Envelope<P = unknown> {
  publisher: string
  seq: number
  ts: number
  payload: P
}

/** Writes the envelopes of one publisher on one topic: subject, encoder and seq counter, built once. */
export class EnvelopeWriter {
  readonly subject: string
  readonly publisher: string
  seq: number
  private readonly packr: Packr
  private readonly env: Envelope

  constructor (subject: string, publisher: string) {
    this.subject = subject
    this.publisher = publisher
    this.seq = 0
    this.packr = newPackr()
    this.env = { publisher, seq: 0, ts: 0, payload: null }
  }

  /** Encodes the next message (seq + 1). */
  next (payload: unknown): Uint8Array {
    const env = this.env
    env.seq = ++this.seq
    env.ts = Date.now()
    env.payload = payload
    const out = this.packr.pack(env)
    env.payload = null
    return out
  }

  /** Encodes without consuming a seq (snapshot replies carry the seq they are consistent with). */
  encode (value: unknown): Uint8Array {
    return this.packr.pack(value)
  }
}

const readPackr = newPackr()

/** Decodes an envelope; null when the bytes are not one. */
export function readEnvelope (data: Uint8Array): Envelope | null {
  let v: unknown
  try {
    v = readPackr.unpack(data)
  } catch {
    return null
  }
  if (typeof v !== 'object' || v === null) return null
  const e = v as Partial<Envelope>
  if (typeof e.publisher !== 'string' || typeof e.seq !== 'number' || typeof e.ts !== 'number') return null
  return e as Envelope
}

export function unpack (data: Uint8Array): unknown {
  return readPackr.unpack(data)
}
