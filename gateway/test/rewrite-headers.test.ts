// Identity-header firewall: client-sent identity headers in every spelling and duplicate are dropped,
// Connection-header tricks cannot remove the gateway's X-User-Id, and the gateway's headers are set,
// never appended. Sent raw over a socket so every spelling reaches the gateway as written.
import t from 'tap'
import { isReservedHeader, rewriteHeaders, squashName } from '../src/pipeline/rewrite-headers.js'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { startGateway, type RunningGateway, type TapTest } from './helpers/gateway.js'
import { signHs } from './helpers/keys.js'
import { rawHttp, req } from './helpers/raw.js'

let up: StubUpstream
let gw: RunningGateway
let gwAuth: RunningGateway
let token: string

t.before(async () => {
  up = await startUpstream()
  gw = await startGateway({ TASK_SERVICE_URL: up.url })
  gwAuth = await startGateway({ TASK_SERVICE_URL: up.url, FORWARD_AUTHORIZATION: 'true' })
  token = await signHs({ sub: 'real-user' })
})
t.teardown(async () => {
  await gw.close()
  await gwAuth.close()
  await up.close()
})
t.beforeEach(() => { up.received.length = 0 })

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

function onlyGatewayIdentity (t: TapTest, rawHeaders: string[]): void {
  const names = rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
  t.equal(names.filter((n) => squashName(n) === 'xuserid').length, 1, 'exactly one X-User-Id')
  for (const n of names) {
    if (n === 'x-user-id' || n === 'x-request-id' || n.startsWith('x-forwarded-')) continue
    t.notOk(isReservedHeader(n), `no client-sent reserved header reaches the task service: ${n}`)
  }
}

t.test('spoofed identity headers in every spelling and duplicate are dropped; X-User-Id = sub', async (t) => {
  const r = await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ...SPOOFED, ['X-User-Id', 'dup-attacker'], ['X-Custom', 'kept']]))
  t.equal(r.status, 200)
  const got = up.tasks()[0]
  t.ok(got)
  t.equal(got?.headers['x-user-id'], 'real-user')
  t.notMatch(JSON.stringify(got?.rawHeaders), /attacker|a@evil|6\.6\.6\.6|evil\.example|\/admin|session=secret|DELETE|eDp5/)
  t.equal(got?.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(got?.headers['x-forwarded-proto'], 'http')
  t.equal(got?.headers['x-forwarded-host'], 'gateway.test')
  t.equal(got?.headers['x-custom'], 'kept', 'ordinary headers pass through')
  onlyGatewayIdentity(t, got?.rawHeaders ?? [])
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
  onlyGatewayIdentity(t, got?.rawHeaders ?? [])
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

t.test('headers the client lists in Connection are not forwarded (hop-by-hop)', async (t) => {
  await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Connection', 'x-secret-hop'], ['X-Secret-Hop', '1'], ['Keep-Alive', 'timeout=5'], ['TE', 'trailers']]))
  const h = up.tasks()[0]?.headers ?? {}
  t.notOk('x-secret-hop' in h)
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

t.test('the rewrite stage on its own: strip by normalized name, then set (never append)', async (t) => {
  const out = rewriteHeaders({
    rawHeaders: ['X-User-Id', 'a', 'x_user_id', 'b', 'Host', 'h.example', 'Content-Type', 'text/plain', 'Accept', 'a', 'accept', 'b', 'Connection', 'x-keep-me-not', 'X-Keep-Me-Not', '1', 'Authorization', 'Bearer x'],
    sub: 'sub-1',
    requestId: 'rid',
    clientIp: '10.0.0.1',
    proto: 'http',
    forwardAuthorization: false
  })
  t.same(out, {
    'content-type': 'text/plain',
    accept: 'a, b',
    'x-user-id': 'sub-1',
    'x-request-id': 'rid',
    'x-forwarded-for': '10.0.0.1',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'h.example'
  })
})

t.test('header names that are Object.prototype members (constructor, __proto__) are ordinary names', async (t) => {
  const out = rewriteHeaders({
    rawHeaders: ['Constructor', 'a', '__proto__', 'b', 'constructor', 'c', '__proto__', 'd'],
    sub: 'sub-1',
    requestId: 'rid',
    clientIp: undefined,
    proto: 'http',
    forwardAuthorization: false
  })
  t.equal(out.constructor, 'a, c', 'duplicates joined, not appended to Object.prototype.constructor')
  t.ok(Object.hasOwn(out, '__proto__'), '__proto__ kept as an own header, not swallowed by the prototype setter')
  t.equal(out['__proto__' as 'x'], 'b, d')
  t.equal(out['x-user-id'], 'sub-1')

  const r = await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Constructor', 'a'], ['X-Other', 'o']]))
  t.equal(r.status, 200)
  const h = up.tasks()[0]?.headers ?? {}
  t.equal(h.constructor, 'a', 'the task service receives Constructor as sent')
  t.equal(h['x-other'], 'o')
  t.equal(h['x-user-id'], 'real-user')
})

t.test('reserved-name normalization', async (t) => {
  for (const n of ['X-User-Id', 'x_user_id', 'X.User.Id', 'X-USER_ID', 'x-auth-request-user', 'X-Forwarded-User', 'x-remote-user', 'remote-user', 'Remote_User', 'X-Original-URL', 'X-Forwarded-Prefix', 'X-Request-Id', 'Forwarded', 'Cookie', 'x-real-ip']) {
    t.ok(isReservedHeader(n), n)
  }
  for (const n of ['content-type', 'accept', 'x-custom', 'user-agent', 'if-none-match', 'authorization']) {
    t.notOk(isReservedHeader(n), n)
  }
})
