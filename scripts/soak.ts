// Soak: the long version of test/load.test.ts. N users create, list, read, replace, toggle and delete their
// tasks through a real gateway process (gateway/src/server.ts) into the real task service for a fixed time,
// probing each other's task ids; then every user's tasks are listed and compared with the model.
//
//   npm run soak -- --seconds 120 --users 50
//   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run soak -- --seconds 120
//
// Bounded (it stops by itself after --seconds, max 3600), 127.0.0.1 only. The task service runs in this
// process on in-memory PGlite, or in a private PostgreSQL schema (dropped afterwards) when TEST_DATABASE_URL
// is set. Prints requests, errors, p50/p99, lost writes and cross-user leaks; exits 1 unless errors, lost
// writes, partial writes, phantoms and leaks are all 0.
import { parseArgs } from 'node:util'
import { BACKEND } from '../task-service/test/helpers.js'
import { spawnGateway } from '../support/gateway.js'
import { stopProcess } from '../support/processes.js'
import { startTaskService } from '../support/task-service.js'
import { Teardowns } from '../support/test-context.js'
import { SECRET } from '../support/tokens.js'
import { percentile } from '../support/stats.js'
import { summary, Workload } from '../test/helpers/workload.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '120' },
    users: { type: 'string', default: '50' }
  }
})
const seconds = Math.min(3600, Math.max(1, Number(values.seconds)))
const users = Math.min(1000, Math.max(1, Number(values.users)))
if (!Number.isFinite(seconds) || !Number.isFinite(users)) {
  process.stderr.write('usage: npm run soak -- --seconds 120 --users 50\n')
  process.exit(2)
}

const teardowns = new Teardowns()
let exitCode = 1
try {
  const taskService = await startTaskService(teardowns)
  const gateway = await spawnGateway({
    TASK_SERVICE_URL: taskService.url,
    // Every simulated user comes from 127.0.0.1; the per-user limit stays at its default.
    RATE_LIMIT_IP_MAX: '0'
  })
  teardowns.teardown(() => stopProcess(gateway))
  process.stdout.write(`soak: ${users} users for ${seconds} s through a gateway process into the task service (${BACKEND})\n`)

  const started = Date.now()
  const load = new Workload({ targets: [gateway.url], secret: SECRET, users, deadline: started + seconds * 1000, maxLiveTasks: 60, requestTimeoutMs: 15_000 })
  await load.init()
  teardowns.teardown(() => load.close())
  const progress = setInterval(() => {
    const r = load.result
    process.stdout.write(`  ${Math.round((Date.now() - started) / 1000)} s: ${r.requests} requests, ${r.errors} errors, ${r.serverErrors} 5xx, ${r.leaks} leaks\n`)
  }, 10_000)
  const r = await load.run()
  clearInterval(progress)
  const elapsed = (Date.now() - started) / 1000
  await load.verify()
  const sorted = [...r.latenciesMs].sort((a, b) => a - b)
  process.stdout.write([
    `requests        ${r.requests} in ${elapsed.toFixed(0)} s (${(r.requests / elapsed).toFixed(0)} req/s)`,
    `errors          ${r.errors} (5xx: ${r.serverErrors}, hung: ${r.hung})`,
    `latency         p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms`,
    `statuses        ${JSON.stringify(r.status)}`,
    `tasks checked   ${r.tasksChecked}`,
    `lost writes     ${r.lostWrites}`,
    `partial writes  ${r.partialWrites}`,
    `phantoms        ${r.phantoms}`,
    `cross-user      ${r.leaks} leaks in ${r.requests} responses; ${r.crossUserProbes} probes of other users' ids`,
    `summary         ${summary(r)}`,
    ''
  ].join('\n'))
  if (r.errorSamples.length > 0) process.stdout.write(r.errorSamples.join('\n') + '\n')
  exitCode = r.errors === 0 && r.lostWrites === 0 && r.partialWrites === 0 && r.phantoms === 0 && r.mismatches === 0 && r.leaks === 0 ? 0 : 1
} catch (err) {
  process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`)
} finally {
  await teardowns.run()
}
process.exit(exitCode)
