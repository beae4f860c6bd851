// Security headers on EVERY kind of gateway response — forwarded 2xx, each error the gateway makes itself,
// upstream failures, operational routes, CORS preflight, raw protocol errors: no x-powered-by, no server
// or via banner (not even when the task service sends one), nosniff, cache-control: no-store. And error
// bodies and headers never echo a token or any part of it.
import t from 'tap'
import net from 'node:net'
import { request } from 'undici'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import { bearer, makeKey, rawHmac, rawSigned, SECRET, signHs, unsigned } from '../../support/tokens.js'
import { rawHttp } from './helpers/raw.js'

let up: StubUpstream
let gw: RunningGateway
let token: string

t.before(async () => {
  up = await startUpstream((rq, res) => {
    const banners = { server: 'nginx/1.25.3', 'x-powered-by': 'Express 4.18.2', via: '1.1 internal-lb (squid/5.7)' }
    if (rq.url === '/readyz') { res.writeHead(200, { 'content-type': 'application/json', ...banners }).end('{"status":"ready"}'); return }
    if (rq.url?.startsWith('/tasks/slow') === true) return // never answers → 504
    if (rq.method === 'POST') { res.writeHead(201, { 'content-type': 'application/json', location: '/tasks/1', ...banners }).end('{"id":"1"}'); return }
    if (rq.method === 'DELETE') { res.writeHead(204, banners).end(); return }
    res.writeHead(200, { 'content-type': 'application/json', ...banners }).end('[]')
  })
  gw = await startGateway({
    TASK_SERVICE_URL: up.url,
    UPSTREAM_TIMEOUT_MS: '300',
    CORS_ORIGINS: 'https://app.example.com',
    RATE_LIMIT_USER_MAX: '1000',
    MAX_BODY_BYTES: '1024'
  })
  token = await signHs({ sub: 'user-1' })
})
t.teardown(async () => {
  await gw.close()
  await up.close()
})

type Headers = Record<string, string | string[] | undefined>

function assertHardened (t: Parameters<Parameters<typeof import('tap').default.test>[0]>[0], what: string, h: Headers): void {
  t.notOk('x-powered-by' in h, `${what}: no x-powered-by`)
  t.notOk('server' in h, `${what}: no server banner`)
  t.notOk('via' in h, `${what}: no via banner`)
  t.equal(h['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  t.equal(h['cache-control'], 'no-store', `${what}: cache-control no-store`)
  t.notMatch(Object.values(h).join(' '), /nginx|express|squid|fastify|node\.js|undici/i, `${what}: no software names or versions`)
}

async function call (method: string, path: string, headers: Record<string, string> = {}, body?: string, base = gw.url): Promise<{ status: number, headers: Headers, text: string }> {
  const res = await request(base + path, { method: method as 'GET', headers, body })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

t.test('every response the gateway gives carries the security headers and no banner', async (t) => {
  const auth = bearer(token)
  const json = { ...auth, 'content-type': 'application/json' }
  const cases: Array<[string, number, () => Promise<{ status: number, headers: Headers, text: string }>]> = [
    ['forwarded 200', 200, () => call('GET', '/api/tasks', auth)],
    ['forwarded 201', 201, () => call('POST', '/api/tasks', json, '{"title":"x"}')],
    ['forwarded 204', 204, () => call('DELETE', '/api/tasks/1', auth)],
    ['401 missing token', 401, () => call('GET', '/api/tasks')],
    ['401 invalid token', 401, () => call('GET', '/api/tasks', { authorization: 'Bearer a.b.c' })],
    ['403 other user', 403, () => call('GET', '/api/someone-else/tasks', auth)],
    ['404 unknown route', 404, () => call('GET', '/api/other', auth)],
    ['405 method', 405, () => call('POST', '/api/tasks/1', auth)],
    ['413 body too large', 413, () => call('POST', '/api/tasks', json, 'x'.repeat(2048))],
    ['504 upstream timeout', 504, () => call('GET', '/api/tasks/slow', auth)],
    ['healthz', 200, () => call('GET', '/healthz')],
    ['readyz', 200, () => call('GET', '/readyz')],
    ['openapi.json', 200, () => call('GET', '/openapi.json')],
    ['CORS preflight', 204, () => call('OPTIONS', '/api/tasks', { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' })]
  ]
  for (const [what, status, run] of cases) {
    const r = await run()
    t.equal(r.status, status, what)
    assertHardened(t, what, r.headers)
  }
})

t.test('502 from a dead task service and 429 over a limit are hardened too', async (t) => {
  const spare = net.createServer()
  await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve))
  const port = (spare.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => spare.close(() => resolve()))
  const dead = await startGateway({ TASK_SERVICE_URL: `http://127.0.0.1:${port}`, RATE_LIMIT_USER_MAX: '1' })
  t.teardown(() => dead.close())
  const r502 = await call('GET', '/api/tasks', bearer(token), undefined, dead.url)
  t.equal(r502.status, 502)
  assertHardened(t, '502', r502.headers)
  const r429 = await call('GET', '/api/tasks', bearer(token), undefined, dead.url)
  t.equal(r429.status, 429)
  assertHardened(t, '429', r429.headers)
})

t.test('a malformed request answered at the socket level has no banner and is not cacheable', async (t) => {
  const r = await rawHttp(gw.port, 'GET /api/tasks HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n')
  t.equal(r.status, 400)
  t.notOk('server' in r.headers)
  t.notOk('x-powered-by' in r.headers)
  t.equal(r.headers['cache-control'], 'no-store')
})

t.test('error bodies and headers never echo a token or any part of it', async (t) => {
  const rsa = await makeKey('RS256', 'k1')
  const tokens = [
    await signHs({ sub: 'user-1', exp: Math.floor(Date.now() / 1000) - 3600 }), // expired
    await signHs({ sub: 'user-1' }, 'another-secret-that-is-long-enough-0123456789'), // bad signature
    await signHs({ sub: 'x'.repeat(300) }), // bad sub
    rawHmac({ alg: 'HS256', crit: ['x-unknown'], 'x-unknown': '<script>' }, { sub: 'user-1', iss: '<script>alert(1)</script>' }, SECRET), // unknown crit
    unsigned({ sub: 'user-1' }),
    rawSigned({ alg: 'RS256', kid: 'k1', jwk: rsa.jwk }, { sub: 'user-1' }, rsa.privateKey, 'RS256'),
    'eyJhbGciOiJIUzI1NiJ9.bm90LWpzb24tPHNjcmlwdD4.c2lnbmF0dXJlLXRleHQ'
  ]
  for (const tok of tokens) {
    const r = await call('GET', '/api/tasks', { authorization: `Bearer ${tok}` })
    t.equal(r.status, 401)
    const everything = r.text + '\n' + JSON.stringify(r.headers)
    const parts = tok.split('.').filter((p) => p.length >= 8)
    t.notOk(parts.some((p) => everything.includes(p)), `no part of the token is echoed (${JSON.parse(r.text).error.code})`)
    t.notMatch(everything, /<script>/, 'no claim value is echoed')
  }
  const other = await call('GET', '/api/someone-else/tasks', bearer(token))
  t.notOk(token.split('.').some((p) => (other.text + JSON.stringify(other.headers)).includes(p)), 'nor on a 403')
})
