/**
 * Request bodies and headers. What is the same for every request (path, fixed headers, the
 * fixed body fields) is worked out once per run.
 */
import type { LoadOptions, PriorityName } from './options.js'
import { baseUrl, PRIORITY_VALUES } from './options.js'
import type { RequestSpec } from './workloads/index.js'

export interface RequestShape {
  origin: string
  /** Path prefix of the server's base URL (e.g. `/proxy`), '' at the root. */
  basePath: string
  path: string
  /** Fields every body carries after the prompt. */
  fixed: Record<string, unknown>
  headers: Record<string, string>
}

export function requestShape (o: LoadOptions): RequestShape {
  const base = new URL(baseUrl(o.url))
  const basePath = base.pathname.replace(/\/+$/, '')
  const fixed: Record<string, unknown> = { max_tokens: 0, stream: o.stream }
  // vLLM and SGLang stream usage only when asked; it is where prompt, cached and output token counts come from.
  if (o.stream) fixed.stream_options = { include_usage: true }
  if (o.ignoreEos) fixed.ignore_eos = true
  Object.assign(fixed, o.extraBody)
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  for (const [k, v] of Object.entries(o.extraHeaders)) headers[k.toLowerCase()] = v
  if (o.apiKey !== null) headers.authorization = 'Bearer ' + o.apiKey
  return {
    origin: base.origin,
    basePath,
    path: basePath + (o.endpoint === 'chat' ? '/v1/chat/completions' : '/v1/completions'),
    fixed,
    headers
  }
}

export function requestBody (model: string, endpoint: LoadOptions['endpoint'], shape: RequestShape, spec: RequestSpec, priority: PriorityName | null): string {
  const body: Record<string, unknown> = { model }
  if (endpoint === 'chat') body.messages = spec.messages ?? [{ role: 'user', content: spec.fullText }]
  else body.prompt = spec.fullText
  Object.assign(body, shape.fixed)
  body.max_tokens = spec.maxTokens
  if (priority !== null) body.priority = PRIORITY_VALUES[priority]
  return JSON.stringify(body)
}

export function requestHeaders (shape: RequestShape, priority: PriorityName | null, sessionId: string | null): Record<string, string> {
  if (priority === null && sessionId === null) return shape.headers
  const h = { ...shape.headers }
  if (priority !== null) h['x-priority'] = priority
  if (sessionId !== null) h['x-session-id'] = sessionId
  return h
}
