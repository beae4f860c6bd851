// Who is limited, by what: a request with a valid token counts against its user (`sub`) only, never its
// address; a request without one counts against its client address (request.ip, as TRUST_PROXY defines
// it), and an address past its budget is refused with 429 before any signature check or JWKS fetch.
// Every route and method counts; only GET/HEAD /healthz, /readyz and CORS preflights are exempt.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { request } from 'undici'
import { redisAnswers, TEST_REDIS_URL as REDIS_URL } from '../../support/redis.js'
import type { FastifyInstance } from 'fastify'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import type { TapTest } from '../../support/test-context.js'
import { startJwks } from '../../support/jwks-server.js'
import { bearer, makeKey, signHs, signWith } from '../../support/tokens.js'

let up: StubUpstream
t.before(async () => { up = await startUpstream() })
t.teardown(async () => { await up.close() })

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, code: string | undefined }

/** One request through app.inject from `address` (the socket's peer; no TRUST_PROXY involved). */
async function inject (app: FastifyInstance, address: string, url: string, headers: Record<string, string> = {}, method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD' | 'OPTIONS' | 'PATCH' = 'GET'): Promise<Answer> {
  const res = await app.inject({ method, url, headers, remoteAddress: address })
  let code: string | undefined
  try { code = (JSON.parse(res.body) as { error?: { code?: string } }).error?.code } catch { code = undefined }
  return { status: res.statusCode, headers: res.headers as Answer['headers'], code }
}

/** One request over a real socket. */
async function send (url: string, headers: Record<string, string> = {}, method: 'GET' | 'POST' = 'GET'): Promise<number> {
  const res = await request(url, { method, headers })
  await res.body.dump()
  return res.statusCode
}

/** Counts every WebCrypto signature verification (jose verifies through crypto.subtle.verify) while installed. */
function countVerifications (t: TapTest): { count: () => number } {
  const subtle = globalThis.crypto.subtle
  const original = subtle.verify
  let n = 0
  subtle.verify = async (...args: Parameters<typeof original>) => {
    n++
    return original.apply(subtle, args)
  }
  t.teardown(() => { subtle.verify = original })
  return { count: () => n }
}

/** A token signed by `key` whose signature no longer matches (one payload character changed). */
function tampered (token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string]
  return `${h}.${p.slice(0, -2)}${p.at(-2) === 'A' ? 'B' : 'A'}${p.slice(-1)}.${s}`
}

t.test('defaults: 50 users with valid tokens behind one address, 20,000 requests, not a single 429', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url }, { listen: false })
  t.teardown(() => gw.close())
  const tokens = await Promise.all(Array.from({ length: 50 }, async (_, i) => signHs({ sub: `nat-user-${i}` })))
  const statuses = new Map<number, number>()
  let next = 0
  // 50 clients in parallel, each sending its requests one after the other: 400 per user, 20,000 in all.
  await Promise.all(tokens.map(async (token) => {
    while (next < 20_000) {
      next++
      const res = await gw.app.inject({ method: 'GET', url: '/api/tasks', headers: bearer(token), remoteAddress: '203.0.113.9' })
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    }
  }))
  t.same(Object.fromEntries(statuses), { 200: 20_000 }, 'every request answered 200')
})

t.test('an address sending invalid tokens: 429 past its budget, with no signature verification and no JWKS fetch', async (t) => {
  const key = await makeKey('EdDSA', 'k1')
  const stranger = await makeKey('EdDSA', 'not-published')
  const jwks = await startJwks([key.jwk])
  t.teardown(() => jwks.close())
  // No refetch cooldown: every token with an unknown kid would fetch the JWKS again.
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, JWT_SECRET: '', JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: '0', JWKS_TIMEOUT_MS: '2000', RATE_LIMIT_IP_MAX: '4', RATE_LIMIT_WINDOW_MS: '600000' }, { listen: false })
  t.teardown(() => gw.close())
  const verifications = countVerifications(t)
  const badSignature = tampered(await signWith(key, { sub: 'mallory' }))
  const unknownKid = async (): Promise<string> => signWith(stranger, { sub: `mallory-${randomBytes(3).toString('hex')}` })
  const attacker = '198.51.100.66'

  const fetchesAtStart = jwks.fetches
  const within = [
    await inject(gw.app, attacker, '/api/tasks', bearer(badSignature)),
    await inject(gw.app, attacker, '/api/tasks', bearer(await unknownKid())),
    await inject(gw.app, attacker, '/api/tasks', bearer(badSignature)),
    await inject(gw.app, attacker, '/api/tasks', bearer(await unknownKid()))
  ]
  t.same(within.map((a) => a.status), [401, 401, 401, 401], 'the budget of 4 failures is answered 401')
  t.same(within.map((a) => a.headers['ratelimit-remaining']), ['3', '2', '1', '0'], 'each failure counted against the address')
  t.equal(verifications.count(), 2, 'the two well-signed-looking tokens with a known key were verified')
  t.equal(jwks.fetches - fetchesAtStart, 2, 'the two unknown kids each fetched the JWKS')

  const verifiedBefore = verifications.count()
  const fetchesBefore = jwks.fetches
  for (let i = 0; i < 20; i++) {
    const over = await inject(gw.app, attacker, '/api/tasks', bearer(i % 2 === 0 ? badSignature : await unknownKid()))
    t.equal(over.status, 429, `request ${i + 5} refused`)
    t.equal(over.code, 'rate_limited')
    if (i === 0) {
      t.match(over.headers['retry-after'], /^\d+$/)
      t.ok(Number(over.headers['retry-after']) >= 1 && Number(over.headers['retry-after']) <= 600, `Retry-After ${String(over.headers['retry-after'])}`)
      t.same([over.headers['ratelimit-limit'], over.headers['ratelimit-remaining']], ['4', '0'])
      t.match(over.headers['ratelimit-reset'], /^\d+$/)
    }
  }
  t.equal(verifications.count(), verifiedBefore, 'no signature was verified for the refused requests')
  t.equal(jwks.fetches, fetchesBefore, 'and no JWKS fetch was triggered')
  t.equal((await inject(gw.app, attacker, '/api/tasks')).status, 429, 'a request without any token is refused too')

  const other = await inject(gw.app, '198.51.100.67', '/api/tasks', bearer(badSignature))
  t.equal(other.status, 401, 'another address keeps its own budget')
  t.equal(up.tasks().filter((r) => r.headers['x-user-id']?.toString().startsWith('mallory') === true).length, 0, 'nothing was forwarded')
})

t.test('a blocked address: a token verified before passes (from the cache, counted per user); a token never verified does not', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_IP_MAX: '3', RATE_LIMIT_USER_MAX: '5', RATE_LIMIT_WINDOW_MS: '600000' }, { listen: false })
  t.teardown(() => gw.close())
  const nat = '192.0.2.10'
  const alice = await signHs({ sub: 'alice-behind-nat' })
  t.equal((await inject(gw.app, nat, '/api/tasks', bearer(alice))).status, 200, 'alice is verified (and cached) before the attack')
  for (let i = 0; i < 3; i++) await inject(gw.app, nat, '/api/tasks', bearer('not.a.token'))
  t.equal((await inject(gw.app, nat, '/api/tasks', bearer('not.a.token'))).status, 429, 'the address is cut off')
  const verifications = countVerifications(t)
  const passed = await inject(gw.app, nat, '/api/tasks', bearer(alice))
  t.equal(passed.status, 200, 'alice still passes from the cut-off address')
  t.same([passed.headers['ratelimit-limit'], passed.headers['ratelimit-remaining']], ['5', '3'], 'counted against alice (2 of 5)')
  t.equal(verifications.count(), 0, 'no signature verified for her')
  const bob = await signHs({ sub: 'bob-behind-nat' })
  const refused = await inject(gw.app, nat, '/api/tasks', bearer(bob))
  t.same([refused.status, refused.code], [429, 'rate_limited'], 'a token never verified waits for the window, like every unverified request')
  t.equal(verifications.count(), 0, 'and is not verified either')
})

t.test('each kind of authentication failure counts against the address', async (t) => {
  const kinds: Array<[string, Record<string, string>]> = [
    ['missing', {}],
    ['malformed', bearer('not.a.token')],
    ['bad signature', bearer(await signHs({ sub: 'x' }, 'another-secret-that-is-long-enough-0123456789'))],
    ['expired', bearer(await signHs({ sub: 'x', exp: Math.floor(Date.now() / 1000) - 3600 }))],
    ['wrong audience', bearer(await signHs({ sub: 'x', aud: 'another-api' }))],
    ['wrong typ', bearer(await signHs({ sub: 'x' }, undefined, { typ: 'better-auth.session-cache+jwt' }))]
  ]
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_IP_MAX: String(kinds.length), RATE_LIMIT_WINDOW_MS: '600000' }, { listen: false })
  t.teardown(() => gw.close())
  for (const [i, [kind, headers]] of kinds.entries()) {
    const a = await inject(gw.app, '192.0.2.20', '/api/tasks', headers)
    t.equal(a.status, 401, `${kind}: 401 (${a.code ?? ''})`)
    t.equal(a.headers['ratelimit-remaining'], String(kinds.length - i - 1), `${kind}: counted`)
  }
  t.equal((await inject(gw.app, '192.0.2.20', '/api/tasks', kinds[3]?.[1])).status, 429, 'past the budget')
})

t.test('every route and method counts: non-GET health paths, malformed URLs, paths outside the route table; GET/HEAD probes and preflights never do', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, CORS_ORIGINS: 'https://app.example', RATE_LIMIT_IP_MAX: '5', RATE_LIMIT_WINDOW_MS: '600000' }, { listen: false })
  t.teardown(() => gw.close())
  const from = '192.0.2.30'
  const bad = bearer('not.a.token')
  const preflight = { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' }
  for (let i = 0; i < 10; i++) {
    t.equal((await inject(gw.app, from, '/healthz', {}, 'GET')).status, 200)
    t.equal((await inject(gw.app, from, '/readyz', {}, 'HEAD')).status, 200)
    t.equal((await inject(gw.app, from, '/api/tasks', preflight, 'OPTIONS')).status, 204)
  }
  const counted = [
    await inject(gw.app, from, '/healthz', bad, 'POST'),
    await inject(gw.app, from, '/readyz', bad, 'DELETE'),
    await inject(gw.app, from, '/api/tasks/%zz', bad),
    await inject(gw.app, from, '/nowhere', bad),
    await inject(gw.app, from, '/api/tasks/%zz', {})
  ]
  t.same(counted.map((a) => a.status), [401, 401, 401, 401, 401])
  t.same(counted.map((a) => a.headers['ratelimit-remaining']), ['4', '3', '2', '1', '0'], 'each counted (the probes and preflights before them were not)')
  t.equal((await inject(gw.app, from, '/api/tasks/%zz', bad)).status, 429, 'a malformed URL is refused past the budget')
  t.equal((await inject(gw.app, from, '/healthz', bad, 'POST')).status, 429, 'so is POST /healthz')
  t.equal((await inject(gw.app, from, '/healthz', {}, 'GET')).status, 200, 'GET /healthz is still answered')
  t.equal((await inject(gw.app, from, '/readyz', {}, 'GET')).status, 200, 'GET /readyz too')
  t.equal((await inject(gw.app, from, '/api/tasks', preflight, 'OPTIONS')).status, 204, 'and preflights')
})

t.test('a valid user at its limit gets 429 on every route: 404, 405, a malformed URL, non-GET /healthz', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_USER_MAX: '2', RATE_LIMIT_IP_MAX: '1', RATE_LIMIT_WINDOW_MS: '600000' }, { listen: false })
  t.teardown(() => gw.close())
  const token = bearer(await signHs({ sub: 'at-the-limit' }))
  const from = '192.0.2.40'
  const first = await inject(gw.app, from, '/nowhere', token)
  t.equal(first.status, 404, 'a path outside the route table')
  t.same([first.headers['ratelimit-limit'], first.headers['ratelimit-remaining']], ['2', '1'], 'counted per user, not per address (whose budget is 1)')
  t.equal((await inject(gw.app, from, '/api/tasks/%zz', token)).status, 404, 'a malformed URL, counted: 2 of 2')
  for (const [method, url] of [['GET', '/nowhere'], ['DELETE', '/api/tasks'], ['GET', '/api/tasks/%zz'], ['POST', '/healthz'], ['GET', '/api/tasks']] as const) {
    const a = await inject(gw.app, from, url, token, method)
    t.same([a.status, a.code], [429, 'rate_limited'], `${method} ${url}`)
  }
})

t.test('the address is the socket peer without TRUST_PROXY, the X-Forwarded-For client with it', async (t) => {
  const direct = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_IP_MAX: '2', RATE_LIMIT_WINDOW_MS: '600000' })
  t.teardown(() => direct.close())
  const spoofed = [
    await send(direct.url + '/api/tasks', { 'x-forwarded-for': '198.51.100.1' }),
    await send(direct.url + '/api/tasks', { 'x-forwarded-for': '198.51.100.2' }),
    await send(direct.url + '/api/tasks', { 'x-forwarded-for': '198.51.100.3' })
  ]
  t.same(spoofed, [401, 401, 429], 'a client-sent X-Forwarded-For does not buy a new budget')

  const proxied = await startGateway({ TASK_SERVICE_URL: up.url, TRUST_PROXY: '127.0.0.1', RATE_LIMIT_IP_MAX: '2', RATE_LIMIT_WINDOW_MS: '600000' })
  t.teardown(() => proxied.close())
  const one = [
    await send(proxied.url + '/api/tasks', { 'x-forwarded-for': '198.51.100.1' }),
    await send(proxied.url + '/api/tasks', { 'x-forwarded-for': '198.51.100.1' }),
    await send(proxied.url + '/api/tasks', { 'x-forwarded-for': '198.51.100.1' })
  ]
  t.same(one, [401, 401, 429], 'the client behind the trusted proxy is cut off')
  t.equal(await send(proxied.url + '/api/tasks', { 'x-forwarded-for': '198.51.100.2' }), 401, 'another client behind the same proxy is not')
  const valid = await signHs({ sub: 'behind-the-proxy' })
  t.equal(await send(proxied.url + '/api/tasks', { 'x-forwarded-for': '198.51.100.1', ...bearer(valid) }), 429, 'a never-verified token from the cut-off client waits too')
  t.equal(await send(proxied.url + '/api/tasks', { 'x-forwarded-for': '198.51.100.2', ...bearer(valid) }), 200, 'from another client it passes')
})

t.test('Redis unreachable: failures are not limited (fail open), never a 5xx', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, REDIS_URL: 'redis://127.0.0.1:1', RATE_LIMIT_IP_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000' }, { listen: false })
  t.teardown(() => gw.close())
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) statuses.push((await inject(gw.app, '192.0.2.50', '/api/tasks', bearer('not.a.token'))).status)
  t.same(statuses, [401, 401, 401, 401, 401])
  t.equal((await inject(gw.app, '192.0.2.50', '/api/tasks', bearer(await signHs({ sub: 'through-the-outage' })))).status, 200)
})

const redisUp = await redisAnswers()
t.test('two gateways sharing one Redis share one failure budget per address', { skip: redisUp ? false : `Redis does not answer at ${REDIS_URL}` }, async (t) => {
  // A fresh address per run: the counters outlive the test in Redis.
  const address = `2001:db8:${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}::7`
  const env = { TASK_SERVICE_URL: up.url, REDIS_URL, TRUST_PROXY: '127.0.0.1', RATE_LIMIT_IP_MAX: '4', RATE_LIMIT_WINDOW_MS: '60000' }
  const gateways: RunningGateway[] = [await startGateway(env), await startGateway(env)]
  t.teardown(async () => { for (const g of gateways) await g.close() })
  const [a, b] = gateways as [RunningGateway, RunningGateway]
  const from = { 'x-forwarded-for': address, ...bearer('not.a.token') }
  const within = [await send(a.url + '/api/tasks', from), await send(b.url + '/api/tasks', from), await send(a.url + '/api/tasks', from), await send(b.url + '/api/tasks', from)]
  t.same(within, [401, 401, 401, 401], 'four failures spread over both gateways')
  t.equal(await send(a.url + '/api/tasks', from), 429, 'the 5th is refused by gateway A')
  t.equal(await send(b.url + '/api/tasks', from), 429, 'and by gateway B')
  const neighbour = `${address.slice(0, address.lastIndexOf(':'))}:8`
  t.equal(await send(a.url + '/api/tasks', { ...from, 'x-forwarded-for': neighbour }), 429, 'an address in the same IPv6 /64 shares the budget')
})
