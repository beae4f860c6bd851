// The task service's response headers as the client gets them: what is dropped, and how URI
// references are made public. Used by the forwarder (forward.ts) when it writes a forwarded head.
//
// Dropped: hop-by-hop headers and every header the task service lists in `Connection`; version banners;
// state and cache directives meant for other parties (Set-Cookie: the gateway's clients carry bearer
// tokens, never the task service's cookies; CDN-Cache-Control, *-CDN-Cache-Control, Surrogate-Control:
// no CDN may cache a per-user answer); every Access-Control-* (only the gateway decides CORS);
// instructions to a web server in front of the gateway (X-Accel-* for nginx, X-Sendfile,
// X-Lighttpd-Send-File, X-LiteSpeed-Location: a server acting on them would serve or redirect to
// internal locations); the internal identity headers (X-User-Id, X-Gateway-Assertion: an assertion is
// a credential for the task service and never leaves the private side).
//
// URI references (Location, Content-Location, Link, the URL in Refresh) survive only when they name a
// clean path under /tasks on the task service: a path reference (`/tasks…`) or an absolute URL on the
// task service's own origin in a spelling the gateway can know. They become that path under the public
// prefix the client used — relative to the gateway's origin, or absolute on PUBLIC_URL when it is set.
// Anything else (other hosts, scheme-relative `//host`, backslashes, `/\host`, dot segments, encoded
// slashes, control characters, other addresses of the task service) is dropped, never passed through:
// a redirect can only ever lead back into this API.
import type { IncomingHttpHeaders } from 'node:http'

export interface ReferenceRules {
  /** The task service's origin, parsed (references on it are mapped to public paths). */
  upstream: URL
  /** PUBLIC_URL's origin (no trailing slash), or undefined: references are then origin-relative paths. */
  publicOrigin: string | undefined
}

export function referenceRules (upstreamOrigin: string, publicUrl: string | undefined): ReferenceRules {
  return { upstream: new URL(upstreamOrigin), publicOrigin: publicUrl === undefined ? undefined : new URL(publicUrl).origin }
}

const DROP_RESPONSE = new Set([
  // hop-by-hop
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'transfer-encoding', 'upgrade', 'trailer', 'te',
  // banners
  'server', 'x-powered-by', 'via', 'alt-svc',
  // state and cache directives for other parties
  'set-cookie', 'set-cookie2', 'cdn-cache-control', 'surrogate-control',
  // instructions to a web server in front
  'x-sendfile', 'x-lighttpd-send-file', 'x-litespeed-location',
  // internal identity
  'x-user-id', 'x-gateway-assertion'
])

/** True when a task-service response header of this (lower-case) name never reaches the client. */
export function isDroppedResponseHeader (name: string): boolean {
  return DROP_RESPONSE.has(name) || name.startsWith('access-control-') || name.startsWith('x-accel-') || name.endsWith('-cdn-cache-control')
}

function isLoopbackName (hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

/**
 * True when `u` names the task service: its configured origin in any spelling the WHATWG parser
 * normalizes (IPv4 in hex or short forms, host case), a trailing dot, and, when the task service is
 * configured on a loopback address, any loopback name (localhost, 127.x.x.x, [::1]) with the same
 * scheme and port.
 */
function isUpstreamOrigin (u: URL, upstream: URL): boolean {
  if (u.protocol !== upstream.protocol || u.port !== upstream.port) return false
  const host = u.hostname.replace(/\.$/, '')
  const upHost = upstream.hostname.replace(/\.$/, '')
  return host === upHost || (isLoopbackName(host) && isLoopbackName(upHost))
}

// RFC 3986 pchar (segments) and query/fragment characters; no whitespace, no backslash, no controls.
const SEGMENT = "(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+"
const QUERY = "(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*"
const CLEAN_TASKS_PATH = new RegExp(`^/tasks(?:/${SEGMENT})*(?:\\?${QUERY})?(?:#${QUERY})?$`)
/** A dot segment in any spelling, or an encoded slash, backslash or control character in a segment. */
const UNSAFE_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?=$|[/?#])|%(?:2f|5c|[01][0-9a-f]|7f)/i

/** True for `/tasks`, `/tasks/<segment>…` with an optional query and fragment, nothing that could escape it. */
export function isCleanTasksPath (path: string): boolean {
  if (!CLEAN_TASKS_PATH.test(path)) return false
  const end = path.search(/[?#]/)
  return !UNSAFE_SEGMENT.test(end === -1 ? path : path.slice(0, end))
}

/**
 * Maps a URI reference from the task service to the public one: `prefix` + the /tasks path, made
 * absolute on PUBLIC_URL when set. Undefined when it must be dropped.
 */
export function toPublicReference (uri: string, prefix: string, rules: ReferenceRules): string | undefined {
  let path: string
  if (uri.startsWith('/') && !uri.startsWith('//')) {
    path = uri
  } else if (/^[a-z][a-z0-9+.-]*:/i.test(uri)) {
    let u: URL
    try {
      u = new URL(uri)
    } catch {
      return undefined
    }
    if (!isUpstreamOrigin(u, rules.upstream)) return undefined
    // The parsed form: the raw text may hide dot segments or backslashes the parser resolved.
    path = u.pathname + u.search + u.hash
  } else {
    // Scheme-relative (`//host`), relative paths, query- or fragment-only references, empty values.
    return undefined
  }
  if (!isCleanTasksPath(path)) return undefined
  return (rules.publicOrigin ?? '') + prefix + path
}

/** `Refresh: <delay>[; url=<uri>]` with the URI made public; undefined (drop) when it cannot be. */
export function rewriteRefresh (value: string, prefix: string, rules: ReferenceRules): string | undefined {
  const m = /^\s*(\d+(?:\.\d*)?)\s*(?:[;,]\s*(?:url\s*=\s*)?(.*))?$/i.exec(value)
  if (m === null) return undefined
  const delay = m[1] as string
  let uri = (m[2] ?? '').trim()
  if (uri === '') return delay
  if ((uri.startsWith("'") && uri.endsWith("'")) || (uri.startsWith('"') && uri.endsWith('"'))) uri = uri.slice(1, -1)
  const r = toPublicReference(uri, prefix, rules)
  return r === undefined ? undefined : `${delay}; url=${r}`
}

/**
 * A Link header (RFC 8288) with each target made public. Entries whose target cannot be, and entries
 * with an `anchor` (it would change the link's context to another resource), are left out; undefined
 * when nothing is left or the value is not a list of `<uri>; params` entries.
 */
export function rewriteLink (value: string, prefix: string, rules: ReferenceRules): string | undefined {
  const kept: string[] = []
  const n = value.length
  let i = 0
  while (i < n) {
    while (i < n && (value[i] === ' ' || value[i] === '\t' || value[i] === ',')) i++
    if (i >= n) break
    if (value[i] !== '<') return undefined
    const close = value.indexOf('>', i)
    if (close === -1) return undefined
    const target = value.slice(i + 1, close).trim()
    // Parameters run to the next comma outside a quoted string.
    let j = close + 1
    let quoted = false
    for (; j < n; j++) {
      const c = value[j]
      if (quoted) {
        if (c === '\\') j++
        else if (c === '"') quoted = false
      } else if (c === '"') {
        quoted = true
      } else if (c === ',') {
        break
      }
    }
    const params = value.slice(close + 1, j)
    i = j + 1
    if (/(?:^|;)\s*anchor\s*=/i.test(params)) continue
    const r = toPublicReference(target, prefix, rules)
    if (r !== undefined) kept.push('<' + r + '>' + params)
  }
  return kept.length > 0 ? kept.join(', ') : undefined
}

/**
 * Appends the task service's response headers, as the client gets them, to `out`, a flat
 * [name, value, …] list (what writeHead takes without building an object). Names for which `owned` is
 * true are the gateway's and are skipped.
 */
export function appendUpstreamHeaders (out: string[], headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, prefix: string, rules: ReferenceRules, owned: (name: string) => boolean): void {
  let listed: string[] | undefined
  const conn = headers.connection
  if (conn !== undefined) listed = (Array.isArray(conn) ? conn.join(',') : conn).toLowerCase().split(',').map((s) => s.trim())
  for (const name of Object.keys(headers)) {
    const v = headers[name]
    if (v === undefined) continue
    const lower = name.toLowerCase()
    if (isDroppedResponseHeader(lower) || listed?.includes(lower) === true || owned(lower)) continue
    let r: string | undefined
    switch (lower) {
      case 'location':
      case 'content-location':
        // A repeated Location is ambiguous: neither is trusted.
        if (Array.isArray(v) && v.length !== 1) continue
        r = toPublicReference((Array.isArray(v) ? v[0] as string : v).trim(), prefix, rules)
        if (r !== undefined) out.push(lower, r)
        continue
      case 'refresh':
        if (Array.isArray(v) && v.length !== 1) continue
        r = rewriteRefresh(Array.isArray(v) ? v[0] as string : v, prefix, rules)
        if (r !== undefined) out.push(lower, r)
        continue
      case 'link':
        for (const x of Array.isArray(v) ? v : [v]) {
          r = rewriteLink(x, prefix, rules)
          if (r !== undefined) out.push(lower, r)
        }
        continue
      default:
        if (Array.isArray(v)) for (const x of v) out.push(lower, x)
        else out.push(lower, v)
    }
  }
}
