// Faults survived, under load, through the real gateway and the real task service (everything on 127.0.0.1,
// bounded in requests and seconds). Single-request fault cases live next to the code they test
// (gateway/test/forward.test.ts, gateway/test/jwks.test.ts, task-service/test/resilience.test.ts); here
// the faults hit while many users are mid-flight, and the model checks that nothing acknowledged was lost.
//  - task service refusing, resetting, hanging, slow or answering garbage (a fault proxy between gateway
//    and task service): only 502/504 JSON within the deadline, no request hangs, the gateway recovers
//    by itself;
// The gateways here share their event loop with the database and the load generator, so load shedding
// (which measures that loop) is off in them; it is tested on its own in gateway/test/load-shedding.test.ts.
//  - the database going away mid-run: 503 through the gateway, no partial or lost writes, recovery;
//  - the JWKS endpoint down, hanging or answering garbage: known keys keep working, unknown keys get 401.
import t from 'tap'
import { request } from 'undici'
import { BACKEND, openMigratedPostgresVia, openTestDatabase, TEST_DATABASE_URL } from '../task-service/test/helpers.js'
import { startJwks } from '../support/jwks-server.js'
import { makeKey, mintDevToken, SECRET, signWith } from '../support/tokens.js'
import { startGateway } from '../support/gateway.js'
import { startTaskService } from '../support/task-service.js'
import { sleep } from '../support/wait.js'
import { FaultProxy, type FaultMode } from './helpers/fault-proxy.js'
import { FaultyDatabase } from './helpers/faulty-db.js'
import { assertIntact, summary, Workload, type WorkloadResult } from './helpers/workload.js'
import { errorCode } from '../task-service/test/error-schema.js'

type T = Parameters<Parameters<typeof t.test>[0]>[0]

async function get (url: string, token: string): Promise<{ status: number, code: string | undefined, ms: number }> {
  const started = Date.now()
  const res = await request(url, { headers: { authorization: `Bearer ${token}` }, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const text = await res.body.text()
  // Every error answer, the gateway's or the task service's, must be the one error shape (throws otherwise).
  const code = res.statusCode >= 400 ? errorCode({ body: text }) : undefined
  return { status: res.statusCode, code, ms: Date.now() - started }
}

function assertModel (t: T, r: WorkloadResult, allowed: number[]): void {
  t.comment(summary(r))
  if (r.errorSamples.length > 0) t.comment(r.errorSamples.join('\n'))
  const statuses = Object.keys(r.status)
  t.same(statuses.filter((s) => !allowed.includes(Number(s))), [], `only ${allowed.join('/')} were answered (${JSON.stringify(r.status)})`)
  t.equal(r.errors, 0, 'no unexpected status and no network error')
  assertIntact(t, r)
}

t.test('task service down, resetting, hanging, slow or answering garbage — alone and under load', async (t) => {
  const taskService = await startTaskService(t)
  const proxy = new FaultProxy({ host: '127.0.0.1', port: taskService.port })
  await proxy.start()
  t.teardown(() => proxy.close())
  const gateway = await startGateway({ TASK_SERVICE_URL: proxy.url, UPSTREAM_TIMEOUT_MS: '500', RATE_LIMIT_IP_MAX: '0', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }, { t })
  const base = gateway.url
  const token = await mintDevToken({ secret: SECRET, subject: 'fault-prober', ttlSeconds: 600 })

  // 'slow' holds every answer back 2 s: past the 500 ms deadline, so 504 as surely as 'hang'.
  const expected: Array<[FaultMode, number, string]> = [
    ['refuse', 502, 'upstream_unavailable'],
    ['reset', 502, 'upstream_unavailable'],
    ['garbage', 502, 'upstream_unavailable'],
    ['hang', 504, 'upstream_timeout'],
    ['slow', 504, 'upstream_timeout']
  ]
  for (const [mode, status, code] of expected) {
    await proxy.set(mode)
    const r = await get(base + '/api/tasks', token)
    t.equal(r.status, status, `${mode}: ${status}`)
    t.equal(r.code, code, `${mode}: JSON ${code}`)
    t.ok(r.ms < 8_000, `${mode}: answered within the bound (${r.ms} ms, UPSTREAM_TIMEOUT_MS=500)`)
    await proxy.set('pass')
    const back = await get(base + '/api/tasks', token)
    t.equal(back.status, 200, `${mode}: the next request after the fault is served (no restart)`)
  }

  // The same faults, cycling while 20 users work.
  const deadline = Date.now() + 4_000
  const load = new Workload({ targets: [base], secret: SECRET, users: 20, deadline, tolerated: new Set([502, 504]), requestTimeoutMs: 10_000 })
  await load.init()
  t.teardown(() => load.close())
  const running = load.run()
  let cycles = 0
  while (Date.now() < deadline - 1_500) {
    for (const [mode] of expected) {
      await proxy.set(mode)
      await sleep(150)
      await proxy.set('pass')
      await sleep(150)
    }
    cycles++
  }
  await proxy.set('pass')
  const r = await running
  await load.verify()
  t.ok(cycles > 0, `${cycles} full fault cycles ran during the load`)
  t.ok(r.tolerated > 0, `${r.tolerated} requests met a fault (502/504)`)
  assertModel(t, r, [200, 201, 204, 404, 502, 504])
  const after = await Promise.all(Array.from({ length: 20 }, async () => (await get(base + '/api/tasks', token)).status))
  t.same([...new Set(after)], [200], 'recovered by itself: 20 requests after the faults all 200')
})

t.test(`database gone mid-run (${BACKEND}): 503 through the gateway, nothing partial or lost, recovery without restart`, async (t) => {
  let takeDown: () => Promise<void>
  let bringBack: () => Promise<void>
  let taskService
  if (BACKEND === 'postgres') {
    // Real outage: PostgreSQL behind a fault proxy that refuses and resets every connection.
    const target = new URL(TEST_DATABASE_URL as string)
    const proxy = new FaultProxy({ host: target.hostname, port: Number(target.port || 5432) })
    await proxy.start()
    t.teardown(() => proxy.close())
    const db = await openMigratedPostgresVia(t, proxy.port, 5)
    taskService = await startTaskService(t, { db })
    takeDown = async () => { await proxy.set('refuse') }
    bringBack = async () => { await proxy.set('pass') }
  } else {
    const faulty = new FaultyDatabase(await openTestDatabase(t))
    taskService = await startTaskService(t, { db: faulty })
    takeDown = async () => { faulty.down = true }
    bringBack = async () => { faulty.down = false }
  }
  const gateway = await startGateway({ TASK_SERVICE_URL: taskService.url, RATE_LIMIT_IP_MAX: '0', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }, { t })
  const base = gateway.url
  const token = await mintDevToken({ secret: SECRET, subject: 'db-prober', ttlSeconds: 600 })

  const deadline = Date.now() + 4_000
  const load = new Workload({ targets: [base], secret: SECRET, users: 20, deadline, tolerated: new Set([503]), requestTimeoutMs: 15_000 })
  await load.init()
  t.teardown(() => load.close())
  const running = load.run()
  await sleep(1_000)
  await takeDown()
  const during = await get(base + '/api/tasks', token)
  const readyDuring = await request(base + '/readyz')
  await readyDuring.body.dump()
  await sleep(1_500)
  await bringBack()
  const r = await running
  await load.verify()

  t.equal(during.status, 503, 'a request during the outage → 503')
  t.equal(during.code, 'database_unavailable', "the task service's JSON error passes through")
  t.equal(readyDuring.statusCode, 503, "the gateway's /readyz reports the task service not ready")
  t.ok((r.status['503'] ?? 0) > 0, `${r.status['503'] ?? 0} requests of the load met the outage`)
  assertModel(t, r, [200, 201, 204, 404, 503])
  const ready = await request(base + '/readyz')
  await ready.body.dump()
  t.equal(ready.statusCode, 200, 'ready again, same processes')
})

t.test('JWKS down, hanging or answering garbage during load: known keys keep working, unknown keys get 401, never 5xx', async (t) => {
  const key = await makeKey('EdDSA', 'current')
  const next = await makeKey('EdDSA', 'next')
  const jwks = await startJwks([key.jwk])
  t.teardown(() => jwks.close())
  const taskService = await startTaskService(t)
  const gateway = await startGateway({
    TASK_SERVICE_URL: taskService.url,
    JWKS_URL: jwks.url,
    JWKS_TIMEOUT_MS: '300',
    JWKS_COOLDOWN_MS: '200',
    JWKS_REFRESH_MS: '1000',
    RATE_LIMIT_IP_MAX: '0',
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0'
  }, { t })
  const base = gateway.url
  const deadline = Date.now() + 4_000
  const load = new Workload({
    targets: [base],
    secret: SECRET,
    users: 15,
    deadline,
    requestTimeoutMs: 10_000,
    mintToken: async (sub) => await signWith(key, { sub, exp: Math.floor(Date.now() / 1000) + 3_600 })
  })
  await load.init()
  t.teardown(() => load.close())
  const running = load.run()
  const unknown = await signWith(next, { sub: 'not-yet-rotated' })
  const unknownStatuses: Array<{ status: number, code: string | undefined }> = []
  const fetchesBefore = jwks.fetches
  while (Date.now() < deadline - 500) {
    for (const mode of ['down', 'hang', 'garbage', 'ok'] as const) {
      jwks.mode = mode
      const r = await get(base + '/api/tasks', unknown)
      unknownStatuses.push({ status: r.status, code: r.code })
      await sleep(150)
    }
  }
  jwks.mode = 'ok'
  const r = await running
  await load.verify()
  t.ok(jwks.fetches > fetchesBefore, `${jwks.fetches - fetchesBefore} JWKS fetches were attempted during the faults`)
  assertModel(t, r, [200, 201, 204, 404])
  t.equal(r.serverErrors, 0, 'no 5xx')
  t.ok(unknownStatuses.length > 0 && unknownStatuses.every((x) => x.status === 401 && (x.code === 'unknown_key' || x.code === 'keys_unavailable')),
    `every unknown-key request → 401 (${unknownStatuses.length} tried)`)

  // Recovery without restart: the next key is published and accepted.
  jwks.keys = [key.jwk, next.jwk]
  let accepted = false
  for (let i = 0; i < 50 && !accepted; i++) {
    accepted = (await get(base + '/api/tasks', unknown)).status === 200
    if (!accepted) await sleep(100)
  }
  t.ok(accepted, 'a key published after the outage is accepted without a restart')
})
