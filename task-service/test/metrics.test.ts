// /metrics: served only by the separate listener, labelled by route template (never a path, id or user), one
// registry per app, database timings and pool state, and a bounded number of series however many ids and users.
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { BACKEND, buildTestApp, createTask, newUser, openTestDatabase, type TestContext } from './helpers.js'
import { runMigrations } from '../src/migrate.js'
import { increase, parseMetrics } from '../../support/prometheus.js'

/** One scrape on a connection of its own (no keep-alive race with the listener's idle timeout). */
async function get (url: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    }).on('error', reject)
  })
}

// One database for the apps below (opening and migrating one is the slow part on a busy machine); the
// database-outage test opens its own.
const sharedDb = await openTestDatabase(t)
await runMigrations(sharedDb)

async function metricsApp (t: TestContext, extra: Parameters<typeof buildTestApp>[1] = { db: sharedDb }): Promise<{ app: FastifyInstance, scrape: () => Promise<Map<string, number>>, url: string }> {
  const app = await buildTestApp(t, { ...extra, config: { metricsPort: 9465 } })
  const metrics = app.metrics
  if (metrics === undefined) throw new Error('metrics are off')
  const listener = await metrics.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => listener.close())
  const url = `http://127.0.0.1:${listener.port}/metrics`
  return {
    app,
    url,
    scrape: async () => {
      const { status, body } = await get(url)
      if (status !== 200) throw new Error(`scrape answered ${status}`)
      return parseMetrics(body)
    }
  }
}

const shared = await metricsApp(t)

t.test('request metrics carry the route template, never the path, id or user', async (t) => {
  const { app, scrape } = shared
  const alice = newUser('alice')
  const task = await createTask(app, alice, { title: 'one' })
  t.equal((await app.inject({ method: 'GET', url: `/tasks/${task.id}`, headers: { 'x-user-id': alice } })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: `/tasks/${randomUUID()}`, headers: { 'x-user-id': alice } })).statusCode, 404)
  t.equal((await app.inject({ method: 'GET', url: '/tasks' })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: `/no/such/${randomUUID()}` })).statusCode, 404)
  t.equal((await app.inject({ method: 'PATCH', url: `/tasks/${task.id}/complete`, headers: { 'x-user-id': alice } })).statusCode, 200)

  const m = await scrape()
  t.equal(m.get('http_requests_total{method="POST",route="/tasks",status_code="201"}'), 1)
  t.equal(m.get('http_requests_total{method="GET",route="/tasks/:id",status_code="200"}'), 1)
  t.equal(m.get('http_requests_total{method="GET",route="/tasks/:id",status_code="404"}'), 1)
  t.equal(m.get('http_requests_total{method="GET",route="/tasks",status_code="401"}'), 1)
  t.equal(m.get('http_requests_total{method="GET",route="unmatched",status_code="404"}'), 1)
  t.equal(m.get('http_requests_total{method="PATCH",route="/tasks/:id/complete",status_code="200"}'), 1)
  t.equal(m.get('http_request_duration_seconds_count{method="POST",route="/tasks",status_code="201"}'), 1)
  t.ok((m.get('http_request_duration_seconds_sum{method="POST",route="/tasks",status_code="201"}') ?? 0) > 0, 'a duration was recorded')
  t.equal(m.get('http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/tasks",status_code="201"}'), 1)
  t.equal(m.get('http_requests_in_flight'), 0, 'nothing in flight once answered')

  const text = [...m.keys()].join('\n')
  t.notOk(text.includes(task.id), 'no task id in any series')
  t.notOk(text.includes(alice), 'no user id in any series')

  t.ok((m.get('task_service_db_query_duration_seconds_count{operation="insert",outcome="ok"}') ?? 0) >= 1, 'the insert was timed')
  t.ok((m.get('task_service_db_query_duration_seconds_count{operation="select",outcome="ok"}') ?? 0) >= 2, 'the selects were timed')
  t.ok((m.get('task_service_db_query_duration_seconds_count{operation="update",outcome="ok"}') ?? 0) >= 1, 'the toggle was timed')
  t.equal(m.get(`task_service_db_info{backend="${BACKEND}"}`), 1)
  if (BACKEND === 'postgres') {
    t.ok((m.get('task_service_db_pool_connections{state="total"}') ?? 0) >= 1, 'the pool has opened a connection')
    t.equal(m.get('task_service_db_pool_connections{state="active"}'), 0, 'none checked out while idle')
    t.equal(m.get('task_service_db_pool_waiting_requests'), 0)
    t.equal(m.get('task_service_db_pool_max_connections'), 5, 'the test pool\'s limit')
  } else {
    t.notOk([...m.keys()].some((k) => k.startsWith('task_service_db_pool_')), 'no pool series for PGlite (one in-process connection)')
  }
  t.ok(m.has('process_cpu_user_seconds_total'), 'default process metrics')
  t.ok(m.has('nodejs_eventloop_lag_seconds'), 'default Node.js metrics')
  t.ok(m.has('nodejs_heap_size_used_bytes'), 'default heap metrics')
})

t.test('a thousand distinct ids and users add no series', async (t) => {
  const { app, scrape } = shared
  const round = async (): Promise<void> => {
    const user = newUser('many')
    const id = randomUUID()
    // One database query per round (a busy machine runs this too): an id lookup; then a path that is no route,
    // and a refused request, both carrying the id and the user.
    await app.inject({ method: 'GET', url: `/tasks/${id}`, headers: { 'x-user-id': user } })
    await app.inject({ method: 'GET', url: `/${id}/${user}` })
    await app.inject({ method: 'DELETE', url: `/tasks/${id}?user=${user}`, headers: { 'x-user-id': '' } })
  }
  await round()
  const before = await scrape()
  for (let i = 0; i < 1000; i++) await round()
  const after = await scrape()
  // A GC kind's series appears when that kind of collection first runs (timing, not requests): not counted.
  const series = (m: Map<string, number>): string[] => [...m.keys()].filter((k) => !k.startsWith('nodejs_gc_duration_seconds'))
  t.same(series(after).filter((k) => !before.has(k)), [], 'no new series')
  t.equal(series(after).length, series(before).length)
  t.equal(
    increase(before, after, 'http_requests_total{method="GET",route="/tasks/:id",status_code="404"}'),
    1000,
    'every request counted'
  )
})

t.test('the API port never serves /metrics; the metrics listener serves nothing else', async (t) => {
  const { app, url } = shared
  const api = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(api.statusCode, 404)
  t.equal(api.json().error.code, 'route_not_found')
  // What the listener answers on the wire is the shared one's (packages/observability/test); here: the service's code.
  const res = await fetch(url)
  t.equal(res.status, 200)
  await res.body?.cancel()
  const other = await fetch(url.replace('/metrics', '/tasks'))
  t.equal(other.status, 404)
  t.equal((await other.json() as { error: { code: string } }).error.code, 'route_not_found')
})

t.test('each app has its own registry: two apps in one process count separately', async (t) => {
  const a = shared
  const b = await metricsApp(t)
  const series = 'http_requests_total{method="GET",route="/tasks",status_code="200"}'
  const before = (await a.scrape()).get(series) ?? 0
  await a.app.inject({ method: 'GET', url: '/tasks', headers: { 'x-user-id': newUser() } })
  await a.app.inject({ method: 'GET', url: '/tasks', headers: { 'x-user-id': newUser() } })
  await b.app.inject({ method: 'GET', url: '/tasks', headers: { 'x-user-id': newUser() } })
  t.equal((await a.scrape()).get(series), before + 2)
  t.equal((await b.scrape()).get(series), 1)
})

t.test('a database that is gone is counted as unavailable, its requests as 503', async (t) => {
  const db = await openTestDatabase(t)
  await runMigrations(db)
  const { app, scrape } = await metricsApp(t, { db })
  await db.close()
  t.equal((await app.inject({ method: 'GET', url: '/tasks', headers: { 'x-user-id': newUser() } })).statusCode, 503)
  const m = await scrape()
  t.equal(m.get('http_requests_total{method="GET",route="/tasks",status_code="503"}'), 1)
  t.equal(m.get('task_service_db_query_duration_seconds_count{operation="select",outcome="unavailable"}'), 1)
})

t.test('METRICS_PORT=0: no metrics are collected', async (t) => {
  const app = await buildTestApp(t, { db: sharedDb })
  t.equal(app.metrics, undefined)
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
})
