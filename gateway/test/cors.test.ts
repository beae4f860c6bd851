// CORS on every answer the gateway sends to an allowed origin, whatever made it — the limits (413, 429 per
// IP and per user, 503 shedding and closing), authentication (401), the router (400/404 on a URL it
// refuses), authorization (403/404/405), the error handler (415), the forwarder (502/504 and the task
// service's own answers) and the raw socket (400/408/431) — with the exposed headers a frontend acts on.
// Preflights are answered before load shedding and the rate limits and are not counted by them; a
// preflight from an origin that is not allowed gets no Access-Control-Allow-Origin and never a 401.
import t from 'tap'
import net from 'node:net'
import { request } from 'undici'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { eventually } from '../../support/wait.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import type { TapTest } from '../../support/test-context.js'
import { bearer, signHs } from '../../support/tokens.js'
import { rawHttp, req } from './helpers/raw.js'
import { beginDrain } from '../src/plugins/drain.js'

const ORIGIN = 'http://localhost:3000'
const OTHER = 'https://evil.example'
const EXPOSED = 'Location, Link, X-Request-Id, WWW-Authenticate, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Allow'

type Headers = Record<string, string | string[] | undefined>
interface Answer { status: number, headers: Headers, text: string }

let up: StubUpstream
let gw: RunningGateway
let token: string

t.before(async () => {
  up = await startUpstream((rq, res) => {
    if (rq.url?.startsWith('/tasks/slow') === true) return // never answers → 504
    if (rq.method === 'POST') { res.writeHead(201, { 'content-type': 'application/json', location: '/tasks/1' }).end('{"id":"1"}'); return }
    if (rq.method === 'DELETE') { res.writeHead(204).end(); return }
    res.writeHead(200, { 'content-type': 'application/json', link: '</tasks?cursor=x>; rel="next"' }).end('[]')
  })
  gw = await startGateway({ TASK_SERVICE_URL: up.url, UPSTREAM_TIMEOUT_MS: '300', CORS_ORIGINS: `${ORIGIN},http://127.0.0.1:3000`, MAX_BODY_BYTES: '1024' })
  token = await signHs({ sub: 'user-1' })
})
t.teardown(async () => {
  await gw.close()
  await up.close()
})

async function call (base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const res = await request(base + path, { method: method as 'GET', headers: { origin: ORIGIN, ...headers }, body })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

function header (h: Headers, name: string): string {
  const v = h[name]
  return Array.isArray(v) ? v.join(', ') : (v ?? '')
}

function assertCors (t: TapTest, what: string, r: { status: number, headers: Headers }, status: number): void {
  t.equal(r.status, status, `${what}: status`)
  t.equal(header(r.headers, 'access-control-allow-origin'), ORIGIN, `${what}: Access-Control-Allow-Origin`)
  t.equal(header(r.headers, 'access-control-allow-credentials'), 'true', `${what}: credentials`)
  t.equal(header(r.headers, 'access-control-expose-headers'), EXPOSED, `${what}: exposed headers`)
  t.match(header(r.headers, 'vary').toLowerCase(), /origin/, `${what}: Vary: Origin`)
}

/** A port nothing listens on (a task service that is down). */
async function deadPort (): Promise<number> {
  const spare = net.createServer()
  await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve))
  const port = (spare.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => spare.close(() => resolve()))
  return port
}

t.test('every answer the gateway makes itself or forwards carries CORS headers for an allowed origin', async (t) => {
  const auth = bearer(token)
  const json = { ...auth, 'content-type': 'application/json' }
  const cases: Array<[string, number, () => Promise<Answer>]> = [
    ['forwarded 200', 200, async () => await call(gw.url, 'GET', '/api/tasks', auth)],
    ['forwarded 201', 201, async () => await call(gw.url, 'POST', '/api/tasks', json, '{"title":"x"}')],
    ['forwarded 204', 204, async () => await call(gw.url, 'DELETE', '/api/tasks/1', auth)],
    ['401 missing token', 401, async () => await call(gw.url, 'GET', '/api/tasks')],
    ['401 invalid token', 401, async () => await call(gw.url, 'GET', '/api/tasks', { authorization: 'Bearer a.b.c' })],
    ['401 on a URL the router refuses', 401, async () => await call(gw.url, 'GET', '/api/tasks/%E0%A4%A')],
    ['404 on a URL the router refuses', 404, async () => await call(gw.url, 'GET', '/api/tasks/%E0%A4%A', auth)],
    ['403 other user', 403, async () => await call(gw.url, 'GET', '/api/someone-else/tasks', auth)],
    ['404 unknown route', 404, async () => await call(gw.url, 'GET', '/api/other', auth)],
    ['405 method', 405, async () => await call(gw.url, 'POST', '/api/tasks/1', auth)],
    ['413 body too large', 413, async () => await call(gw.url, 'POST', '/api/tasks', json, 'x'.repeat(2048))],
    ['415 invalid content type', 415, async () => await call(gw.url, 'POST', '/api/tasks', { ...auth, 'content-type': 'not a media type' }, '{}')],
    ['504 upstream timeout', 504, async () => await call(gw.url, 'GET', '/api/tasks/slow', auth)]
  ]
  for (const [what, status, run] of cases) assertCors(t, what, await run(), status)

  const r405 = await call(gw.url, 'POST', '/api/tasks/1', auth)
  t.equal(r405.headers.allow, 'GET, HEAD, PUT, PATCH, DELETE', '405 names the methods in Allow (exposed)')
  const r201 = await call(gw.url, 'POST', '/api/tasks', json, '{"title":"x"}')
  t.equal(r201.headers.location, '/api/tasks/1', 'Location (exposed)')
  const r401 = await call(gw.url, 'GET', '/api/tasks')
  t.match(header(r401.headers, 'www-authenticate'), /^Bearer/, 'WWW-Authenticate (exposed)')
  t.equal(JSON.parse(r401.text).error.code, 'missing_token')
  const second = await call(gw.url, 'GET', '/api/tasks', auth, undefined)
  t.ok(second.headers['x-request-id'], 'X-Request-Id (exposed)')
  const other = await request(gw.url + '/api/tasks', { headers: { origin: 'http://127.0.0.1:3000', ...auth } })
  await other.body.dump()
  t.equal(other.headers['access-control-allow-origin'], 'http://127.0.0.1:3000', 'each listed origin is reflected')
})

t.test('an origin that is not allowed gets no CORS grant on any answer', async (t) => {
  for (const [path, headers] of [['/api/tasks', {}], ['/api/tasks', bearer(token)], ['/api/tasks/%E0%A4%A', {}]] as const) {
    const r = await call(gw.url, 'GET', path, { ...headers, origin: OTHER })
    t.same(Object.keys(r.headers).filter((n) => n.startsWith('access-control-')), [], `${r.status}: no Access-Control-* header`)
  }
  const noOrigin = await request(gw.url + '/api/tasks', { headers: bearer(token) })
  await noOrigin.body.dump()
  t.same(Object.keys(noOrigin.headers).filter((n) => n.startsWith('access-control-')), [], 'without Origin: no Access-Control-* header')
  const raw = await rawHttp(gw.port, req('GET', '/api/tasks', [['Origin', OTHER], ['Bad Header Line', '']]).replace('Bad Header Line: ', 'Bad Header Line'))
  t.equal(raw.status, 400)
  t.notOk('access-control-allow-origin' in raw.headers, 'malformed HTTP: no grant')
})

t.test('the raw-socket answers (400 malformed, 431, 408) carry CORS headers when the Origin is known', async (t) => {
  const malformed = await rawHttp(gw.port, 'GET /api/tasks HTTP/1.1\r\nHost: x\r\nOrigin: ' + ORIGIN + '\r\nBad Header Line\r\n\r\n')
  assertCors(t, '400 malformed HTTP', malformed, 400)
  const big = await rawHttp(gw.port, 'GET /api/tasks HTTP/1.1\r\nHost: x\r\nOrigin: ' + ORIGIN + '\r\nX-Big: ' + 'a'.repeat(20_000) + '\r\n\r\n')
  assertCors(t, '431 headers too large', big, 431)

  // 408: the headers arrived (Origin among them), the body did not, within SERVER_REQUEST_TIMEOUT_MS.
  const slow = await startGateway({ TASK_SERVICE_URL: up.url, CORS_ORIGINS: ORIGIN, SERVER_HEADERS_TIMEOUT_MS: '100', SERVER_REQUEST_TIMEOUT_MS: '300' })
  t.teardown(() => slow.close())
  const late = await rawHttp(slow.port, req('POST', '/api/tasks', [['Origin', ORIGIN], ['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json'], ['Content-Length', '100']], '{"title":'))
  assertCors(t, '408 body not received in time', late, 408)
  // Headers that never complete carry no Origin the gateway could read: 408 without a grant.
  const noHeaders = await rawHttp(slow.port, 'GET /api/tasks HTTP/1.1\r\nHost: x\r\nOrigin: ' + ORIGIN + '\r\n')
  t.equal(noHeaders.status, 408)
})

t.test('429 from the per-address and the per-user limit carry CORS headers, Retry-After and RateLimit-*', async (t) => {
  const perIp = await startGateway({ TASK_SERVICE_URL: up.url, CORS_ORIGINS: ORIGIN, RATE_LIMIT_IP_MAX: '2' })
  t.teardown(() => perIp.close())
  const preflight = { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' }
  for (let i = 0; i < 5; i++) {
    const p = await call(perIp.url, 'OPTIONS', '/api/tasks', preflight)
    t.equal(p.status, 204, `preflight ${i + 1} answered, not limited`)
  }
  // The per-address limit counts requests without a valid token (a session whose token has expired).
  const expired = bearer(await signHs({ sub: 'expired-session', exp: Math.floor(Date.now() / 1000) - 60 }))
  t.equal((await call(perIp.url, 'GET', '/api/tasks', expired)).status, 401, 'preflights were not counted: failure 1 of 2')
  t.equal((await call(perIp.url, 'GET', '/api/tasks', expired)).status, 401, 'failure 2 of 2')
  const limited = await call(perIp.url, 'GET', '/api/tasks', expired)
  assertCors(t, '429 per address', limited, 429)
  t.ok(Number(limited.headers['retry-after']) >= 1, 'Retry-After')
  t.equal(limited.headers['ratelimit-limit'], '2')
  t.equal(limited.headers['ratelimit-remaining'], '0')
  t.ok(limited.headers['ratelimit-reset'] !== undefined, 'RateLimit-Reset')
  t.equal((await call(perIp.url, 'OPTIONS', '/api/tasks', preflight)).status, 204, 'a preflight past the limit is still answered')

  const perUser = await startGateway({ TASK_SERVICE_URL: up.url, CORS_ORIGINS: ORIGIN, RATE_LIMIT_USER_MAX: '1' })
  t.teardown(() => perUser.close())
  t.equal((await call(perUser.url, 'GET', '/api/tasks', bearer(token))).status, 200)
  const userLimited = await call(perUser.url, 'GET', '/api/tasks', bearer(token))
  assertCors(t, '429 per user', userLimited, 429)
  t.equal(JSON.parse(userLimited.text).error.code, 'rate_limited')
})

t.test('502 from a task service that is down carries CORS headers', async (t) => {
  const dead = await startGateway({ TASK_SERVICE_URL: `http://127.0.0.1:${await deadPort()}`, CORS_ORIGINS: ORIGIN })
  t.teardown(() => dead.close())
  assertCors(t, '502', await call(dead.url, 'GET', '/api/tasks', bearer(token)), 502)
})

t.test('preflights: allowed origin granted; other origins and unroutable URLs never get a 401', async (t) => {
  const preflight = { 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' }
  const ok = await call(gw.url, 'OPTIONS', '/api/tasks', preflight)
  t.equal(ok.status, 204)
  t.equal(ok.headers['access-control-allow-origin'], ORIGIN)
  t.equal(ok.headers['access-control-allow-credentials'], 'true')
  t.match(header(ok.headers, 'access-control-allow-methods'), /PATCH/)
  t.match(header(ok.headers, 'access-control-allow-headers').toLowerCase(), /authorization/)

  const refused = await call(gw.url, 'OPTIONS', '/api/tasks', { ...preflight, origin: OTHER })
  t.equal(refused.status, 204, 'answered, not a 401')
  t.same(Object.keys(refused.headers).filter((n) => n.startsWith('access-control-')), [], 'no Access-Control-* header')

  const unroutable = await call(gw.url, 'OPTIONS', '/api/tasks/%E0%A4%A', preflight)
  t.equal(unroutable.status, 204, 'a preflight to a URL the router refuses is answered as a preflight')
  t.equal(unroutable.headers['access-control-allow-origin'], ORIGIN)
  const unroutableOther = await call(gw.url, 'OPTIONS', '/api/tasks/%E0%A4%A', { ...preflight, origin: OTHER })
  t.not(unroutableOther.status, 401)
  t.notOk('access-control-allow-origin' in unroutableOther.headers)

  const bare = await request(gw.url + '/api/tasks', { method: 'OPTIONS' })
  await bare.body.dump()
  t.equal(bare.statusCode, 204, 'an OPTIONS request without Origin is answered the same way, not a 401')
  t.notOk('access-control-allow-origin' in bare.headers)
  t.equal(up.received.filter((r) => r.method === 'OPTIONS').length, 0, 'no OPTIONS request is forwarded')

  // No CORS_ORIGINS at all (the default): every origin is refused, still without a 401.
  const none = await startGateway({ TASK_SERVICE_URL: up.url })
  t.teardown(() => none.close())
  const optionsBefore = up.received.filter((r) => r.method === 'OPTIONS').length
  const r = await call(none.url, 'OPTIONS', '/api/tasks', { ...preflight, origin: ORIGIN })
  t.equal(r.status, 204, 'answered as a preflight')
  t.notOk('access-control-allow-origin' in r.headers, 'no Access-Control-Allow-Origin')
  for (const path of ['/api/tasks/1', '/api/tasks/%E0%A4%A']) {
    const p = await call(none.url, 'OPTIONS', path, { ...preflight, origin: ORIGIN })
    t.equal(p.status, 204, `${path}: answered as a preflight`)
    t.same(Object.keys(p.headers).filter((n) => n.startsWith('access-control-')), [], `${path}: no Access-Control-* header`)
  }
  t.equal(up.received.filter((r) => r.method === 'OPTIONS').length, optionsBefore, 'no OPTIONS request is forwarded')
  // Nothing is ever granted, so no answer varies by Origin: forwarded, the gateway's own, and the router's.
  for (const [what, status, headers, path] of [
    ['forwarded', 200, bearer(token), '/api/tasks'],
    ['401', 401, {}, '/api/tasks'],
    ['404 on a URL the router refuses', 404, bearer(token), '/api/tasks/%E0%A4%A']
  ] as const) {
    const a = await call(none.url, 'GET', path, { ...headers, origin: ORIGIN })
    t.equal(a.status, status, `${what}: status`)
    t.same(Object.keys(a.headers).filter((n) => n.startsWith('access-control-')), [], `${what}: no Access-Control-* header`)
    t.notMatch(header(a.headers, 'vary').toLowerCase(), /origin/, `${what}: no Vary: Origin`)
  }
})

/** Blocks the event loop (a stall: a synchronous CPU burst). */
function stall (ms: number): void {
  const end = Date.now() + ms
  while (Date.now() < end) { /* busy */ }
}

t.test('load shedding: its 503 carries CORS headers; preflights are answered, not shed', async (t) => {
  const shed = await startGateway({ TASK_SERVICE_URL: up.url, CORS_ORIGINS: ORIGIN, LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '100', LOAD_SHED_SAMPLE_INTERVAL_MS: '100' }, { listen: false })
  t.teardown(() => shed.close())
  const inject = async (method: 'GET' | 'OPTIONS', headers: Record<string, string>): Promise<Answer> => {
    const r = await shed.app.inject({ method, url: '/api/tasks', headers: { origin: ORIGIN, ...headers } })
    return { status: r.statusCode, headers: r.headers as Headers, text: r.body }
  }
  stall(2_500)
  await eventually(async () => (await inject('GET', {})).status === 503, 5_000)
  // Keep the loop stalled in short bursts so the gateway stays overloaded while we ask.
  const hold = setInterval(() => { stall(150) }, 20)
  try {
    const r = await inject('GET', bearer(token))
    assertCors(t, '503 overloaded', r, 503)
    t.equal(JSON.parse(r.text).error.code, 'overloaded')
    t.equal(r.headers['retry-after'], '1', 'Retry-After (exposed)')
    const p = await inject('OPTIONS', { 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' })
    t.equal(p.status, 204, 'the preflight is answered while shedding')
    t.equal(p.headers['access-control-allow-origin'], ORIGIN)
  } finally {
    clearInterval(hold)
  }
})

t.test('503 while draining (/readyz) and while closing (any request) carry CORS headers', async (t) => {
  let release: (() => void) | undefined
  const held = await startUpstream((rq, res) => {
    if (rq.url === '/tasks/held') { release = () => { res.writeHead(200, { 'content-type': 'application/json' }).end('{}') }; return }
    res.writeHead(200, { 'content-type': 'application/json' }).end('[]')
  })
  t.teardown(() => held.close())
  const drained = await startGateway({ TASK_SERVICE_URL: held.url, CORS_ORIGINS: ORIGIN })
  beginDrain(drained.app)
  const draining = await call(drained.url, 'GET', '/readyz')
  assertCors(t, '503 draining', draining, 503)
  t.equal(JSON.parse(draining.text).status, 'draining')
  await drained.close()

  const g = await startGateway({ TASK_SERVICE_URL: held.url, CORS_ORIGINS: ORIGIN })

  // A request in flight keeps its connection open through the close; a second one sent on it after the
  // close has begun gets 503.
  const socket = net.connect(g.port, '127.0.0.1')
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  const socketClosed = new Promise<void>((resolve) => socket.once('close', () => { resolve() }))
  socket.write(req('GET', '/api/tasks/held', [['Origin', ORIGIN], ['Authorization', `Bearer ${token}`]]))
  await eventually(() => release !== undefined)
  const closing = g.app.close()
  await eventually(async () => await new Promise<boolean>((resolve) => {
    const probe = net.connect(g.port, '127.0.0.1')
    probe.once('connect', () => { probe.destroy(); resolve(false) })
    probe.once('error', () => { resolve(true) })
  }))
  socket.write(req('GET', '/api/tasks', [['Origin', ORIGIN], ['Authorization', `Bearer ${token}`]]))
  ;(release as () => void)()
  await socketClosed
  await closing
  const answers = received.split(/(?=HTTP\/1\.1 )/)
  t.match(answers[0], /^HTTP\/1\.1 200 /, 'the request in flight is answered')
  const second = answers[1] ?? ''
  t.match(second, /^HTTP\/1\.1 503 /, 'a request after the close began: 503')
  t.match(second, new RegExp(`\r\naccess-control-allow-origin: ${ORIGIN}\r\n`, 'i'))
  t.match(second, /\r\naccess-control-expose-headers: Location, Link, X-Request-Id, WWW-Authenticate, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Allow\r\n/i)
  t.match(second, /\r\nconnection: close\r\n/i)
  t.match(second, /"code":"shutting_down"/)
})
