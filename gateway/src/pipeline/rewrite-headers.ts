// Stage 3 — rewrite headers: the task service receives an allow-list of the client's headers, then the
// headers the gateway sets itself. Nothing else.
//
// An allow-list, not a deny-list: a header the task service does not need is dropped whatever it is
// called, so no identity header of any platform, present or future (X-Amzn-Oidc-*,
// X-MS-Client-Principal*, Impersonate-User, X-Consumer-*, X-Goog-Authenticated-User-*, True-Client-IP,
// User-Id, X-Forwarded-User, every spelling of X-User-Id, …), can reach it. Names are compared as Node
// delivers them, lower-cased, and exactly: `x_user_id`, `X.User.Id` or `content_type` are simply not
// on the list.

/**
 * Client headers the task service receives (as sent; a repeated list field joined with ", ", a repeated
 * SINGLE_VALUED one sent once): content negotiation, conditional requests, the body's type and length. `authorization` too with
 * FORWARD_AUTHORIZATION=true. A header the client lists in `Connection` is hop-by-hop and never
 * forwarded, even if it is on this list.
 */
export const FORWARDED_REQUEST_HEADERS: readonly string[] = [
  'accept', 'accept-encoding', 'accept-language',
  'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since',
  'content-type', 'content-length'
]

/**
 * Headers the gateway sets on every forwarded request, overwriting: a client value of the same name is
 * never used (none of these is on the list above; the client's X-Request-Id becomes the request id only
 * when well-formed, see wellFormedRequestId in packages/identity-rules). A new gateway-set header (e.g. a signed identity assertion)
 * is added here and in the "set by the gateway" block of rewriteHeaders(); the property test
 * (gateway/test/properties.test.ts) allows exactly these two lists.
 */
export const GATEWAY_SET_HEADERS: readonly string[] = [
  'x-user-id', 'x-gateway-assertion', 'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host',
  // W3C trace context: the client's continued with the gateway's hop, or a new trace (trace-context.ts).
  'traceparent', 'tracestate'
]

const FORWARDED = new Set(FORWARDED_REQUEST_HEADERS)

/**
 * Listed fields that are not lists (RFC 9110 §5.3): repeated, they are not joined into a value nobody
 * sent; the first is forwarded, the one Node keeps in request.headers — so the task service parses the
 * same Content-Type the gateway read, not "application/json, text/plain".
 */
export const SINGLE_VALUED: ReadonlySet<string> = new Set(['content-type', 'content-length', 'if-modified-since', 'if-unmodified-since'])

const HOST = /^[A-Za-z0-9.\-:[\]]{1,255}$/

export interface RewriteInput {
  rawHeaders: readonly string[]
  sub: string
  /** The signed identity assertion for sub (X-Gateway-Assertion). */
  assertion: string
  requestId: string
  clientIp: string | undefined
  proto: 'http' | 'https'
  forwardAuthorization: boolean
  /** The trace context to send (trace-context.ts); none when absent. */
  traceparent?: string | undefined
  tracestate?: string | undefined
}

const NON_ASCII = /[^\p{ASCII}]/u

/** `s` as UTF-8 bytes spelled one Latin-1 character per byte (how Node writes a header value): `s` itself when ASCII. */
function latin1Bytes (s: string): string {
  return !NON_ASCII.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1')
}

/** Builds the complete header set sent to the task service. */
export function rewriteHeaders (input: RewriteInput): Record<string, string> {
  const raw = input.rawHeaders
  // Headers the client lists in Connection (hop-by-hop by declaration).
  let connectionListed: Set<string> | undefined
  let clientHost: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    if (name === 'connection') {
      for (const t of (raw[i + 1] as string).split(',')) {
        const n = t.trim().toLowerCase()
        if (n !== '') (connectionListed ??= new Set()).add(n)
      }
    } else if (name === 'host' && clientHost === undefined) {
      clientHost = raw[i + 1] as string
    }
  }
  // No prototype: no header name can reach Object.prototype through this object.
  const out: Record<string, string> = Object.create(null) as Record<string, string>
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    if (!FORWARDED.has(name) && !(name === 'authorization' && input.forwardAuthorization)) continue
    if (connectionListed?.has(name) === true) continue
    const value = raw[i + 1] as string
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (!SINGLE_VALUED.has(name)) out[name] = prev + ', ' + value
  }
  // ---- set by the gateway (GATEWAY_SET_HEADERS): set, never appended ----
  out['x-user-id'] = latin1Bytes(input.sub)
  out['x-gateway-assertion'] = input.assertion
  out['x-request-id'] = input.requestId
  if (input.clientIp !== undefined) out['x-forwarded-for'] = input.clientIp
  out['x-forwarded-proto'] = input.proto
  if (clientHost !== undefined && HOST.test(clientHost)) out['x-forwarded-host'] = clientHost
  if (input.traceparent !== undefined && input.traceparent !== '') out.traceparent = input.traceparent
  if (input.tracestate !== undefined) out.tracestate = input.tracestate
  return out
}
