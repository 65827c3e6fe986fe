import type { IncomingHttpHeaders } from 'node:http'

/**
 * A request the fast server parsed itself: method, target, headers, and the whole body (the
 * gateway reads every body whole before acting on it, so the server reads it first).
 *
 * `headers` (node's lowercase-keyed object) is built on first use: the hot path reads only the
 * few headers taken out during the parse (`requestId`, `priority`, `authorization`), and an
 * OpenAI client sends sixteen headers a request (the x-stainless-* family) that only need to pass
 * through, which `rawHeaders` does.
 */
export class Http1Request {
  readonly method: string
  readonly url: string
  readonly rawHeaders: string[]
  /** The body (empty when there is none, or when its declared length is over the limit and it is not read). */
  body: Buffer
  /** Declared Content-Length (0 without one). */
  readonly contentLength: number
  /** The client asked to close after this exchange (`Connection: close`). */
  readonly close: boolean
  /** First `x-request-id`, `x-priority` and `authorization` values, taken out during the parse. */
  requestId: string | undefined = undefined
  priority: string | undefined = undefined
  authorization: string | undefined = undefined
  private built: IncomingHttpHeaders | null = null

  constructor (method: string, url: string, rawHeaders: string[], contentLength: number, close: boolean) {
    this.method = method
    this.url = url
    this.rawHeaders = rawHeaders
    this.body = EMPTY
    this.contentLength = contentLength
    this.close = close
  }

  /** The headers as node's IncomingMessage has them: lowercase names, repeats joined (set-cookie: an array; some: first wins). */
  get headers (): IncomingHttpHeaders {
    if (this.built !== null) return this.built
    const headers: IncomingHttpHeaders = {}
    const raw = this.rawHeaders
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase()
      const value = raw[i + 1]!
      const prev = headers[name]
      if (prev === undefined) headers[name] = name === 'set-cookie' ? [value] : value
      else if (name === 'set-cookie') (prev as string[]).push(value)
      else if (!FIRST_WINS.has(name)) headers[name] = `${prev as string}, ${value}`
    }
    this.built = headers
    return headers
  }
}

const EMPTY = Buffer.alloc(0)

/** Methods the fast path serves; anything else (HEAD, CONNECT, TRACE...) goes to node:http. */
const METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])

/** Header names node keeps the first value of when repeated (the rest it joins with ", "). */
const FIRST_WINS: ReadonlySet<string> = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent'])

/**
 * The field lines of a head and the blank line after them, well formed: RFC 9110 token names,
 * values of visible characters, spaces, tabs and obs-text (no NUL, bare CR or LF, other
 * controls), CRLF line ends. One native regex pass: a per-character loop in JS cost about ten
 * times as much on an OpenAI client's sixteen headers.
 */
const FIELDS = /^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n$/

/** Request targets in origin form: a path and query of visible ASCII. */
const ORIGIN_TARGET = /^\/[\x21-\x7e]*$/

/** Lengths of the names the parse looks at; other names are not even lowercased. */
const WATCHED = new Uint8Array(32)
for (const n of ['host', 'expect', 'upgrade', 'x-priority', 'connection', 'x-request-id', 'authorization', 'content-length', 'transfer-encoding']) WATCHED[n.length] = 1

/** A field value without its surrounding spaces and tabs (OWS). */
function fieldValue (head: string, from: number, to: number): string {
  let a = from
  let b = to
  while (a < b && (head.charCodeAt(a) === 32 || head.charCodeAt(a) === 9)) a++
  while (b > a && (head.charCodeAt(b - 1) === 32 || head.charCodeAt(b - 1) === 9)) b--
  return head.slice(a, b)
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
  if (!ORIGIN_TARGET.test(url)) return null
  // Also refuses obs-fold (a line starting with a space is no token).
  if (!FIELDS.test(lineEnd === 0 ? head : head.slice(lineEnd + 2))) return null
  const rawHeaders: string[] = []
  let contentLength = -1
  let close = false
  let host = false
  let requestId: string | undefined
  let priority: string | undefined
  let authorization: string | undefined
  let at = lineEnd + 2
  // The head ends with CRLFCRLF: the last field line's CRLF is at head.length - 4.
  const stop = head.length - 2
  while (at < stop) {
    const eol = head.indexOf('\r\n', at)
    const colon = head.indexOf(':', at)
    const rawName = head.slice(at, colon)
    const value = head.charCodeAt(colon + 1) === 32 && colon + 2 < eol && head.charCodeAt(colon + 2) !== 32 && head.charCodeAt(colon + 2) !== 9 &&
      head.charCodeAt(eol - 1) !== 32 && head.charCodeAt(eol - 1) !== 9
      ? head.slice(colon + 2, eol) // the usual "name: value"
      : fieldValue(head, colon + 1, eol)
    rawHeaders.push(rawName, value)
    at = eol + 2
    const n = rawName.length
    if (n >= 32 || WATCHED[n] === 0) continue
    switch (rawName.toLowerCase()) {
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
      // Repeats joined as node joins them.
      case 'x-request-id': requestId = requestId === undefined ? value : `${requestId}, ${value}`; break
      case 'x-priority': priority = priority === undefined ? value : `${priority}, ${value}`; break
      case 'authorization': authorization ??= value; break
    }
  }
  if (!host) return null
  const req = new Http1Request(method, url, rawHeaders, contentLength === -1 ? 0 : contentLength, close)
  req.requestId = requestId
  req.priority = priority
  req.authorization = authorization
  return req
}
