import type { IncomingHttpHeaders } from 'node:http'

/**
 * A request the fast server parsed itself: method, target, headers, and the whole body (the
 * gateway reads every body whole before acting on it, so the server reads it first).
 */
export class Http1Request {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
  /** The body (empty when there is none, or when its declared length is over the limit and it is not read). */
  body: Buffer
  /** Declared Content-Length (0 without one). */
  readonly contentLength: number
  /** The client asked to close after this exchange (`Connection: close`). */
  readonly close: boolean

  constructor (method: string, url: string, headers: IncomingHttpHeaders, rawHeaders: string[], contentLength: number, close: boolean) {
    this.method = method
    this.url = url
    this.headers = headers
    this.rawHeaders = rawHeaders
    this.body = EMPTY
    this.contentLength = contentLength
    this.close = close
  }
}

const EMPTY = Buffer.alloc(0)

/** Methods the fast path serves; anything else (HEAD, CONNECT, TRACE...) goes to node:http. */
const METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])

/** Header names node keeps the first value of when repeated (the rest it joins with ", "). */
const FIRST_WINS: ReadonlySet<string> = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent'])

/** RFC 9110 token characters (header names, methods). */
const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1

function isToken (s: string): boolean {
  if (s.length === 0) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 128 || TCHAR[c] === 0) return false
  }
  return true
}

/** Field values: visible characters, spaces, tabs and obs-text; no CR, LF, NUL or other controls. */
function isFieldValue (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if ((c < 0x20 && c !== 9) || c === 0x7f) return false
  }
  return true
}

/** Request targets in origin form: a path and query of visible ASCII. */
function isOriginTarget (s: string): boolean {
  if (s.length === 0 || s.charCodeAt(0) !== 0x2f) return false
  for (let i = 1; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c <= 0x20 || c >= 0x7f) return false
  }
  return true
}

function trimOws (s: string): string {
  let a = 0
  let b = s.length
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--
  return a === 0 && b === s.length ? s : s.slice(a, b)
}

/**
 * Parses a request head (the bytes before and including CRLFCRLF, as latin1) when it is one the
 * fast path serves: HTTP/1.1, a known method, an origin-form target, a Host header, well-formed
 * fields, and a body framed by at most one plain Content-Length. Anything else returns null and
 * the connection goes to node:http, which answers the odd cases (chunked or `Expect: 100-continue`
 * bodies, HTTP/1.0, upgrades, malformed input: 400/431) as it always has. Framing ambiguities a
 * request-smuggling attack needs (Transfer-Encoding next to Content-Length, repeated or signed
 * lengths, folded lines) never reach our code.
 */
export function parseRequestHead (head: string): Http1Request | null {
  const lineEnd = head.indexOf('\r\n')
  if (lineEnd < 0) return null
  const sp1 = head.indexOf(' ')
  if (sp1 <= 0 || sp1 > lineEnd) return null
  const sp2 = head.indexOf(' ', sp1 + 1)
  if (sp2 < 0 || sp2 > lineEnd) return null
  if (lineEnd - sp2 !== 9 || !head.startsWith(' HTTP/1.1', sp2)) return null
  const method = head.slice(0, sp1)
  if (!METHODS.has(method)) return null
  const url = head.slice(sp1 + 1, sp2)
  if (!isOriginTarget(url)) return null
  const headers: IncomingHttpHeaders = {}
  const rawHeaders: string[] = []
  let contentLength = -1
  let close = false
  let host = false
  let at = lineEnd + 2
  // The head ends with CRLFCRLF: the last field line's CRLF is at head.length - 4.
  const stop = head.length - 2
  while (at < stop) {
    const eol = head.indexOf('\r\n', at)
    const colon = head.indexOf(':', at)
    if (colon < 0 || colon > eol) return null
    const rawName = head.slice(at, colon)
    if (!isToken(rawName)) return null // also refuses obs-fold (a line starting with a space)
    const value = trimOws(head.slice(colon + 1, eol))
    if (!isFieldValue(value)) return null
    const name = rawName.toLowerCase()
    rawHeaders.push(rawName, value)
    switch (name) {
      case 'content-length': {
        if (contentLength !== -1 || value.length === 0 || value.length > 15) return null
        for (let i = 0; i < value.length; i++) {
          const c = value.charCodeAt(i)
          if (c < 0x30 || c > 0x39) return null
        }
        contentLength = Number(value)
        break
      }
      case 'transfer-encoding': case 'expect': case 'upgrade': return null
      case 'connection': {
        const v = value.toLowerCase()
        if (v.includes('upgrade')) return null
        if (v.includes('close')) close = true
        break
      }
      case 'host': host = true; break
    }
    const prev = headers[name]
    if (prev === undefined) headers[name] = name === 'set-cookie' ? [value] : value
    else if (name === 'set-cookie') (prev as string[]).push(value)
    else if (!FIRST_WINS.has(name)) headers[name] = `${prev as string}, ${value}`
    at = eol + 2
  }
  if (!host) return null
  return new Http1Request(method, url, headers, rawHeaders, contentLength === -1 ? 0 : contentLength, close)
}
