// Property-based tests (fast-check) of the gateway against a recording stub upstream, over raw sockets so
// header case, duplicates and odd request targets reach the gateway exactly as generated.
// Properties, for random and mutated tokens, header sets, paths and methods:
//  - never a 5xx (the stub upstream always answers 200);
//  - nothing is forwarded without a valid token;
//  - what is forwarded carries exactly one X-User-Id, whose bytes are the UTF-8 bytes of the token's `sub`;
//  - what is forwarded carries no header outside the allow-list and the gateway's own headers, the
//    allow-listed ones as the client sent them, the gateway's own with the gateway's values (an identity
//    assertion that verifies for the `sub`, the peer's address, the client's Host, a request id and trace
//    context by their rules);
//  - the forwarded path always starts with /tasks.
import t from 'tap'
import fc from 'fast-check'
import { startUpstream, type Recorded, type StubUpstream } from './helpers/upstream.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import { jwtVerify } from 'jose'
import { wellFormedRequestId } from 'identity-rules'
import { ASSERTION_KEYS, signHs } from '../../support/tokens.js'
import { rawHttp } from './helpers/raw.js'
import { FORWARDED_REQUEST_HEADERS, GATEWAY_SET_HEADERS, SINGLE_VALUED } from '../src/pipeline/rewrite-headers.js'

const RUNS = Number(process.env.PROPERTY_RUNS ?? 150)

let up: StubUpstream
let gw: RunningGateway
const SUB = 'user-prop'
let valid: string

t.before(async () => {
  up = await startUpstream()
  gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  valid = await signHs({ sub: SUB })
})
t.teardown(async () => {
  await gw.close()
  await up.close()
})

const inputs = { tokens: 0, headers: 0, paths: 0 }
const forwardedCount = { tokens: 0, headers: 0, paths: 0 }

/** Sends one raw request; returns the status and what the upstream received for it. */
async function send (method: string, target: string, headers: Array<[string, string]>, body = ''): Promise<{ status: number, forwarded: Recorded[] }> {
  const before = up.received.length
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: gateway.test', ...headers.map(([k, v]) => `${k}: ${v}`)]
  if (body !== '') lines.push(`Content-Length: ${Buffer.byteLength(body)}`)
  lines.push('Connection: close')
  let status: number
  try {
    // Latin-1: each character is one byte on the wire (obs-text and UTF-8 are generated as such bytes).
    status = (await rawHttp(gw.port, Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body, 'latin1'))).status
  } catch {
    status = 0 // the gateway closed the connection without an answer (e.g. an unparseable request line)
  }
  // The stub records when a request has ended; give a forwarded request a moment to be recorded.
  await new Promise((resolve) => setImmediate(resolve))
  return { status, forwarded: up.received.slice(before).filter((r) => r.url !== '/readyz') }
}

function userIdValues (r: Recorded): string[] {
  const out: string[] = []
  for (let i = 0; i < r.rawHeaders.length; i += 2) if ((r.rawHeaders[i] as string).toLowerCase() === 'x-user-id') out.push(r.rawHeaders[i + 1] as string)
  return out
}

function checkForwarded (forwarded: Recorded[], sub: string): void {
  for (const r of forwarded) {
    // Node reads header bytes as Latin-1: back to bytes, compared with the UTF-8 bytes of the sub.
    const ids = userIdValues(r)
    if (ids.length !== 1 || !Buffer.from(ids[0] as string, 'latin1').equals(Buffer.from(sub, 'utf8'))) throw new Error(`forwarded with X-User-Id ${JSON.stringify(ids)}`)
    if (!(r.url === '/tasks' || r.url.startsWith('/tasks/') || r.url.startsWith('/tasks?'))) throw new Error(`forwarded to ${r.url}`)
  }
}

// ---- tokens -----------------------------------------------------------------------------------------------
const b64chars = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split(''))
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), ch: b64chars }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), s: fc.string({ maxLength: 10 }) }),
  fc.record({ kind: fc.constant('swap' as const) }),
  fc.record({ kind: fc.constant('header' as const), alg: fc.constantFrom('none', 'HS512', 'RS256', 'EdDSA', 'hs256', '') }),
  fc.record({ kind: fc.constant('payload' as const), sub: fc.oneof(fc.string({ maxLength: 300 }), fc.constant(null), fc.integer()) })
)
function mutate (token: string, m: { kind: string, at?: number, ch?: string, s?: string, alg?: string, sub?: unknown }): string {
  const [h, p, s] = token.split('.') as [string, string, string]
  switch (m.kind) {
    case 'flip': { const i = (m.at ?? 0) % token.length; return token.slice(0, i) + (m.ch ?? 'A') + token.slice(i + 1) }
    case 'truncate': return token.slice(0, (m.at ?? 0) % token.length)
    case 'append': return token + (m.s ?? '')
    case 'swap': return `${p}.${h}.${s}`
    case 'header': return `${Buffer.from(JSON.stringify({ alg: m.alg, typ: 'JWT' })).toString('base64url')}.${p}.${s}`
    default: return `${h}.${Buffer.from(JSON.stringify({ sub: m.sub, exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url')}.${s}`
  }
}
const scheme = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Bearer ', 'Basic', 'Token', '')

t.test('property: random and mutated tokens — never a 5xx; forwarded only when valid, then with X-User-Id = sub', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        { weight: 1, arbitrary: fc.constant({ token: '', derived: true }) }, // the valid token itself
        { weight: 3, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => ({ token: ms.reduce((tok, m) => mutate(tok, m), valid), derived: true })) },
        { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => ({ token: s.replace(/[\r\n]/g, ''), derived: false })) },
        { weight: 1, arbitrary: fc.array(fc.string({ unit: b64chars, maxLength: 60 }), { minLength: 1, maxLength: 4 }).map((parts) => ({ token: parts.join('.'), derived: false })) }
      ),
      scheme,
      async (gen, sch) => {
        inputs.tokens++
        const token = gen.token === '' && gen.derived ? valid : gen.token
        const derived = gen.derived
        const { status, forwarded } = await send('GET', '/api/tasks', [['Authorization', `${sch} ${token}`.replace(/[^\x20-\x7e]/g, '')]])
        if (status >= 500) throw new Error(`status ${status}`)
        if (forwarded.length > 0) {
          // Accepted: it must be the valid token (up to base64url spellings of the same bytes).
          const [h, p] = token.split('.')
          const [vh, vp] = valid.split('.')
          if (!derived || h !== vh || p !== vp) throw new Error(`forwarded with token ${token}`)
          checkForwarded(forwarded, SUB)
          forwardedCount.tokens++
        } else if (token === valid && /^bearer $/i.test(sch + ' ')) {
          throw new Error(`the valid token was not forwarded (status ${status})`)
        } else if (status === 200) {
          throw new Error('200 without forwarding')
        }
      }
    ),
    { numRuns: RUNS }
  )
  t.ok(inputs.tokens >= RUNS, `${inputs.tokens} tokens tried`)
  t.ok(forwardedCount.tokens > 0, `${forwardedCount.tokens} of them valid and forwarded (the property is not vacuous)`)
})

// ---- header sets ------------------------------------------------------------------------------------------
// Identity headers of this and other platforms, each in every case spelling (fc.mixedCase), and families of
// them with random suffixes; the gateway's own header names as a client would send them; hop-by-hop and
// routing headers; allow-listed names (which must pass, as sent); arbitrary RFC 9110 tokens.
const IDENTITY_NAMES = [
  'x-user-id', 'x_user_id', 'X.User.Id', 'x-user_id', 'XUSERID', 'x-userid', 'user-id', 'userid', 'x-user', 'x-auth-user', 'x-forwarded-user',
  'remote-user', 'x-remote-user', 'x-authenticated-user', 'x-authenticated-userid', 'x-webauth-user',
  'x-amzn-oidc-data', 'x-amzn-oidc-identity', 'x-amzn-oidc-accesstoken',
  'x-ms-client-principal', 'x-ms-client-principal-id', 'x-ms-client-principal-name', 'x-ms-client-principal-idp', 'x-ms-token-aad-access-token',
  'impersonate-user', 'impersonate-group', 'impersonate-uid', 'impersonate-extra-scopes',
  'x-consumer-id', 'x-consumer-username', 'x-consumer-custom-id', 'x-consumer-groups', 'x-credential-identifier', 'x-anonymous-consumer',
  'x-goog-authenticated-user-email', 'x-goog-authenticated-user-id', 'x-goog-iap-jwt-assertion',
  'true-client-ip', 'cf-connecting-ip', 'cf-access-authenticated-user-email', 'cf-access-jwt-assertion', 'x-real-ip', 'x-client-ip',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-uri',
  'x-forwarded-server', 'x-forwarded-email', 'x-forwarded-groups', 'x-forwarded-client-cert', 'forwarded',
  'x-original-url', 'x-original-uri', 'x-original-method', 'x-rewrite-url', 'x-http-method-override',
  'x-gateway-assertion', 'x-request-id', 'traceparent', 'tracestate', 'x-hasura-user-id', 'x-jwt-payload', 'x-userinfo',
  'cookie', 'proxy-authorization', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'via', 'origin', 'referer',
  'cache-control', 'range', 'if-range', 'prefer', 'max-forwards'
]
const IDENTITY_PREFIXES = ['x-amzn-oidc-', 'x-ms-client-principal', 'impersonate-', 'impersonate-extra-', 'x-consumer-', 'x-goog-authenticated-user-',
  'x-forwarded-', 'x-user-', 'x-auth-request-', 'cf-access-', 'x-gateway-', 'x-request-', 'x-original-', 'x-envoy-', 'x-hasura-', 'user-']
const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('')
// Framing and protocol-switching headers are left out: they change what a request is, not what it says.
const FRAMING = /^(content-length|transfer-encoding|host|authorization|connection|expect|upgrade)$/i
const tokenName = fc.string({ unit: fc.constantFrom(...TCHAR), minLength: 1, maxLength: 24 })
const headerName = fc.oneof(
  { weight: 4, arbitrary: fc.mixedCase(fc.constantFrom(...IDENTITY_NAMES)) },
  { weight: 2, arbitrary: fc.mixedCase(fc.tuple(fc.constantFrom(...IDENTITY_PREFIXES), tokenName).map(([p, s]) => p + s)) },
  { weight: 2, arbitrary: fc.mixedCase(fc.constantFrom(...FORWARDED_REQUEST_HEADERS.filter((n) => n !== 'content-length'))) },
  { weight: 2, arbitrary: tokenName }
).filter((n) => !FRAMING.test(n))
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/
const hex = (n: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'.split('')), minLength: n, maxLength: n })
// Header values: visible ASCII with inner spaces and tabs; obs-text (bytes 0x80-0xff, sent as they are);
// values that mean something to someone (other users, addresses, request ids, trace contexts, tokens).
const vchar = fc.constantFrom(...Array.from({ length: 0x7f - 0x21 }, (_, i) => String.fromCharCode(0x21 + i)))
const obsText = fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c))
const headerValue = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: fc.oneof({ weight: 8, arbitrary: vchar }, { weight: 1, arbitrary: fc.constantFrom(' ', '\t') }), maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.oneof(vchar, obsText), maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }).map((s) => Buffer.from(s, 'utf8').toString('latin1')) },
  { weight: 2, arbitrary: fc.constantFrom('admin', 'attacker', 'other-user', '0', 'root', '127.0.0.1', '10.0.0.1, 6.6.6.6', 'for=6.6.6.6;proto=https', 'https', 'evil.example', '/admin', 'session=x', 'req-123', 'bad id', 'application/json', 'gzip', '*') },
  { weight: 1, arbitrary: fc.tuple(hex(32), hex(16), fc.constantFrom('00', '01')).map(([tr, p, f]) => `00-${tr}-${p}-${f}`) }
).map((v) => v.replace(/^[ \t]+|[ \t]+$/g, '')).map((v) => (v === '' ? 'v' : v)) // HTTP trims OWS: what is generated is what is sent
// What the task service may receive: the allow-list, the gateway's own headers, and the framing undici writes.
const MAY_ARRIVE = new Set([...FORWARDED_REQUEST_HEADERS, ...GATEWAY_SET_HEADERS, 'host', 'connection'])
const ONCE = ['x-user-id', 'x-gateway-assertion', 'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'traceparent', 'host']
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
// Users with ASCII, Latin-1-range and astral `sub`s: X-User-Id is compared as bytes.
const HEADER_SUBS = [SUB, 'alice@example.com', 'zoë', '日本語ユーザー', 'user 😀 x', 'ÿ\u00a0ÿ']
const tokensBySub = new Map<string, string>()

/** The values of `name` (case-insensitive) in a raw header list, in order. */
function valuesOf (raw: readonly string[], name: string): string[] {
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === name) out.push(raw[i + 1] as string)
  return out
}

/** Everything the task service received for one forwarded request, checked against what the client sent. */
async function checkHeaders (r: Recorded, sent: Array<[string, string]>, connectionListed: Set<string>, sub: string): Promise<number> {
  const raw = r.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    if (!MAY_ARRIVE.has((raw[i] as string).toLowerCase())) throw new Error(`header ${raw[i]} outside the allow-list forwarded`)
  }
  for (const n of ONCE) {
    if (n === 'x-forwarded-host') continue
    if (valuesOf(raw, n).length !== 1) throw new Error(`${n} arrived ${valuesOf(raw, n).length} times`)
  }
  const one = (n: string): string | undefined => valuesOf(raw, n)[0]
  // Gateway-set values: the token's identity, the peer, the scheme and host of the client's request.
  const userId = Buffer.from(one('x-user-id') as string, 'latin1')
  if (!userId.equals(Buffer.from(sub, 'utf8'))) throw new Error(`X-User-Id bytes ${userId.toString('hex')} for sub ${JSON.stringify(sub)}`)
  const { payload } = await jwtVerify(one('x-gateway-assertion') as string, ASSERTION_KEYS.publicKey, { algorithms: ['EdDSA'], typ: 'gateway-assertion+jwt', issuer: 'gateway', audience: 'task-service' })
  if (payload.sub !== sub) throw new Error(`assertion for ${JSON.stringify(payload.sub)}, not ${JSON.stringify(sub)}`)
  if (one('x-forwarded-for') !== '127.0.0.1') throw new Error(`X-Forwarded-For ${one('x-forwarded-for')}`)
  if (one('x-forwarded-proto') !== 'http') throw new Error(`X-Forwarded-Proto ${one('x-forwarded-proto')}`)
  if (valuesOf(raw, 'x-forwarded-host').join('|') !== 'gateway.test') throw new Error(`X-Forwarded-Host ${JSON.stringify(valuesOf(raw, 'x-forwarded-host'))}`)
  if (one('host') !== new URL(up.url).host) throw new Error(`Host ${one('host')}`)
  const sentValues = (n: string): string[] => sent.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v)
  // The client's X-Request-Id only when sent once and well-formed (identity-rules), else a new UUID.
  const sentIds = sentValues('x-request-id')
  const expectedId = sentIds.length === 1 && wellFormedRequestId(sentIds[0]) ? sentIds[0] : undefined
  if (expectedId !== undefined ? one('x-request-id') !== expectedId : !UUID.test(one('x-request-id') as string)) throw new Error(`X-Request-Id ${one('x-request-id')} for ${JSON.stringify(sentIds)}`)
  // Trace context: the client's trace continued with the gateway's own parent id, or a new trace;
  // a tracestate only with the client's trace, and then the client's.
  const tp = TRACEPARENT.exec(one('traceparent') as string)
  if (tp === null) throw new Error(`traceparent ${one('traceparent')}`)
  const sentTp = sentValues('traceparent')
  if (sentTp.some((v) => v.split('-')[2] === tp[2])) throw new Error('the client\'s parent id was forwarded as the gateway\'s')
  const clientTp = sentTp.length === 1 ? TRACEPARENT.exec(sentTp[0] as string) : null
  if (clientTp !== null && (tp[1] !== clientTp[1] || tp[0].slice(-2) !== clientTp[0].slice(-2))) throw new Error(`the client's trace ${sentTp[0]} was not continued: ${tp[0]}`)
  const continued = clientTp !== null
  const ts = valuesOf(raw, 'tracestate')
  if (ts.length > 0 && (!continued || ts.length !== 1 || ts[0] !== sentValues('tracestate').join(', '))) throw new Error(`tracestate ${JSON.stringify(ts)} forwarded`)
  // Allow-listed client headers: exactly as sent (a list field's lines joined in order, a single-valued
  // field's first line), unless named in Connection.
  let listed = 0
  for (const n of FORWARDED_REQUEST_HEADERS) {
    if (n === 'content-length') continue
    const got = valuesOf(raw, n)
    const want = connectionListed.has(n) ? [] : sentValues(n)
    if (want.length === 0 ? got.length !== 0 : (got.length !== 1 || got[0] !== (SINGLE_VALUED.has(n) ? want[0] : want.join(', ')))) {
      throw new Error(`${n}: sent ${JSON.stringify(want)}, forwarded ${JSON.stringify(got)}`)
    }
    listed += got.length
  }
  return listed
}

t.test('property: random header sets (identity headers of any platform in any case, duplicates, Connection lists, arbitrary tokens) — the task service receives the allow-list as sent and the gateway\'s own headers with the gateway\'s values, nothing else', async (t) => {
  for (const sub of HEADER_SUBS) tokensBySub.set(sub, await signHs({ sub }))
  let listedForwarded = 0
  let refused = 0
  let unsupportedType = 0
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(headerName, headerValue), { maxLength: 16 }),
      fc.array(fc.oneof(headerName, fc.constantFrom('close', 'keep-alive', 'x-user-id', 'X-User-Id', 'x-gateway-assertion', 'accept')), { maxLength: 4 }),
      fc.option(fc.constantFrom(...HEADER_SUBS), { freq: 5 }),
      fc.boolean(),
      async (headers, connectionList, sub, withBody) => {
        inputs.headers++
        const hs: Array<[string, string]> = [...headers]
        const connectionListed = new Set(connectionList.map((n) => n.toLowerCase()))
        if (connectionList.length > 0) hs.push(['Connection', connectionList.join(', ')])
        if (sub !== null) hs.push(['Authorization', `Bearer ${tokensBySub.get(sub) as string}`])
        const { status, forwarded } = await send(withBody ? 'POST' : 'GET', '/api/tasks', hs, withBody ? '{"title":"t"}' : '')
        if (sub === null) {
          if (status !== 401 || forwarded.length > 0) throw new Error(`without a token: status ${status}, ${forwarded.length} forwarded`)
          refused++
          return
        }
        // A body whose Content-Type is not a media type is refused (415) before anything is forwarded.
        if (status === 415 && forwarded.length === 0 && withBody && hs.some(([k]) => k.toLowerCase() === 'content-type')) { unsupportedType++; return }
        if (status !== 200 || forwarded.length !== 1) throw new Error(`with a valid token: status ${status}, ${forwarded.length} forwarded`)
        const r = forwarded[0] as Recorded
        checkForwarded(forwarded, sub)
        if (withBody && valuesOf(r.rawHeaders, 'content-length').join() !== '13') throw new Error(`Content-Length ${JSON.stringify(valuesOf(r.rawHeaders, 'content-length'))}`)
        listedForwarded += await checkHeaders(r, hs, connectionListed, sub)
        forwardedCount.headers++
      }
    ),
    { numRuns: RUNS * 2 }
  )
  t.ok(inputs.headers >= RUNS * 2, `${inputs.headers} header sets tried`)
  t.ok(forwardedCount.headers > RUNS, `${forwardedCount.headers} forwarded and checked`)
  t.ok(refused > 0, `${refused} without a token refused, nothing forwarded`)
  t.comment(`${unsupportedType} bodies with a Content-Type that is not a media type refused (415), nothing forwarded`)
  t.ok(listedForwarded > 0, `${listedForwarded} allow-listed client headers passed as sent (the allow-list is not empty in practice)`)
})

// ---- paths and methods ------------------------------------------------------------------------------------
const segment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('api', 'tasks', 'complete', SUB, 'other-user', 'abc', '123') },
  { weight: 3, arbitrary: fc.constantFrom('..', '.', '%2e%2e', '%2E%2e', '%2e', '%2f', '%2F', '%5c', '%00', '', '%', '%zz', '%C3%A9', 'é', '日本', '%E6%97%A5', '..%2f', '.%2e', ';', 'readyz', 'healthz', '%252e%252e') },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'abc-_.~%2e0123456789ABC'.split('')), maxLength: 8 }) }
)
/** Mostly real routes with tricks spliced in at random places; sometimes pure noise. */
const pathSegments = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.tuple(
      fc.constantFrom(['api', 'tasks'], ['api', SUB, 'tasks'], ['api', 'other-user', 'tasks'], ['api', '%75ser-prop', 'tasks'], ['api', '%74asks']),
      fc.array(fc.constantFrom('abc', '123', 'x%20y', '%C3%A9', '%2e%2e%2fadmin'), { maxLength: 1 }),
      fc.boolean(),
      fc.oneof(fc.constant([] as Array<[number, string]>), fc.array(fc.tuple(fc.nat(6), segment), { minLength: 1, maxLength: 2 }))
    ).map(([base, id, complete, inserts]) => {
      const out = [...base, ...id, ...(complete && id.length > 0 ? ['complete'] : [])]
      for (const [at, seg] of inserts) out.splice(at % (out.length + 1), 0, seg)
      return out
    })
  },
  { weight: 1, arbitrary: fc.array(segment, { minLength: 0, maxLength: 7 }) }
)
const method = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE') },
  { weight: 1, arbitrary: fc.constantFrom('HEAD', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'get', 'FOO') }
)
const queryPart = fc.oneof(fc.constant(''), fc.string({ unit: fc.constantFrom(...'abc=&%2e./?#0123'.split('')), maxLength: 12 }).map((q) => '?' + q))

t.test('property: random paths and methods — never a 5xx; forwarded only with a valid token, only under /tasks, with one X-User-Id = sub', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      pathSegments,
      fc.boolean(),
      queryPart,
      method,
      fc.boolean(),
      async (segs, lead, q, m, withToken) => {
        inputs.paths++
        const path = (lead ? '//' : '/') + segs.join('/') + q
        const target = Buffer.from(path, 'utf8').toString('latin1')
        const hs: Array<[string, string]> = withToken ? [['Authorization', `Bearer ${valid}`]] : []
        const body = ['POST', 'PUT', 'PATCH'].includes(m) ? '{"title":"t"}' : ''
        if (body !== '') hs.push(['Content-Type', 'application/json'])
        const { status, forwarded } = await send(m, target, hs, body)
        if (status >= 500) throw new Error(`${m} ${path} → ${status}`)
        if (!withToken && forwarded.length > 0) throw new Error(`${m} ${path} forwarded without a token`)
        checkForwarded(forwarded, SUB)
        forwardedCount.paths += forwarded.length
      }
    ),
    { numRuns: RUNS * 2 }
  )
  t.ok(inputs.paths >= RUNS * 2, `${inputs.paths} path/method combinations tried`)
  t.ok(forwardedCount.paths > 0, `${forwardedCount.paths} forwarded and checked`)
  t.comment(`inputs tried: ${JSON.stringify(inputs)}; forwarded and checked: ${JSON.stringify(forwardedCount)}`)
})
