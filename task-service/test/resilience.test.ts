// The database going away: 503 JSON (with Retry-After), /readyz 503, /healthz still 200, no partial writes, and
// recovery without a restart. On every backend through a fault-injecting wrapper; on PostgreSQL also for real,
// through a TCP proxy that the test cuts and restores.
import net from 'node:net'
import t from 'tap'
import type { Database, Queryable, QueryResult } from '../src/db.js'
import { BACKEND, buildTestApp, createTask, newUser, openMigratedPostgresVia, openTestDatabase, TEST_DATABASE_URL, type TaskJson } from './helpers.js'
import { errorCode } from './error-schema.js'

/** The errors drivers really throw when the server is gone. */
const OUTAGE_ERRORS: (() => Error)[] = [
  () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
  () => new Error('Connection terminated unexpectedly'),
  () => new Error('timeout exceeded when trying to connect'),
  () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
  () => Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
  () => new Error('PGlite is closed')
]

class FaultyDatabase implements Database {
  mode: 'up' | 'down' | 'hang' = 'up'
  private n = 0
  constructor (private readonly inner: Database) {}
  get kind (): Database['kind'] {
    return this.inner.kind
  }

  private async gate (): Promise<void> {
    if (this.mode === 'down') throw (OUTAGE_ERRORS[this.n++ % OUTAGE_ERRORS.length] as () => Error)()
    if (this.mode === 'hang') await new Promise((resolve) => setTimeout(resolve, 4000))
  }

  async query<R>(text: string, params?: unknown[]): Promise<QueryResult<R>> {
    await this.gate()
    return this.inner.query<R>(text, params)
  }

  async exec (sql: string): Promise<void> {
    await this.gate()
    return this.inner.exec(sql)
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    await this.gate()
    return this.inner.transaction(fn)
  }

  close (): Promise<void> {
    return this.inner.close()
  }
}

// One database for the injected-fault tests (each PGlite instance takes seconds to start).
const faulty = new FaultyDatabase(await openTestDatabase(t))

t.test(`database outage → 503 JSON, then recovery (${BACKEND}, injected faults)`, async (t) => {
  const app = await buildTestApp(t, { db: faulty })
  const user = newUser()
  const task = await createTask(app, user, { title: 'before' })

  faulty.mode = 'down'
  const requests = [
    { method: 'GET', url: '/tasks' },
    { method: 'POST', url: '/tasks', payload: { title: 'during outage' } },
    { method: 'GET', url: `/tasks/${task.id}` },
    { method: 'PUT', url: `/tasks/${task.id}`, payload: { title: 'during outage' } },
    { method: 'PATCH', url: `/tasks/${task.id}`, payload: { title: 'during outage' } },
    { method: 'PATCH', url: `/tasks/${task.id}/complete` },
    { method: 'DELETE', url: `/tasks/${task.id}` }
  ] as const
  for (const r of requests) {
    const res = await app.inject({ ...r, headers: { 'x-user-id': user } })
    t.equal(res.statusCode, 503, `${r.method} ${r.url}`)
    t.equal(res.headers['retry-after'], '1')
    t.same(res.json(), {
      error: { code: 'database_unavailable', message: 'the database is unavailable; retry shortly', requestId: res.headers['x-request-id'] }
    })
    t.equal(errorCode(res), 'database_unavailable')
    t.notMatch(res.body, /ECONNREFUSED|5432|terminated|PGlite/, 'no driver detail leaks')
  }
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 503)
  t.equal(errorCode(ready), 'database_unavailable')
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'the process is still alive')

  faulty.mode = 'up'
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200, 'ready again')
  const list = await app.inject({ url: '/tasks', headers: { 'x-user-id': user } })
  t.equal(list.statusCode, 200)
  t.same(list.json<TaskJson[]>(), [task], 'nothing was written or changed during the outage')
})

t.test('/readyz answers 503 within its timeout when the database hangs', async (t) => {
  const app = await buildTestApp(t, { db: faulty })
  faulty.mode = 'hang'
  const started = Date.now()
  const res = await app.inject({ url: '/readyz' })
  t.equal(res.statusCode, 503)
  t.ok(Date.now() - started < 3500, `answered in ${Date.now() - started} ms`)
  faulty.mode = 'up'
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200)
})

/** A TCP proxy in front of PostgreSQL that can be cut (listener closed, every connection reset) and restored. */
class CuttableProxy {
  private server: net.Server | undefined
  private readonly sockets = new Set<net.Socket>()
  port = 0
  constructor (private readonly target: { host: string; port: number }) {}

  async start (): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host)
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('close', () => this.sockets.delete(s))
        s.on('error', () => undefined)
      }
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve))
    this.port = (server.address() as net.AddressInfo).port
    this.server = server
  }

  async cut (): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const s of this.sockets) s.resetAndDestroy()
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

t.test('real PostgreSQL outage through a cut proxy → 503, then recovery without restart', { skip: BACKEND !== 'postgres' && 'needs TEST_DATABASE_URL' }, async (t) => {
  const target = new URL(TEST_DATABASE_URL as string)
  const proxy = new CuttableProxy({ host: target.hostname, port: Number(target.port || 5432) })
  await proxy.start()
  t.teardown(() => proxy.cut())
  const db = await openMigratedPostgresVia(t, proxy.port, 3)
  const app = await buildTestApp(t, { db })
  const user = newUser()
  const task = await createTask(app, user, { title: 'before the outage' })

  await proxy.cut()
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) {
    const res = await app.inject({ url: '/tasks', headers: { 'x-user-id': user } })
    statuses.push(res.statusCode)
    t.equal(errorCode(res), 'database_unavailable')
  }
  t.same(statuses, [503, 503, 503, 503], 'pooled connections reset, new ones refused: 503 every time')
  const write = await app.inject({ method: 'POST', url: '/tasks', headers: { 'x-user-id': user }, payload: { title: 'lost?' } })
  t.equal(write.statusCode, 503)
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 503)

  await proxy.start() // same port
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 200, 'ready again, same process')
  const list = await app.inject({ url: '/tasks', headers: { 'x-user-id': user } })
  t.equal(list.statusCode, 200)
  t.same(list.json<TaskJson[]>(), [task], 'the write during the outage did not happen; the earlier one survived')
})
