// Request headers by allow-list: the task service receives only FORWARDED_REQUEST_HEADERS from the
// client plus GATEWAY_SET_HEADERS; client-sent identity headers of any platform, in every spelling and
// duplicate, are dropped; Connection-header tricks cannot remove the gateway's X-User-Id; the gateway's
// headers are set, never appended. Sent raw over a socket so every spelling reaches the gateway as written.
import t from 'tap'
import { FORWARDED_REQUEST_HEADERS, GATEWAY_SET_HEADERS, rewriteHeaders } from '../src/pipeline/rewrite-headers.js'
import { stubbedGateway } from './helpers/upstream.js'
import { startGateway } from '../../support/gateway.js'
import type { TapTest } from '../../support/test-context.js'
import { signHs } from '../../support/tokens.js'
import { rawHttp, req } from './helpers/raw.js'

const { up, gw } = await stubbedGateway(t)
const gwAuth = await startGateway({ TASK_SERVICE_URL: up.url, FORWARD_AUTHORIZATION: 'true' }, { t })
const token = await signHs({ sub: 'real-user' })

const SPOOFED: Array<[string, string]> = [
  ['X-User-Id', 'attacker'], ['x-user-id', 'attacker2'], ['X-USER-ID', 'attacker3'], ['X_User_Id', 'attacker4'],
  ['x.user.id', 'attacker5'], ['x-user_id', 'attacker6'], ['X-UserId', 'attacker7'], ['XUSERID', 'attacker8'],
  ['X-User-Email', 'a@evil'], ['X-User', 'attacker'], ['X-Auth-User', 'attacker'], ['x_auth_request_user', 'attacker'],
  ['X-Auth-Request-Email', 'a@evil'], ['X-Forwarded-User', 'attacker'], ['x_forwarded_user', 'attacker'],
  ['X-Remote-User', 'attacker'], ['Remote-User', 'attacker'], ['remote_user', 'attacker'], ['Remote.User', 'attacker'],
  ['X-Forwarded-Uri', '/admin'], ['X-Forwarded-Prefix', '/evil'], ['X-Original-URL', '/admin'], ['X-Original-Uri', '/admin'],
  ['X-Original-Method', 'DELETE'], ['X-Rewrite-URL', '/admin'], ['X-Forwarded-For', '6.6.6.6'], ['X-Forwarded-Host', 'evil.example'],
  ['X-Forwarded-Proto', 'https'], ['Forwarded', 'for=6.6.6.6;host=evil'], ['X-Real-IP', '6.6.6.6'], ['X-HTTP-Method-Override', 'DELETE'],
  ['Cookie', 'session=secret'], ['Proxy-Authorization', 'Basic eDp5']
]

// Identity headers other platforms trust (issue: 38 of them used to pass), and this gateway's own future
// X-Gateway-Assertion when a client sends it.
const PLATFORM_IDENTITY: Array<[string, string]> = [
  'X-Amzn-Oidc-Data', 'X-Amzn-Oidc-Identity', 'X-Amzn-Oidc-Accesstoken', 'X-MS-Client-Principal', 'X-MS-Client-Principal-Id',
  'X-MS-Client-Principal-Name', 'X-MS-Client-Principal-Idp', 'X-MS-Token-Aad-Access-Token', 'Impersonate-User', 'Impersonate-Group',
  'Impersonate-Uid', 'Impersonate-Extra-Scopes', 'X-Consumer-Id', 'X-Consumer-Username', 'X-Consumer-Custom-Id', 'X-Consumer-Groups',
  'X-Credential-Identifier', 'X-Anonymous-Consumer', 'X-Goog-Authenticated-User-Email', 'X-Goog-Authenticated-User-Id',
  'X-Goog-Iap-Jwt-Assertion', 'True-Client-IP', 'User-Id', 'X-Authenticated-User', 'X-Authenticated-Userid', 'X-WEBAUTH-USER',
  'X-Auth-Request-Groups', 'X-Forwarded-Email', 'X-Forwarded-Groups', 'X-Forwarded-Preferred-Username', 'X-Userinfo',
  'X-Jwt-Payload', 'X-Forwarded-Client-Cert', 'X-SSL-Client-Cert', 'CF-Connecting-IP', 'Cf-Access-Authenticated-User-Email',
  'Cf-Access-Jwt-Assertion', 'X-Endpoint-API-UserInfo', 'X-Hasura-User-Id', 'X-Hasura-Role', 'X-Gateway-Assertion'
].map((n) => [n, 'attacker'])

const ALLOWED = new Set([...FORWARDED_REQUEST_HEADERS, ...GATEWAY_SET_HEADERS, 'host', 'connection'])

/** Exactly one X-User-Id, and nothing outside the allow-list and the gateway's own headers. */
function onlyAllowed (t: TapTest, rawHeaders: string[]): void {
  const names = rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
  t.equal(names.filter((n) => n === 'x-user-id').length, 1, 'exactly one X-User-Id')
  for (const n of names) t.ok(ALLOWED.has(n), `only allow-listed and gateway-set headers reach the task service: ${n}`)
}

t.test('spoofed identity headers in every spelling and duplicate are dropped; X-User-Id = sub', async (t) => {
  const r = await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ...SPOOFED, ['X-User-Id', 'dup-attacker'], ['Accept', 'application/json']]))
  t.equal(r.status, 200)
  const got = up.tasks()[0]
  t.ok(got)
  t.equal(got?.headers['x-user-id'], 'real-user')
  t.notMatch(JSON.stringify(got?.rawHeaders), /attacker|a@evil|6\.6\.6\.6|evil\.example|\/admin|session=secret|DELETE|eDp5/)
  t.equal(got?.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(got?.headers['x-forwarded-proto'], 'http')
  t.equal(got?.headers['x-forwarded-host'], 'gateway.test')
  t.equal(got?.headers.accept, 'application/json', 'allow-listed headers pass through')
  onlyAllowed(t, got?.rawHeaders ?? [])
})

t.test('identity headers of other platforms (AWS ALB, Azure, Kubernetes, Kong, IAP, Cloudflare, …) never reach the task service', async (t) => {
  const r = await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ...PLATFORM_IDENTITY]))
  t.equal(r.status, 200)
  const got = up.tasks()[0]
  t.notMatch(JSON.stringify(got?.rawHeaders), /attacker/)
  onlyAllowed(t, got?.rawHeaders ?? [])
})

t.test('the allow-listed headers reach the task service as sent; anything else does not', async (t) => {
  const sent: Array<[string, string]> = [
    ['Accept', 'application/json'], ['Accept-Encoding', 'gzip'], ['Accept-Language', 'de-CH, en;q=0.5'],
    ['If-Match', '"e1"'], ['If-None-Match', '"e2"'], ['If-Modified-Since', 'Sat, 05 Dec 2026 00:00:00 GMT'],
    ['If-Unmodified-Since', 'Sat, 05 Dec 2026 00:00:00 GMT'], ['Content-Type', 'application/json'],
    ['Traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'], ['Tracestate', 'vendor=x'],
    ['X-Request-Id', 'client-rid-1'], ['User-Agent', 'curl/8'], ['X-Custom', 'c'], ['Origin', 'http://evil.example'],
    ['Referer', 'http://evil.example/'], ['Cache-Control', 'no-cache'], ['Range', 'bytes=0-1'], ['Via', '1.1 evil'],
    ['Content_Type', 'text/evil'], ['Prefer', 'return=minimal']
  ]
  const r = await rawHttp(gw.port, req('POST', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Content-Length', '13'], ...sent], '{"title":"x"}'))
  t.equal(r.status, 200)
  const got = up.tasks()[0]
  const h = got?.headers ?? {}
  for (const [name, value] of sent.slice(0, 8)) t.equal(h[name.toLowerCase()], value, name)
  // Trace context is the gateway's: the client's trace continued with the gateway's hop (trace-context.test.ts).
  t.match(h.traceparent, /^00-4bf92f3577b34da6a3ce929d0e0e4736-(?!00f067aa0ba902b7)[0-9a-f]{16}-01$/, 'traceparent: same trace, the gateway\'s hop')
  t.equal(h.tracestate, 'vendor=x')
  t.equal(h['content-length'], '13')
  t.equal(h['x-request-id'], 'client-rid-1', 'a well-formed client request id is the request id')
  for (const name of ['user-agent', 'x-custom', 'origin', 'referer', 'cache-control', 'range', 'via', 'content_type', 'prefer']) t.notOk(name in h, `${name} dropped`)
  onlyAllowed(t, got?.rawHeaders ?? [])
})

t.test('a repeated field that is not a list (Content-Type, If-Modified-Since, If-Unmodified-Since) is forwarded once, as the gateway read it (the first); list fields are joined', async (t) => {
  const r = await rawHttp(gw.port, req('POST', '/api/tasks', [
    ['Authorization', `Bearer ${token}`], ['Content-Length', '13'],
    ['Content-Type', 'application/json'], ['Content-Type', 'text/plain'],
    ['If-Modified-Since', 'Sat, 05 Dec 2026 00:00:00 GMT'], ['If-Modified-Since', 'Sun, 06 Dec 2026 00:00:00 GMT'],
    ['If-Unmodified-Since', 'Sat, 05 Dec 2026 00:00:00 GMT'], ['if-unmodified-since', 'garbage'],
    ['Accept', 'application/json'], ['Accept', 'text/plain'], ['If-None-Match', '"a"'], ['If-None-Match', '"b"']
  ], '{"title":"x"}'))
  t.equal(r.status, 200)
  const raw = up.tasks()[0]?.rawHeaders ?? []
  const values = (name: string): string[] => raw.filter((_, i) => i % 2 === 1 && raw[i - 1]?.toLowerCase() === name)
  t.same(values('content-type'), ['application/json'], 'Content-Type: the one the gateway\'s body handling saw, not "application/json, text/plain"')
  t.same(values('if-modified-since'), ['Sat, 05 Dec 2026 00:00:00 GMT'])
  t.same(values('if-unmodified-since'), ['Sat, 05 Dec 2026 00:00:00 GMT'])
  t.same(values('accept'), ['application/json, text/plain'], 'a list field: joined')
  t.same(values('if-none-match'), ['"a", "b"'], 'a list field: joined')
})

t.test('Authorization and cookies are not forwarded by default', async (t) => {
  await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Cookie', 'better-auth.session_token=abc']]))
  const h = up.tasks()[0]?.headers ?? {}
  t.notOk('authorization' in h)
  t.notOk('cookie' in h)
})

t.test('FORWARD_AUTHORIZATION=true forwards Authorization (still never cookies)', async (t) => {
  await rawHttp(gwAuth.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Cookie', 'a=b']]))
  const h = up.tasks()[0]?.headers ?? {}
  t.equal(h.authorization, `Bearer ${token}`)
  t.notOk('cookie' in h)
})

t.test('Connection: close, X-User-Id cannot remove the gateway\'s X-User-Id', async (t) => {
  const r = await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Connection', 'close, X-User-Id'], ['X-User-Id', 'attacker']]))
  t.equal(r.status, 200, 'served normally')
  const got = up.tasks()[0]
  t.equal(got?.headers['x-user-id'], 'real-user')
  onlyAllowed(t, got?.rawHeaders ?? [])
})

t.test('Connection naming X-User-Id without a client X-User-Id: served with the gateway\'s X-User-Id', async (t) => {
  for (const conn of ['x-user-id', 'keep-alive, X-User-Id', 'X_User_Id', 'x-request-id, x-forwarded-for, authorization']) {
    const r = await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Connection', conn]]))
    t.equal(r.status, 200, conn)
  }
  const got = up.tasks()
  t.equal(got.length, 4)
  for (const g of got) {
    t.equal(g.headers['x-user-id'], 'real-user')
    t.ok(g.headers['x-request-id'])
    t.equal(g.headers['x-forwarded-for'], '127.0.0.1')
  }
})

t.test('headers the client lists in Connection are not forwarded (hop-by-hop), even allow-listed ones', async (t) => {
  await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Connection', 'x-secret-hop, accept-language'], ['X-Secret-Hop', '1'], ['Accept-Language', 'en'], ['Keep-Alive', 'timeout=5'], ['TE', 'trailers']]))
  const h = up.tasks()[0]?.headers ?? {}
  t.notOk('x-secret-hop' in h)
  t.notOk('accept-language' in h)
  t.notOk('keep-alive' in h)
  t.notOk('te' in h)
})

t.test('Upgrade requests are not forwarded', async (t) => {
  const r = await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==']]))
  t.equal(r.status, 400)
  t.match(JSON.parse(r.body), { error: { code: 'upgrade_not_supported' } })
  const r2 = await rawHttp(gw.port, req('GET', '/api/tasks', [['Connection', 'Upgrade'], ['Upgrade', 'websocket']]))
  t.equal(r2.status, 401, 'unauthenticated upgrade → 401')
  t.equal(up.received.length, 0)
})

t.test('the rewrite stage on its own: allow-list, then set (never append)', async (t) => {
  const out = rewriteHeaders({
    rawHeaders: ['X-User-Id', 'a', 'x_user_id', 'b', 'Host', 'h.example', 'Content-Type', 'text/plain', 'Accept', 'a', 'accept', 'b', 'Connection', 'if-match', 'If-Match', '"1"', 'Authorization', 'Bearer x', 'X-Request-Id', 'spoof', 'User-Id', 'u'],
    sub: 'sub-1',
    assertion: 'signed-assertion',
    requestId: 'rid',
    clientIp: '10.0.0.1',
    proto: 'http',
    forwardAuthorization: false
  })
  t.same(out, {
    'content-type': 'text/plain',
    accept: 'a, b',
    'x-user-id': 'sub-1',
    'x-gateway-assertion': 'signed-assertion',
    'x-request-id': 'rid',
    'x-forwarded-for': '10.0.0.1',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'h.example'
  })
  const withAuth = rewriteHeaders({ rawHeaders: ['Authorization', 'Bearer x', 'Proxy-Authorization', 'Basic y'], sub: 's', assertion: 'a', requestId: 'r', clientIp: undefined, proto: 'https', forwardAuthorization: true })
  t.equal(withAuth.authorization, 'Bearer x', 'FORWARD_AUTHORIZATION adds Authorization to the list')
  t.notOk('proxy-authorization' in withAuth)
})

t.test('header names that are Object.prototype members (constructor, __proto__) are dropped like any other unlisted name', async (t) => {
  const out = rewriteHeaders({
    rawHeaders: ['Constructor', 'a', '__proto__', 'b', 'constructor', 'c', 'toString', 'd'],
    sub: 'sub-1',
    assertion: 'signed-assertion',
    requestId: 'rid',
    clientIp: undefined,
    proto: 'http',
    forwardAuthorization: false
  })
  t.notOk(Object.hasOwn(out, 'constructor'))
  t.notOk(Object.hasOwn(out, '__proto__'))
  t.equal(Object.getPrototypeOf(out), null, 'no prototype to pollute')
  t.equal(out['x-user-id'], 'sub-1')

  const r = await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Constructor', 'a'], ['__proto__', 'b']]))
  t.equal(r.status, 200)
  const got = up.tasks()[0]
  t.equal(got?.headers['x-user-id'], 'real-user')
  onlyAllowed(t, got?.rawHeaders ?? [])
})
