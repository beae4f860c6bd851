// Rate limiting: per user (`sub`) for valid tokens, per client address for requests without one (cut off
// before verification once used up); 429 JSON with Retry-After; nothing forwarded over a limit; generous
// defaults; shared across two gateways through Redis. Who counts where: rate-limit-who.test.ts.
import t from 'tap'
import { request } from 'undici'
import { redisAnswers, TEST_REDIS_URL as REDIS_URL } from '../../support/redis.js'
import { randomBytes } from 'node:crypto'
import { loadConfig } from '../src/config.js'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { eventually } from '../../support/wait.js'
import { startGateway } from '../../support/gateway.js'
import { ASSERTION_ENV, AUDIENCE, bearer, SECRET, signHs } from '../../support/tokens.js'

let up: StubUpstream
t.before(async () => { up = await startUpstream() })
t.teardown(async () => { await up.close() })
t.beforeEach(() => { up.received.length = 0 })

async function get (url: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: Record<string, unknown>, json: { error?: { code?: string, message?: string } } }> {
  const res = await request(url, { headers })
  const text = await res.body.text()
  let json = {}
  try { json = JSON.parse(text) } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers, json }
}

t.test('defaults are generous: at least 100 requests/s per user, a few hundred failures per window per address, and 200 quick requests of one user all pass', async (t) => {
  const c = loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE })
  const rl = c.limits?.rateLimit
  t.ok(rl !== undefined)
  t.ok((rl?.userMax ?? 0) / ((rl?.windowMs ?? 1) / 1000) >= 100, `per user: ${rl?.userMax} per ${rl?.windowMs} ms`)
  // Bounded both ways: renewals behind one NAT fit; an address sending bad tokens is cut off within its window.
  t.ok((rl?.ipMax ?? 0) >= 200 && (rl?.ipMax ?? 0) <= 2_000, `per address without a valid token: ${rl?.ipMax} per ${rl?.windowMs} ms`)
  const gw = await startGateway({ TASK_SERVICE_URL: up.url })
  t.teardown(() => gw.close())
  const token = await signHs({ sub: 'busy-frontend' })
  const statuses = await Promise.all(Array.from({ length: 200 }, async () => (await get(gw.url + '/api/tasks', bearer(token))).status))
  t.same([...new Set(statuses)], [200], 'all 200 answered 200')
  t.equal(up.tasks().length, 200)
})

t.test('per user: over the limit → 429 JSON rate_limited with Retry-After, nothing forwarded; other users unaffected', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_USER_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' })
  t.teardown(() => gw.close())
  const alice = await signHs({ sub: 'alice' })
  const bob = await signHs({ sub: 'bob' })
  for (let i = 0; i < 5; i++) t.equal((await get(gw.url + '/api/tasks', bearer(alice))).status, 200, `request ${i + 1} of 5`)
  const over = await get(gw.url + '/api/tasks', bearer(alice))
  t.equal(over.status, 429)
  t.equal(over.json.error?.code, 'rate_limited')
  t.match(over.headers['retry-after'], /^\d+$/)
  t.ok(Number(over.headers['retry-after']) >= 1 && Number(over.headers['retry-after']) <= 60, `Retry-After ${String(over.headers['retry-after'])} s`)
  t.equal(over.headers['cache-control'], 'no-store')
  t.equal(up.tasks().length, 5, 'the 6th request was not forwarded')
  t.equal((await get(gw.url + '/api/tasks', bearer(bob))).status, 200, 'bob has his own budget')
  t.equal((await get(gw.url + '/api/alice/tasks', bearer(alice))).status, 429, 'the compat route shares the same per-user budget')
})

t.test('per user: the budget comes back after the window', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_USER_MAX: '2', RATE_LIMIT_WINDOW_MS: '3000' })
  t.teardown(() => gw.close())
  const token = await signHs({ sub: 'carol' })
  await get(gw.url + '/api/tasks', bearer(token))
  await get(gw.url + '/api/tasks', bearer(token))
  t.equal((await get(gw.url + '/api/tasks', bearer(token))).status, 429)
  await eventually(async () => (await get(gw.url + '/api/tasks', bearer(token))).status === 200, 20_000)
  t.pass('served again after the window, without a restart')
})

t.test('per address: a flood of bad tokens is cut off with 429 once its budget is used up; health probes are not limited', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_IP_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' })
  t.teardown(() => gw.close())
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) statuses.push((await get(gw.url + '/api/tasks', { authorization: 'Bearer not.a.token' })).status)
  t.same(statuses, [401, 401, 401, 429, 429], 'three failures, then refused before the token is looked at')
  const good = await signHs({ sub: 'dave' })
  t.equal((await get(gw.url + '/api/tasks', bearer(good))).status, 429, 'a token never verified before, from the cut-off address, waits for the window too')
  t.equal((await get(gw.url + '/healthz')).status, 200)
  t.equal((await get(gw.url + '/readyz')).status, 200)
  t.equal(up.tasks().length, 0, 'nothing was forwarded')
})

t.test('a limit of 0 turns that limit off', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  t.teardown(() => gw.close())
  const token = await signHs({ sub: 'erin' })
  const res = await get(gw.url + '/api/tasks', bearer(token))
  t.equal(res.status, 200)
  t.notOk('ratelimit-limit' in res.headers)
})

t.test('invalid settings refuse to start', async (t) => {
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, RATE_LIMIT_USER_MAX: 'lots' }), /RATE_LIMIT_USER_MAX/)
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, RATE_LIMIT_WINDOW_MS: '-1' }), /RATE_LIMIT_WINDOW_MS/)
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, REDIS_URL: 'http://127.0.0.1:6379' }), /REDIS_URL/)
})

t.test('RateLimit headers describe the limit that counted the request: per user with a valid token, per address without', async (t) => {
  const token = await signHs({ sub: `headers-${randomBytes(4).toString('hex')}` })
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_IP_MAX: '10', RATE_LIMIT_USER_MAX: '100', RATE_LIMIT_WINDOW_MS: '60000' })
  t.teardown(() => gw.close())
  await get(gw.url + '/api/tasks', bearer(token))
  await get(gw.url + '/api/tasks', bearer(token))
  const a = await get(gw.url + '/api/tasks', bearer(token))
  t.same([a.headers['ratelimit-limit'], a.headers['ratelimit-remaining']], ['100', '97'], 'the per-user limit, 3 of 100 used')

  const c = await get(gw.url + '/api/tasks')
  t.equal(c.status, 401)
  t.same([c.headers['ratelimit-limit'], c.headers['ratelimit-remaining']], ['10', '9'], 'no valid token: the per-address limit, 1 of 10 used (the valid requests were not counted there)')

  const both = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_IP_MAX: '2', RATE_LIMIT_USER_MAX: '1', RATE_LIMIT_WINDOW_MS: '60000' })
  t.teardown(() => both.close())
  t.equal((await get(both.url + '/api/tasks', bearer(token))).status, 200)
  const refused = await get(both.url + '/api/tasks', bearer(token))
  t.equal(refused.status, 429)
  t.same([refused.headers['ratelimit-limit'], refused.headers['ratelimit-remaining']], ['1', '0'], 'a 429 describes the limit that refused it')
})

t.test('Redis unreachable: requests are let through (fail open), never a 5xx or a hung request', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, REDIS_URL: 'redis://127.0.0.1:1', RATE_LIMIT_USER_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000' })
  t.teardown(() => gw.close())
  const token = await signHs({ sub: 'frank' })
  const statuses = await Promise.all(Array.from({ length: 5 }, async () => (await get(gw.url + '/api/tasks', bearer(token))).status))
  t.same(statuses, [200, 200, 200, 200, 200])
})

const redisUp = await redisAnswers()
t.test('two gateways sharing one Redis enforce one limit', { skip: redisUp ? false : `Redis does not answer at ${REDIS_URL}` }, async (t) => {
  const env = { TASK_SERVICE_URL: up.url, REDIS_URL, RATE_LIMIT_USER_MAX: '6', RATE_LIMIT_IP_MAX: '1000', RATE_LIMIT_WINDOW_MS: '60000' }
  const a = await startGateway(env)
  const b = await startGateway(env)
  t.teardown(async () => { await a.close(); await b.close() })
  const token = await signHs({ sub: `shared-${randomBytes(6).toString('hex')}` })
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) statuses.push((await get((i % 2 === 0 ? a : b).url + '/api/tasks', bearer(token))).status)
  t.same(statuses, [200, 200, 200, 200, 200, 200], 'six requests spread over both gateways pass')
  t.equal((await get(a.url + '/api/tasks', bearer(token))).status, 429, 'the 7th is refused by gateway A')
  t.equal((await get(b.url + '/api/tasks', bearer(token))).status, 429, 'and by gateway B')
  t.equal(up.tasks().length, 6)
})

t.test('per address: only GET/HEAD on /healthz and /readyz are exempt; other methods on them count and are cut off before authentication', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_IP_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000' })
  t.teardown(() => gw.close())
  const statuses: number[] = []
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const res = await request(gw.url + (method === 'PUT' ? '/readyz' : '/healthz'), { method, headers: { authorization: 'Bearer not.a.token' } })
    await res.body.dump()
    statuses.push(res.statusCode)
  }
  t.same(statuses, [401, 401, 429])
  for (const method of ['GET', 'HEAD'] as const) {
    for (const path of ['/healthz', '/readyz']) {
      const res = await request(gw.url + path, { method })
      await res.body.dump()
      t.equal(res.statusCode, 200, `${method} ${path} is still answered`)
    }
  }
})
