/**
 * HTTP field helpers shared by the server's request parse (frontend/http1) and the worker
 * client's response parse (transport/http1): both cut values out of a head decoded as latin1.
 */
import type { IncomingHttpHeaders } from 'node:http'

/** `text[from, to)` without its surrounding spaces and tabs (OWS, RFC 9110 5.6.3). */
export function fieldValue (text: string, from: number, to: number): string {
  let a = from
  let b = to
  while (a < b && (text.charCodeAt(a) === 32 || text.charCodeAt(a) === 9)) a++
  while (b > a && (text.charCodeAt(b - 1) === 32 || text.charCodeAt(b - 1) === 9)) b--
  return text.slice(a, b)
}

/** A header of node's header object as one string (set-cookie: its first value). */
export function firstValue (v: IncomingHttpHeaders[string]): string | undefined {
  return typeof v === 'string' ? v : v?.[0]
}
