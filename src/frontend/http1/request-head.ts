import { Buffer } from 'node:buffer'
import type { IncomingHttpHeaders } from 'node:http'
import { fieldValue, firstValue } from '../../shared/http-fields.js'
import { charCodes } from '../../shared/char-codes.js'

/**
 * A request the fast server parsed itself: method, target, headers, and the whole body (the
 * gateway reads every body whole before acting on it, so the server reads it first).
 *
 * The parse looks closely only at the few header names the gateway acts on: framing, the ones
 * it reads on the hot path (taken out as `requestId`, `priority`, `authorization`, `sessionId`,
 * `contentType`), and the hop-by-hop ones it must not forward. Every other field line is left as
 * bytes: `forward` is the head's field lines minus those, ready to send upstream as they came.
 * An OpenAI client sends sixteen headers a request (the x-stainless-* family) that only pass
 * through; turning each into strings, lowercasing it and writing it back cost more than parsing.
 * `rawHeaders` and `headers` (node's shapes) are built on first use, for the rest of the gateway.
 */
export class Http1Request {
  readonly method: string
  readonly url: string
  /** The latin1 text the head was parsed from (it may run on past the head), and where the head ends. */
  private readonly text: string
  private readonly headEnd: number
  /** The body (empty when there is none, or when its declared length is over the limit and it is not read). */
  body: Buffer
  /** Declared Content-Length (0 without one). */
  readonly contentLength: number
  /** The client asked to close after this exchange (`Connection: close`). */
  readonly close: boolean
  /** First `x-request-id`, `x-priority`, `authorization`, `x-session-id` and `content-type` values, taken out during the parse. */
  requestId: string | undefined = undefined
  priority: string | undefined = undefined
  authorization: string | undefined = undefined
  sessionId: string | undefined = undefined
  contentType: string | undefined = undefined
  /**
   * The field lines to forward upstream (`name: value\r\n` each, bytes as sent): all of them but
   * host, content-length, x-request-id, authorization, content-type (the proxy sets those) and the
   * hop-by-hop headers.
   */
  forward = ''
  private raw: string[] | null = null
  private built: IncomingHttpHeaders | null = null

  constructor (method: string, url: string, text: string, headEnd: number, contentLength: number, close: boolean) {
    this.method = method
    this.url = url
    this.text = text
    this.headEnd = headEnd
    this.body = EMPTY
    this.contentLength = contentLength
    this.close = close
  }

  /** The head as latin1, through the blank line. */
  get head (): string {
    return this.headEnd === this.text.length ? this.text : this.text.slice(0, this.headEnd)
  }

  /** [name, value, ...] as node's IncomingMessage has them (names as sent, values without OWS). */
  get rawHeaders (): string[] {
    if (this.raw !== null) return this.raw
    const head = this.head
    const raw: string[] = []
    let at = head.indexOf('\r\n') + 2
    const stop = head.length - 2
    while (at < stop) {
      const eol = head.indexOf('\r\n', at)
      const colon = head.indexOf(':', at)
      raw.push(head.slice(at, colon), fieldValue(head, colon + 1, eol))
      at = eol + 2
    }
    this.raw = raw
    return raw
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

  /**
   * One header by lowercase name as `headers` has it (set-cookie: its first value): the hot ones
   * from the parse, without building `headers` (a policy's lookup, routing/policy.ts HeaderLookup).
   */
  get (name: string): string | undefined {
    switch (name) {
      case 'x-session-id': return this.sessionId
      case 'x-request-id': return this.requestId
      case 'x-priority': return this.priority
      case 'authorization': return this.authorization
      case 'content-type': return this.contentType
    }
    return firstValue(this.headers[name])
  }
}

const EMPTY = Buffer.alloc(0)

/** Methods the fast path serves; anything else (HEAD, CONNECT, TRACE...) goes to node:http. */
function knownMethod (m: string): boolean {
  // Compares with constants: a Set lookup would hash the freshly cut method string every request.
  return m === 'POST' || m === 'GET' || m === 'PUT' || m === 'DELETE' || m === 'PATCH' || m === 'OPTIONS'
}

/** Header names node keeps the first value of when repeated (the rest it joins with ", "). */
const FIRST_WINS: ReadonlySet<string> = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent'])

/**
 * The field lines of a head and the blank line after them, well formed: RFC 9110 token names,
 * values of visible characters, spaces, tabs and obs-text (no NUL, bare CR or LF, other
 * controls), CRLF line ends. One native regex pass: a per-character loop in JS cost about ten
 * times as much on an OpenAI client's sixteen headers.
 */
const FIELDS = /(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n/y

/** Request targets in origin form: a path and query of visible ASCII. */
const ORIGIN_TARGET = /^\/[\x21-\x7e]*$/

/**
 * Names the parse acts on: framing (refused or read), the hot ones it takes out, and the ones
 * `forward` leaves behind (hop-by-hop, RFC 9110 7.6.1, and those the proxy sets itself).
 */
const H_LENGTH = 1
const H_REFUSE = 2
const H_CONNECTION = 3
const H_HOST = 4
const H_REQUEST_ID = 5
const H_PRIORITY = 6
const H_AUTHORIZATION = 7
const H_SESSION_ID = 8
const H_CONTENT_TYPE = 9
const H_HOP = 10
const NAMES: ReadonlyMap<string, number> = new Map([
  ['content-length', H_LENGTH], ['transfer-encoding', H_REFUSE], ['expect', H_REFUSE], ['upgrade', H_REFUSE],
  ['connection', H_CONNECTION], ['host', H_HOST], ['x-request-id', H_REQUEST_ID], ['x-priority', H_PRIORITY],
  ['authorization', H_AUTHORIZATION], ['x-session-id', H_SESSION_ID], ['content-type', H_CONTENT_TYPE],
  ['keep-alive', H_HOP], ['proxy-connection', H_HOP], ['proxy-authenticate', H_HOP], ['proxy-authorization', H_HOP],
  ['te', H_HOP], ['trailer', H_HOP]
])
/**
 * Those names by first letter, as char codes, to tell a field line's name without cutting it out
 * of the head or looking for its colon: a lowercased substring looked up in a Map cost three times
 * the rest of the parse of wrk's three-header head (string hashing and ICU's lowercasing per
 * name), and an indexOf for each line's colon ~150 user instructions (a line the parse does not
 * act on needs only its end). The names are char codes, not strings (shared/char-codes.ts).
 */
interface KnownName { readonly codes: readonly number[], readonly kind: number }
const BY_FIRST: KnownName[][] = Array.from({ length: 128 }, () => [])
for (const [name, kind] of NAMES) BY_FIRST[name.charCodeAt(0)]!.push({ codes: charCodes(name), kind })

/**
 * The known name the field line at `head[at]` starts with, or null. A match is the whole name:
 * the name's chars hold no ':', so the colon right after them is the line's first. Case-insensitive
 * by `| 0x20`: exact for the letters, digits and '-' these names are made of, and a token (FIELDS
 * checked the line) holds no other char that maps onto one of them.
 */
function knownName (head: string, at: number): KnownName | null {
  const first = head.charCodeAt(at) | 0x20
  if (first >= 128) return null
  const candidates = BY_FIRST[first]!
  for (let k = 0; k < candidates.length; k++) {
    const name = candidates[k]!.codes
    const n = name.length
    if (head.charCodeAt(at + n) !== 58) continue
    let i = 1
    while (i < n && (head.charCodeAt(at + i) | 0x20) === name[i]) i++
    if (i === n) return candidates[k]!
  }
  return null
}

/**
 * Parses a request head (text[0, headEnd): the bytes through CRLFCRLF, as latin1) when it is one
 * the fast path serves: HTTP/1.1, a known method, an origin-form target, a Host header,
 * well-formed fields, and a body framed by at most one plain Content-Length. Anything else
 * returns null and the connection goes to node:http, which answers the odd cases (chunked or
 * `Expect: 100-continue` bodies, HTTP/1.0, upgrades, malformed input: 400/431) as it always has.
 * Framing ambiguities a request-smuggling attack needs (Transfer-Encoding next to Content-Length,
 * repeated or signed lengths, folded lines) never reach our code.
 *
 * `text` may run on past the head (the read's body): the head is not cut out of it, as charCodeAt
 * and indexOf on a sliced string go through its parent each time.
 */
export function parseRequestHead (text: string, headEnd: number): Http1Request | null {
  const lineEnd = text.indexOf('\r\n')
  if (lineEnd < 0 || lineEnd >= headEnd) return null
  const sp1 = text.indexOf(' ')
  if (sp1 <= 0 || sp1 > lineEnd) return null
  const sp2 = text.indexOf(' ', sp1 + 1)
  if (sp2 < 0 || sp2 > lineEnd) return null
  // Char by char: startsWith here cost as much as the rest of the request line.
  if (lineEnd - sp2 !== 9 || text.charCodeAt(sp2 + 1) !== 72 || text.charCodeAt(sp2 + 2) !== 84 || text.charCodeAt(sp2 + 3) !== 84 ||
      text.charCodeAt(sp2 + 4) !== 80 || text.charCodeAt(sp2 + 5) !== 47 || text.charCodeAt(sp2 + 6) !== 49 ||
      text.charCodeAt(sp2 + 7) !== 46 || text.charCodeAt(sp2 + 8) !== 49) return null
  const method = text.slice(0, sp1)
  if (!knownMethod(method)) return null
  const url = text.slice(sp1 + 1, sp2)
  if (!ORIGIN_TARGET.test(url)) return null
  // Also refuses obs-fold (a line starting with a space is no token). The match must end where
  // the head does: the first CRLFCRLF is its end, so a field section that matches ends there.
  FIELDS.lastIndex = lineEnd + 2
  if (!FIELDS.test(text) || FIELDS.lastIndex !== headEnd) return null
  let contentLength = -1
  let close = false
  let host = false
  let requestId: string | undefined
  let priority: string | undefined
  let authorization: string | undefined
  let sessionId: string | undefined
  let contentType: string | undefined
  let forward = ''
  let at = lineEnd + 2
  /** Start of the run of field lines still to copy into `forward`. */
  let keepFrom = at
  // The head ends with CRLFCRLF: the last field line's CRLF is at headEnd - 4.
  const stop = headEnd - 2
  while (at < stop) {
    const line = at
    // Values hold no CR (FIELDS): the first CR after the line's start ends it.
    const known = knownName(text, line)
    if (known === null) {
      at = text.indexOf('\r', line) + 2
      continue
    }
    const colon = line + known.codes.length
    const eol = text.indexOf('\r', colon)
    at = eol + 2
    const value = fieldValue(text, colon + 1, eol)
    switch (known.kind) {
      case H_LENGTH: {
        if (contentLength !== -1 || value.length === 0 || value.length > 15) return null
        let n = 0
        for (let i = 0; i < value.length; i++) {
          const c = value.charCodeAt(i)
          if (c < 0x30 || c > 0x39) return null
          n = n * 10 + c - 0x30
        }
        contentLength = n
        break
      }
      case H_REFUSE: return null
      case H_CONNECTION: {
        const v = value.toLowerCase()
        if (v.includes('upgrade')) return null
        if (v.includes('close')) close = true
        break
      }
      case H_HOST: host = true; break
      // Repeats joined as node joins them.
      case H_REQUEST_ID: requestId = requestId === undefined ? value : `${requestId}, ${value}`; break
      case H_PRIORITY: priority = priority === undefined ? value : `${priority}, ${value}`; continue
      case H_AUTHORIZATION: authorization ??= value; break
      case H_CONTENT_TYPE: contentType ??= value; break
      case H_SESSION_ID: sessionId = sessionId === undefined ? value : `${sessionId}, ${value}`; continue
    }
    // Not forwarded as is: the run before this line goes into `forward`.
    if (line > keepFrom) forward += text.slice(keepFrom, line)
    keepFrom = at
  }
  if (stop > keepFrom) forward += text.slice(keepFrom, stop)
  if (!host) return null
  const req = new Http1Request(method, url, text, headEnd, contentLength === -1 ? 0 : contentLength, close)
  req.requestId = requestId
  req.priority = priority
  req.authorization = authorization
  req.sessionId = sessionId
  req.contentType = contentType
  req.forward = forward
  return req
}
