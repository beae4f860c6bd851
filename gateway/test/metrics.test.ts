// /metrics: only on the separate listener; request metrics by route template (never a path, id or user);
// authentication failures, rate-limit and load-shedding refusals, upstream timings and errors, JWKS and
// verification-cache state; a bounded number of series whatever the ids and users; one registry per app.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { request } from 'undici'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import type { TapTest } from '../../support/test-context.js'
import { startJwks } from '../../support/jwks-server.js'
import { bearer, makeKey, signHs, signWith } from '../../support/tokens.js'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { increase, parseMetrics } from '../../support/prometheus.js'

interface Setup { gw: RunningGateway, up: StubUpstream, metricsUrl: string, scrape: () => Promise<Map<string, number>> }

async function setup (t: TapTest, env: Record<string, string> = {}): Promise<Setup> {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, ...env })
  t.teardown(() => gw.close())
  const metrics = gw.app.gatewayMetrics
  if (metrics === undefined) throw new Error('metrics are off')
  const listener = await metrics.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => listener.close())
  const metricsUrl = `http://127.0.0.1:${listener.port}/metrics`
  return {
    gw,
    up,
    metricsUrl,
    scrape: async () => {
      const res = await request(metricsUrl, { reset: true })
      if (res.statusCode !== 200) throw new Error(`scrape answered ${res.statusCode}`)
      return parseMetrics(await res.body.text())
    }
  }
}

async function call (gw: RunningGateway, method: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(gw.url + path, { method: method as 'GET', headers })
  await res.body.dump()
  return res.statusCode
}

t.test('request metrics carry method, route template and status — never the path, an id or a user', async (t) => {
  const { gw, scrape } = await setup(t)
  const alice = await signHs({ sub: 'alice-7f3a' })
  const id = randomUUID()
  t.equal(await call(gw, 'GET', '/api/tasks', bearer(alice)), 200)
  t.equal(await call(gw, 'GET', `/api/tasks/${id}`, bearer(alice)), 200)
  t.equal(await call(gw, 'PATCH', `/api/alice-7f3a/tasks/${id}/complete`, bearer(alice)), 200)
  t.equal(await call(gw, 'GET', `/api/bob/tasks/${id}`, bearer(alice)), 403)
  t.equal(await call(gw, 'GET', `/api/tasks/${id}`), 401)
  t.equal(await call(gw, 'POST', `/api/tasks/${id}/complete`, bearer(alice)), 405)
  t.equal(await call(gw, 'GET', `/secret/${id}`, bearer(alice)), 404)
  t.equal(await call(gw, 'GET', '/healthz'), 200)
  t.equal(await call(gw, 'GET', '/api/tasks/%zz', bearer(alice)), 404, 'a URL the router cannot take')

  const m = await scrape()
  const count = (labels: string): number | undefined => m.get(`http_requests_total{${labels}}`)
  t.equal(count('method="GET",route="/api/tasks",status_code="200"'), 1)
  t.equal(count('method="GET",route="/api/tasks/:id",status_code="200"'), 1)
  t.equal(count('method="PATCH",route="/api/:user_id/tasks/:id/complete",status_code="200"'), 1)
  t.equal(count('method="GET",route="/api/:user_id/tasks/:id",status_code="403"'), 1)
  t.equal(count('method="GET",route="/api/tasks/:id",status_code="401"'), 1, 'a refused request still has its template')
  t.equal(count('method="POST",route="/api/tasks/:id/complete",status_code="405"'), 1)
  t.equal(count('method="GET",route="unmatched",status_code="404"'), 2)
  t.equal(count('method="GET",route="/healthz",status_code="200"'), 1)
  t.equal(m.get('http_request_duration_seconds_count{method="GET",route="/api/tasks",status_code="200"}'), 1)
  t.equal(m.get('http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/tasks",status_code="200"}'), 1)
  t.equal(m.get('http_requests_in_flight'), 0)
  t.equal(m.get('gateway_authentication_failures_total{code="missing_token"}'), 1)
  t.equal(m.get('gateway_upstream_duration_seconds_count{status_code="200"}'), 3, 'the three forwarded requests')
  t.equal(m.get('gateway_verification_cache_requests_total{result="miss"}'), 1, 'the first verification')
  t.ok((m.get('gateway_verification_cache_requests_total{result="hit"}') ?? 0) >= 5, 'later ones from the cache')
  t.equal(m.get('gateway_verification_cache_entries'), 1)
  t.equal(m.get('gateway_verification_cache_max_entries'), 10_000)
  t.ok(m.has('process_cpu_user_seconds_total') && m.has('nodejs_eventloop_lag_seconds'), 'default process metrics')
  const names = [...m.keys()].join('\n')
  t.notOk(names.includes(id), 'no task id in any series')
  t.notOk(names.includes('alice'), 'no user in any series')
  t.notOk(names.includes('secret'), 'no raw path in any series')
})

t.test('a thousand distinct ids and users add no series', async (t) => {
  const { gw, scrape } = await setup(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const round = async (i: number): Promise<void> => {
    const user = `user-${i}-${randomUUID()}`
    const token = await signHs({ sub: user })
    const id = randomUUID()
    await call(gw, 'GET', `/api/tasks/${id}`, bearer(token))
    await call(gw, 'DELETE', `/api/${encodeURIComponent(user)}/tasks/${id}`, bearer(token))
    await call(gw, 'GET', `/api/someone-else-${i}/tasks`, bearer(token))
    await call(gw, 'GET', `/api/tasks/${id}?q=${id}`, bearer(await signHs({ sub: user, exp: 1 })))
    await call(gw, 'GET', `/${id}/${user}`, bearer(token))
  }
  await round(0)
  const before = await scrape()
  for (let i = 1; i <= 1000; i++) await round(i)
  const after = await scrape()
  // Process metrics (nodejs_*, process_*) follow the process, not the traffic: a GC of a kind not seen
  // before adds its series. Everything the gateway labels must stay as it was.
  const traffic = (k: string): boolean => !k.startsWith('nodejs_') && !k.startsWith('process_')
  t.same([...after.keys()].filter((k) => traffic(k) && !before.has(k)), [], 'no new series')
  t.equal(
    increase(before, after, 'http_requests_total{method="GET",route="/api/tasks/:id",status_code="200"}'),
    1000,
    'every request counted'
  )
})

t.test('the public port never serves /metrics; the metrics listener serves nothing else', async (t) => {
  const { gw, metricsUrl } = await setup(t)
  t.equal(await call(gw, 'GET', '/metrics'), 401, 'no token: 401, like any other path')
  t.equal(await call(gw, 'GET', '/metrics', bearer(await signHs({ sub: 'alice' }))), 404, 'with a token: outside the route table')
  // What the listener answers on the wire is the shared one's (packages/observability/test); here: the gateway's code.
  const res = await request(metricsUrl)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  const other = await request(metricsUrl.replace('/metrics', '/api/tasks'))
  t.equal(other.statusCode, 404)
  t.match(await other.body.json(), { error: { code: 'not_found' } })
})

t.test('rate-limit and load-shedding refusals are counted by limit and reason', async (t) => {
  const { gw, scrape } = await setup(t, { RATE_LIMIT_USER_MAX: '2', RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_WINDOW_MS: '60000' })
  const token = await signHs({ sub: 'limited' })
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push(await call(gw, 'GET', '/api/tasks', bearer(token)))
  t.same(statuses, [200, 200, 429, 429])
  const m = await scrape()
  t.equal(m.get('gateway_rate_limited_total{limit="user"}'), 2)
  t.equal(m.get('http_requests_total{method="GET",route="/api/tasks",status_code="429"}'), 2)

  gw.app.gatewayMetrics?.loadShed('eventLoopDelay')
  gw.app.gatewayMetrics?.loadShed('something-new')
  const m2 = await scrape()
  t.equal(m2.get('gateway_load_shed_total{reason="eventLoopDelay"}'), 1)
  t.equal(m2.get('gateway_load_shed_total{reason="other"}'), 1, 'an unknown reason cannot make a new series')
})

t.test('a cut-off address is counted as limit="ip"; its refused requests are not authentication failures (never verified)', async (t) => {
  const { gw, scrape } = await setup(t, { RATE_LIMIT_IP_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000' })
  const statuses = []
  for (let i = 0; i < 5; i++) statuses.push(await call(gw, 'GET', '/api/tasks', { authorization: 'Bearer not.a.token' }))
  t.same(statuses, [401, 401, 429, 429, 429])
  const m = await scrape()
  t.equal(m.get('gateway_rate_limited_total{limit="ip"}'), 3)
  t.equal(m.get('gateway_authentication_failures_total{code="malformed_token"}'), 2)
})

t.test('upstream errors: 502 when the task service is down, 504 when it is slow', async (t) => {
  const { gw, up, scrape } = await setup(t, { UPSTREAM_TIMEOUT_MS: '300' })
  const token = await signHs({ sub: 'alice' })
  up.respond((req, res) => {
    if (req.url === '/tasks') setTimeout(() => { res.writeHead(200).end('[]') }, 2_000)
    else res.writeHead(200).end('{}')
  })
  t.equal(await call(gw, 'GET', '/api/tasks', bearer(token)), 504)
  await up.close()
  t.equal(await call(gw, 'GET', '/api/tasks/x', bearer(token)), 502)
  const m = await scrape()
  t.equal(m.get('gateway_upstream_errors_total{kind="timeout"}'), 1)
  t.equal(m.get('gateway_upstream_errors_total{kind="unavailable"}'), 1)
  t.equal(m.get('gateway_upstream_errors_total{kind="failed_mid_body"}'), 0)
  t.equal(m.get('http_requests_total{method="GET",route="/api/tasks",status_code="504"}'), 1)
  t.equal(m.get('http_requests_total{method="GET",route="/api/tasks/:id",status_code="502"}'), 1)
})

t.test('JWKS: fetches by result, key count, age of the key set', async (t) => {
  const key = await makeKey('EdDSA', 'k1')
  const jwks = await startJwks([key.jwk])
  t.teardown(() => jwks.close())
  const { gw, scrape } = await setup(t, { JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: '0' })
  let m = await scrape()
  t.equal(m.get('gateway_jwks_fetches_total{result="success"}'), 1)
  t.equal(m.get('gateway_jwks_fetches_total{result="failure"}'), 0)
  t.equal(m.get('gateway_jwks_keys'), 1)
  const age = m.get('gateway_jwks_age_seconds') ?? -1
  t.ok(age >= 0 && age < 60, `age of the key set: ${age} s`)
  // An unknown kid makes the gateway refetch; the endpoint is down: a failure, the old keys stay.
  jwks.mode = 'down'
  const other = await makeKey('EdDSA', 'k2')
  t.equal(await call(gw, 'GET', '/api/tasks', bearer(await signWith(other, { sub: 'alice' }))), 401)
  m = await scrape()
  t.equal(m.get('gateway_jwks_fetches_total{result="failure"}'), 1)
  t.equal(m.get('gateway_jwks_keys'), 1, 'the last good keys are kept')
  t.equal(m.get('gateway_authentication_failures_total{code="unknown_key"}'), 1)
})

t.test('each app has its own registry; METRICS_PORT=0 collects nothing', async (t) => {
  const a = await setup(t)
  const b = await setup(t)
  const token = await signHs({ sub: 'alice' })
  await call(a.gw, 'GET', '/api/tasks', bearer(token))
  await call(a.gw, 'GET', '/api/tasks', bearer(token))
  await call(b.gw, 'GET', '/api/tasks', bearer(token))
  t.equal((await a.scrape()).get('http_requests_total{method="GET",route="/api/tasks",status_code="200"}'), 2)
  t.equal((await b.scrape()).get('http_requests_total{method="GET",route="/api/tasks",status_code="200"}'), 1)
  const off = await startGateway({ TASK_SERVICE_URL: a.up.url, METRICS_PORT: '0' })
  t.teardown(() => off.close())
  t.equal(off.app.gatewayMetrics, undefined)
  t.equal(await call(off, 'GET', '/api/tasks', bearer(token)), 200)
})
