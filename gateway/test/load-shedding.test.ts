// Load shedding: while the event loop is stalled the gateway answers 503 JSON `overloaded` with Retry-After
// at once — before authentication, nothing forwarded — keeps /healthz alive, and serves again by itself.
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { eventually } from '../../support/wait.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import { ASSERTION_ENV, AUDIENCE, bearer, SECRET, signHs } from '../../support/tokens.js'

let up: StubUpstream
let gw: RunningGateway
let token: string

t.before(async () => {
  up = await startUpstream()
  gw = await startGateway({
    TASK_SERVICE_URL: up.url,
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '100',
    LOAD_SHED_SAMPLE_INTERVAL_MS: '100'
  }, { listen: false })
  token = await signHs({ sub: 'user-1' })
})
t.teardown(async () => {
  await gw.close()
  await up.close()
})

/** Blocks the event loop (a stall: a synchronous CPU burst). */
function stall (ms: number): void {
  const end = Date.now() + ms
  while (Date.now() < end) { /* busy */ }
}

/**
 * Stalls the loop, then waits until the gateway has noticed (polling without a token, so nothing can be
 * forwarded). The first sample after a stall can miss it: when under-pressure's timer happens to fire before
 * the delay histogram's own timer, the stall lands in the next interval's histogram instead, and the
 * gateway sheds one sample interval later. Polling covers both orders; asserting right after the first
 * timer made this test fail about one time in ten.
 */
async function stallUntilShedding (): Promise<void> {
  stall(2_500)
  await eventually(async () => (await gw.app.inject({ url: '/api/tasks' })).statusCode === 503, 5_000)
}

/**
 * Keeps the loop stalled in short bursts while `fn` runs: shedding lasts one sample interval (100 ms here),
 * and a test process descheduled for that long must not see the gateway recover between two assertions.
 */
async function underPressure<T> (fn: () => Promise<T>): Promise<T> {
  const hold = setInterval(() => { stall(150) }, 20)
  try {
    return await fn()
  } finally {
    clearInterval(hold)
  }
}

t.test('a stalled event loop → 503 overloaded with Retry-After, nothing forwarded; /healthz still 200', async (t) => {
  await eventually(async () => (await gw.app.inject({ url: '/api/tasks', headers: bearer(token) })).statusCode === 200, 20_000)
  up.received.length = 0
  await stallUntilShedding()
  const [shed, noToken, health] = await underPressure(async () => [
    await gw.app.inject({ url: '/api/tasks', headers: bearer(token) }),
    await gw.app.inject({ url: '/api/tasks' }),
    await gw.app.inject({ url: '/healthz' })
  ])
  t.equal(shed.statusCode, 503)
  t.equal(shed.json().error.code, 'overloaded')
  t.equal(shed.headers['retry-after'], '1')
  t.equal(shed.headers['cache-control'], 'no-store')
  t.equal(noToken.statusCode, 503, 'shed before authentication (no work spent on tokens)')
  t.equal(health.statusCode, 200, 'liveness is not shed')
  t.equal(up.tasks().length, 0, 'nothing was forwarded')
})

t.test('recovers by itself once the loop is healthy again', async (t) => {
  await stallUntilShedding()
  t.equal((await underPressure(async () => await gw.app.inject({ url: '/api/tasks', headers: bearer(token) }))).statusCode, 503)
  await eventually(async () => (await gw.app.inject({ url: '/api/tasks', headers: bearer(token) })).statusCode === 200, 20_000)
  t.pass('served again without a restart')
})

t.test('defaults: shed on a mean event-loop delay over 200 ms; settings validated', async (t) => {
  const d = loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE }).limits?.loadShedding
  t.equal(d?.maxEventLoopDelayMs, 200)
  t.equal(d?.sampleIntervalMs, 1000)
  t.equal(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, LOAD_SHED_MAX_EVENT_LOOP_UTILIZATION: '0.98' }).limits?.loadShedding.maxEventLoopUtilization, 0.98)
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, LOAD_SHED_MAX_EVENT_LOOP_UTILIZATION: '1.5' }), /LOAD_SHED_MAX_EVENT_LOOP_UTILIZATION/)
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: 'soon' }), /LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS/)
})
