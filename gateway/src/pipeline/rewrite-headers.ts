// Stage 3 — rewrite headers: strip, then set.
//
// Identity-header firewall. Every client header is compared by its normalized name: lower case with
// "-", "_" and "." removed, so "X-User-Id", "x_user_id", "X.User.Id", "x-user_id" and "XUSERID" are
// one name ("xuserid"). Exact-string stripping is what went wrong in oauth2-proxy and Traefik
// advisories. Dropped, in every spelling and every duplicate:
//   - the reserved families x-user-*, x-auth-*, x-forwarded-*, x-original-*, x-remote-*, x-real-*,
//     and remote-user, forwarded, x-request-id (re-set below), x-rewrite-url, x-http-method-override,
//     x-http-method, x-method-override, x-client-ip;
//   - hop-by-hop headers (connection, keep-alive, proxy-connection, te, trailer, transfer-encoding,
//     upgrade, host, expect, http2-settings) and every header the client lists in `Connection`;
//   - authorization (unless FORWARD_AUTHORIZATION=true), proxy-authorization, cookie.
// Then the gateway sets X-User-Id (= sub, overwriting), X-Request-Id, X-Forwarded-For/-Proto/-Host.
// Because headers named in `Connection` are removed BEFORE the gateway's own headers are set (and the
// `Connection` header itself is never forwarded), a client cannot use it to remove X-User-Id.

const RESERVED_PREFIXES = ['xuser', 'xauth', 'xforwarded', 'xoriginal', 'xremote', 'xreal']
const RESERVED_EXACT = new Set([
  'remoteuser', 'forwarded', 'xrequestid', 'xrewriteurl', 'xhttpmethodoverride', 'xhttpmethod',
  'xmethodoverride', 'xclientip', 'proxyauthorization', 'cookie'
])
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'host', 'expect', 'http2-settings'
])

/** Lower case, with "-", "_" and "." removed. */
export function squashName (name: string): string {
  return name.toLowerCase().replace(/[-_.]/g, '')
}

/** True when a client-sent header of this name is never forwarded (identity firewall). */
export function isReservedHeader (name: string): boolean {
  const s = squashName(name)
  if (RESERVED_EXACT.has(s)) return true
  for (const p of RESERVED_PREFIXES) if (s.startsWith(p)) return true
  return false
}

// Memo of name → verdict (names repeat across requests; bounded).
const verdictCache = new Map<string, boolean>()
function reservedCached (name: string): boolean {
  let v = verdictCache.get(name)
  if (v === undefined) {
    v = isReservedHeader(name)
    if (verdictCache.size < 4096) verdictCache.set(name, v)
  }
  return v
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
/** A client X-Request-Id is kept only when well-formed (1–128 of [A-Za-z0-9._:-]). */
export function wellFormedRequestId (value: unknown): value is string {
  return typeof value === 'string' && REQUEST_ID.test(value)
}

const HOST = /^[A-Za-z0-9.\-:[\]]{1,255}$/

export interface RewriteInput {
  rawHeaders: readonly string[]
  sub: string
  requestId: string
  clientIp: string | undefined
  proto: 'http' | 'https'
  forwardAuthorization: boolean
}

/** Builds the complete header set sent to the task service. */
export function rewriteHeaders (input: RewriteInput): Record<string, string> {
  const raw = input.rawHeaders
  // Headers the client lists in Connection (hop-by-hop by declaration).
  let connectionListed: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      for (const t of (raw[i + 1] as string).split(',')) {
        const n = t.trim().toLowerCase()
        if (n !== '') (connectionListed ??= new Set()).add(n)
      }
    }
  }
  // No prototype: a client header named "constructor" or "__proto__" is an ordinary name here.
  const out: Record<string, string> = Object.create(null) as Record<string, string>
  let clientHost: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    const value = raw[i + 1] as string
    if (HOP_BY_HOP.has(name)) {
      if (name === 'host' && clientHost === undefined) clientHost = value
      continue
    }
    if (name === 'authorization' && !input.forwardAuthorization) continue
    if (connectionListed?.has(name) === true) continue
    if (reservedCached(name)) continue
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (name !== 'content-length') out[name] = prev + ', ' + value
  }
  // Set, never append.
  out['x-user-id'] = Buffer.from(input.sub, 'utf8').toString('latin1')
  out['x-request-id'] = input.requestId
  if (input.clientIp !== undefined) out['x-forwarded-for'] = input.clientIp
  out['x-forwarded-proto'] = input.proto
  if (clientHost !== undefined && HOST.test(clientHost)) out['x-forwarded-host'] = clientHost
  return out
}
