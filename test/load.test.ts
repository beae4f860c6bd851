// Load with proof of isolation and no lost writes: N users at once create, list, read, replace, toggle and
// delete their tasks through the real gateway into the real task service (PGlite, or PostgreSQL when
// TEST_DATABASE_URL is set), and probe each other's task ids. Bounded: LOAD_USERS × LOAD_OPS operations
// (defaults 50 × 16), each request at most 15 s; everything on 127.0.0.1. The long version is `npm run soak`.
import t from 'tap'
import { BACKEND } from '../task-service/test/helpers.js'
import { startStack } from '../support/stack.js'
import { SECRET } from '../support/tokens.js'
import { percentile } from '../support/stats.js'
import { summary, Workload } from './helpers/workload.js'

const USERS = Number(process.env.LOAD_USERS ?? 50)
const OPS = Number(process.env.LOAD_OPS ?? 16)

t.test(`${USERS} users at once through the gateway (${BACKEND}): isolated, nothing lost, no 5xx`, async (t) => {
  const { gateway } = await startStack(t, {
    gatewayEnv: {
      // Every simulated user connects from 127.0.0.1, with the default limits: users with valid tokens are
      // counted per user, never per address, so they are not one client here.
      // The gateway shares its event loop with the embedded database and the load generator here, so load
      // shedding (which measures that loop) is off; it is tested on its own in gateway/test/load-shedding.test.ts.
      LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0'
    }
  })
  const load = new Workload({ targets: [gateway.url], secret: SECRET, users: USERS, opsPerUser: OPS, requestTimeoutMs: 15_000 })
  await load.init()
  t.teardown(() => load.close())

  const started = Date.now()
  const r = await load.run()
  const seconds = (Date.now() - started) / 1000
  await load.verify()
  const sorted = [...r.latenciesMs].sort((a, b) => a - b)
  t.comment(`${summary(r)} in ${seconds.toFixed(1)} s (${(r.requests / seconds).toFixed(0)} req/s)`)
  if (r.errorSamples.length > 0) t.comment(r.errorSamples.join('\n'))

  t.ok(r.requests >= USERS * OPS * 0.9, `${r.requests} requests sent`)
  t.equal(r.errors, 0, 'no unexpected status, network error or timeout')
  t.equal(r.serverErrors, 0, 'zero 5xx')
  t.equal(r.hung, 0, 'no request hung')
  t.equal(r.leaks, 0, "no response ever carried another user's task")
  t.ok(r.crossUserProbes > 0, `${r.crossUserProbes} cross-user probes, each answered 404`)
  t.ok(r.tasksChecked > 0, `${r.tasksChecked} acknowledged tasks checked afterwards`)
  t.equal(r.lostWrites, 0, 'every acknowledged create is present (and not deleted by anyone else)')
  t.equal(r.phantoms, 0, "each user's tasks are exactly the ones that user created and did not delete")
  t.equal(r.mismatches, 0, 'every task holds the last acknowledged write')
  t.ok(percentile(sorted, 99) > 0, `p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms`)
})
