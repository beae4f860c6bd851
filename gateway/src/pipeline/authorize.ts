// Stage 2 — authorize: route table, path normalization, and the compat-path user check.
//
// The upstream path is BUILT from the normalized, matched route — never derived from the raw URL by
// prefix substitution — so nothing outside /tasks can ever be addressed upstream.
//
// Normalization of the raw request target (before matching):
//  - only origin-form targets ("/…"); absolute-form and "*" → not found;
//  - the path is split on "/", each segment percent-decoded (strict UTF-8);
//  - a segment whose raw or decoded form holds "/", "\", NUL or another control character
//    (e.g. "%2f", "%5c", "%00") → not found (never reinterpreted as a separator);
//  - empty segments ("//", trailing "/") are dropped; "." is dropped; ".." removes the previous
//    segment (never above the root) — so "/api/tasks/../../x" is "/x" and is not found;
//  - a task id beginning with ".." ("..foo", "%2E%2Efoo") is not found (never a valid task id);
//  - the query string is passed through unchanged (printable ASCII only, else 400).
import type { Identity } from './authenticate.js'

export type RouteKind = 'collection' | 'item' | 'complete'

export interface AuthorizedRoute {
  kind: RouteKind
  /** Path sent to the task service, e.g. "/tasks/abc/complete". */
  upstreamPath: string
  /** The client's raw query string without "?" ("" when none), passed through unchanged. */
  query: string
  /** The public prefix the client used ("/api" or "/api/<user>"), for Location/Link rewriting. */
  publicPrefix: string
}

export interface RouteRejection {
  status: 400 | 403 | 404 | 405
  code: 'bad_request' | 'forbidden_user' | 'not_found' | 'method_not_allowed'
  message: string
  allow?: string
}

const METHODS: Record<RouteKind, ReadonlySet<string>> = {
  collection: new Set(['GET', 'HEAD', 'POST']),
  item: new Set(['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE']),
  complete: new Set(['PATCH'])
}
const ALLOW: Record<RouteKind, string> = {
  collection: 'GET, HEAD, POST',
  item: 'GET, HEAD, PUT, PATCH, DELETE',
  complete: 'PATCH'
}

// eslint-disable-next-line no-control-regex
const FORBIDDEN_IN_SEGMENT = /[/\\\u0000-\u001f\u007f-\u009f]/
const QUERY_OK = /^[\u0021-\u007e]*$/

const NOT_FOUND: RouteRejection = { status: 404, code: 'not_found', message: 'no such route' }

/** Normalizes a raw origin-form path into decoded segments, or undefined when it must not be served. */
export function normalizePath (rawPath: string): string[] | undefined {
  if (rawPath.length === 0 || rawPath.charCodeAt(0) !== 47 /* / */) return undefined
  const out: string[] = []
  const parts = rawPath.split('/')
  for (let i = 1; i < parts.length; i++) {
    const raw = parts[i] as string
    if (raw === '') continue
    if (raw.includes('\\')) return undefined
    let seg: string
    if (raw.includes('%')) {
      try {
        seg = decodeURIComponent(raw)
      } catch {
        return undefined
      }
    } else {
      seg = raw
    }
    if (FORBIDDEN_IN_SEGMENT.test(seg)) return undefined
    if (seg === '.') continue
    if (seg === '..') {
      out.pop()
      continue
    }
    out.push(seg)
  }
  return out
}

/**
 * Matches a request against the route table. `identity` is the authenticated caller (authentication
 * runs first). Order: 404 (unknown route) → 405 (method) → 403 (path user ≠ sub).
 */
export function authorize (method: string, rawUrl: string, identity: Identity): AuthorizedRoute | RouteRejection {
  let rawPath = rawUrl
  let query = ''
  const q = rawUrl.indexOf('?')
  if (q !== -1) {
    rawPath = rawUrl.slice(0, q)
    query = rawUrl.slice(q)
  }
  const hash = rawPath.indexOf('#')
  if (hash !== -1) {
    rawPath = rawPath.slice(0, hash)
    query = ''
  }
  const qh = query.indexOf('#')
  if (qh !== -1) query = query.slice(0, qh)
  const segs = normalizePath(rawPath)
  if (segs === undefined || segs.length < 2 || segs[0] !== 'api') return NOT_FOUND

  // /api/tasks[/…] or /api/{user_id}/tasks[/…]
  let rest: number
  let pathUser: string | undefined
  if (segs[1] === 'tasks') {
    rest = 2
  } else if (segs[2] === 'tasks') {
    pathUser = segs[1] as string
    rest = 3
  } else {
    return NOT_FOUND
  }
  const extra = segs.length - rest
  // An id beginning with ".." is never a valid task id: refused here (404) rather than by the
  // forwarding engine's own dot-segment guard (which would answer 400).
  if (extra > 0 && (segs[rest] as string).startsWith('..')) return NOT_FOUND
  let kind: RouteKind
  let upstream: string
  if (extra === 0) {
    kind = 'collection'
    upstream = '/tasks'
  } else if (extra === 1) {
    kind = 'item'
    upstream = '/tasks/' + encodeURIComponent(segs[rest] as string)
  } else if (extra === 2 && segs[rest + 1] === 'complete') {
    kind = 'complete'
    upstream = '/tasks/' + encodeURIComponent(segs[rest] as string) + '/complete'
  } else {
    return NOT_FOUND
  }
  if (!METHODS[kind].has(method)) {
    return { status: 405, code: 'method_not_allowed', message: `method ${method} not allowed on this route`, allow: ALLOW[kind] }
  }
  if (pathUser !== undefined && pathUser !== identity.sub) {
    return { status: 403, code: 'forbidden_user', message: 'the user in the path is not the authenticated user' }
  }
  if (query.length > 0 && !QUERY_OK.test(query)) {
    return { status: 400, code: 'bad_request', message: 'invalid characters in query string' }
  }
  return {
    kind,
    upstreamPath: upstream,
    query: query.length > 1 ? query.slice(1) : '',
    publicPrefix: pathUser === undefined ? '/api' : '/api/' + encodeURIComponent(pathUser)
  }
}

export function isRejection (r: AuthorizedRoute | RouteRejection): r is RouteRejection {
  return 'status' in r
}
