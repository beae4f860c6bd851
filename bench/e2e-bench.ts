// `npm run bench -- --e2e`: the real stack, gateway + task service, on PGlite and on PostgreSQL.
// Each operation (create, list, toggle, delete) runs twice, interleaved: through the gateway (HS256
// tokens), and straight to the task service with the headers the gateway would have sent (X-User-Id and
// an X-Gateway-Assertion signed by the gateway's own signer). Each window reports the CPU per request of
// every process on the path (gateway, task service, the PostgreSQL backends serving this run's database,
// read from /proc), so the gateway's share of a whole request is visible. A fixed request count per
// operation, users spread over the connections; the ids that create returned are the ones toggled and
// deleted. Not pinned: this measures the whole stack on the whole machine.
import { join } from 'node:path'
import { IdentityAssertionSigner, ASSERTION_HEADER } from '../gateway/src/pipeline/identity-assertion.js'
import type { BenchOptions } from './lib/args.js'
import { renderE2eTable, type E2eRow } from './lib/e2e-report.js'
import { startGateway } from './lib/gateway.js'
import { gatewaySourceExists } from '../support/gateway.js'
import { buildWorkspaceIfStale } from '../support/workspaces.js'
import { runWorkers, type PlannedRequest } from './lib/http-workers.js'
import { describeMachine } from './lib/machine.js'
import { createThrowawayDatabase } from './lib/postgres.js'
import { cpuDelta, cpuOfPids, processCpuMicros } from './lib/proc-stats.js'
import { stopProcess } from '../support/processes.js'
import { publishBenchResult } from './lib/report.js'
import { formatNumber } from './lib/table.js'
import { startTaskService } from './lib/task-service.js'
import { taskServiceSourceExists } from '../support/task-service.js'
import { gatewayAuth, mintPool, startKeyServer, userIdFor } from './lib/tokens.js'
import { ASSERTION_KEYS } from '../support/tokens.js'

const USERS = 16

type Path = 'gateway' | 'direct'

interface Stack {
  database: string
  gatewayPid: number
  taskServicePid: number
  /** Pids of the PostgreSQL backends of this run's database; undefined on PGlite (inside the task service). */
  postgresPids: (() => Promise<number[]>) | undefined
  baseUrl: Record<Path, string>
  /** Headers that make request i come from user i % USERS, per path. */
  identity: Record<Path, (i: number) => Record<string, string>>
}

export async function runE2eBench (options: BenchOptions, workDir: string): Promise<number> {
  // Say plainly what is missing rather than print numbers for a stack that does not exist.
  const missing = [
    ...(gatewaySourceExists() ? [] : ['the gateway (gateway/src/server.ts)']),
    ...(taskServiceSourceExists() ? [] : ['the task service (task-service/src/server.ts)'])
  ]
  if (missing.length > 0) {
    console.error(`e2e: not runnable: ${missing.join(' and ')} missing. No numbers measured.`)
    return 1
  }
  buildWorkspaceIfStale('gateway')
  buildWorkspaceIfStale('task-service')

  const machine = describeMachine()
  const perOperation = options.quick ? 400 : 3000
  const concurrency = Math.min(options.connections, USERS)
  const { jwks, keys } = await startKeyServer()
  const tokens = await mintPool(keys, 'HS256', USERS)
  // The gateway's own signer and the key the bench gateway is given: the direct requests carry exactly the
  // assertion the gateway would have attached for that user (one per user, reused, as the gateway does).
  const signer = await IdentityAssertionSigner.create(ASSERTION_KEYS.privateKeyPem)
  const assertions = await Promise.all(Array.from({ length: USERS }, (_, i) => signer.assertionFor(userIdFor(i))))
  const notes: string[] = []
  const rows: E2eRow[] = []

  const backends: { name: string; prepare: () => Promise<{ databaseUrl?: string; backendPids?: () => Promise<number[]>; cleanup: () => Promise<void> } | undefined> }[] = [
    { name: 'PGlite', prepare: async () => ({ cleanup: async () => {} }) },
    {
      name: 'PostgreSQL',
      prepare: async () => {
        const database = await createThrowawayDatabase()
        if ('unavailable' in database) {
          notes.push(`PostgreSQL skipped: ${database.unavailable}.`)
          return undefined
        }
        return { databaseUrl: database.url, backendPids: database.backendPids, cleanup: database.drop }
      }
    }
  ]

  for (const backend of backends) {
    const prepared = await backend.prepare()
    if (!prepared) continue
    const taskService = await startTaskService({
      name: `task-service-${backend.name}`,
      databaseUrl: prepared.databaseUrl,
      dataDir: join(workDir, `data-${backend.name}`),
      logDir: workDir
    })
    try {
      const gateway = await startGateway({
        name: `gateway-e2e-${backend.name}`,
        upstreamUrl: taskService.baseUrl,
        ...gatewayAuth(keys, jwks.url),
        logDir: workDir,
        logLevel: options.logLevel,
        // Same machine, no pinning: the whole stack shares both cores.
        core: undefined
      })
      let postgresPids = prepared.backendPids
      if (postgresPids) {
        const pids = await postgresPids()
        if (cpuOfPids(pids).size < pids.length) {
          notes.push('PostgreSQL CPU not measured: its backends are not processes of this machine (/proc has no such pids).')
          postgresPids = undefined
        }
      }
      const stack: Stack = {
        database: backend.name,
        gatewayPid: gateway.managed.pid,
        taskServicePid: taskService.managed.pid,
        postgresPids,
        baseUrl: { gateway: `${gateway.baseUrl}/api`, direct: taskService.baseUrl },
        identity: {
          gateway: (i) => ({ authorization: `Bearer ${tokens[i % USERS]!}` }),
          direct: (i) => ({ 'x-user-id': userIdFor(i % USERS), [ASSERTION_HEADER]: assertions[i % USERS]! })
        }
      }
      console.log(`e2e on ${backend.name}: ${perOperation} requests per operation and path, ${concurrency} connections, ${USERS} users`)
      for (const row of await runOperations(stack, perOperation, concurrency)) {
        rows.push(row)
        console.log(`${backend.name} ${row.operation} ${row.path}: ${formatNumber(row.requestsPerSecond)} req/s, p99 ${row.p99Ms.toFixed(2)} ms, ` +
          `CPU µs/req gateway ${row.gatewayMicros?.toFixed(1) ?? '–'}, task service ${row.taskServiceMicros.toFixed(1)}, PostgreSQL ${row.postgresMicros?.toFixed(1) ?? '–'}, errors ${row.errors}`)
      }
      await stopProcess(gateway.managed)
    } finally {
      await stopProcess(taskService.managed)
      await prepared.cleanup()
    }
  }
  await jwks.close()

  const lines = [
    `Measured by \`${options.command}\` on ${machine.date} (commit ${machine.commit}).`,
    '',
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}; gateway and task service not pinned.`,
    `Each operation and path: ${formatNumber(perOperation)} requests, ${concurrency} connections, ${USERS} users (HS256 tokens through the gateway; ` +
      'X-User-Id and the gateway\'s X-Gateway-Assertion straight to the task service), the two paths interleaved per operation.',
    '',
    renderE2eTable(rows),
    '',
    '"µs/req" is each process\'s CPU time (user + system, all threads, from /proc) during the window over the requests answered; ' +
      'PostgreSQL is the sum over the server backends connected to the run\'s database (PGlite runs inside the task service). ' +
      '"gateway share" is the gateway\'s part of the whole request\'s CPU.',
    ...notes.map((note) => `\n- ${note}`)
  ]
  publishBenchResult('e2e', lines.join('\n'), options.write)
  return rows.some((r) => r.errors > 0) || rows.length === 0 ? 1 : 0
}

/** Runs one load window and charges each process on the path with the CPU it used. */
async function measured (
  stack: Stack,
  operation: string,
  path: Path,
  run: () => Promise<{ requests: number, seconds: number, requestsPerSecond: number, p50Ms: number, p99Ms: number, errors: number }>
): Promise<E2eRow> {
  const postgresBefore = stack.postgresPids ? cpuOfPids(await stack.postgresPids()) : undefined
  const gatewayBefore = processCpuMicros(stack.gatewayPid)
  const taskBefore = processCpuMicros(stack.taskServicePid)
  const result = await run()
  const gatewayCpu = processCpuMicros(stack.gatewayPid) - gatewayBefore
  const taskCpu = processCpuMicros(stack.taskServicePid) - taskBefore
  const postgresCpu = stack.postgresPids && postgresBefore ? cpuDelta(postgresBefore, cpuOfPids(await stack.postgresPids())) : undefined
  const perRequest = (cpu: number): number => cpu / Math.max(1, result.requests)
  return {
    database: stack.database,
    operation,
    path,
    requests: result.requests,
    requestsPerSecond: result.requestsPerSecond,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    errors: result.errors,
    // Direct requests do not pass the gateway: whatever it did meanwhile (health checks) is not theirs.
    gatewayMicros: path === 'gateway' ? perRequest(gatewayCpu) : undefined,
    taskServiceMicros: perRequest(taskCpu),
    postgresMicros: postgresCpu === undefined ? undefined : perRequest(postgresCpu)
  }
}

async function runOperations (stack: Stack, count: number, concurrency: number): Promise<E2eRow[]> {
  const paths: Path[] = ['gateway', 'direct']
  // ids[path][i] belongs to the user of request i, so toggles and deletes go out as the owner.
  const ids: Record<Path, string[]> = { gateway: new Array<string>(count), direct: new Array<string>(count) }
  const rows: E2eRow[] = []

  // Warm-up, not reported: every route once per path (JIT, both services' connection pools, the database
  // cache), leaving the tables as they were.
  const warmup = Math.max(100, Math.round(count / 4))
  for (const path of paths) {
    const made: string[] = []
    const base = { baseUrl: stack.baseUrl[path], concurrency, total: warmup }
    await runWorkers({ ...base, expectedStatus: 201, plan: (i) => ({ method: 'POST', path: '/tasks', headers: { ...stack.identity[path](i), 'content-type': 'application/json' }, body: JSON.stringify({ title: `warm-up ${i}` }) }), onBody: (i, body) => { made[i] = (JSON.parse(body) as { id: string }).id } })
    await runWorkers({ ...base, expectedStatus: 200, plan: (i) => ({ method: 'GET', path: '/tasks', headers: stack.identity[path](i) }) })
    await runWorkers({ ...base, expectedStatus: 200, plan: (i) => ({ method: 'PATCH', path: `/tasks/${encodeURIComponent(made[i] ?? 'missing')}/complete`, headers: stack.identity[path](i) }) })
    await runWorkers({ ...base, expectedStatus: 204, plan: (i) => ({ method: 'DELETE', path: `/tasks/${encodeURIComponent(made[i] ?? 'missing')}`, headers: stack.identity[path](i) }) })
  }

  for (const path of paths) {
    rows.push(await measured(stack, 'create (POST /tasks)', path, () => runWorkers({
      baseUrl: stack.baseUrl[path],
      concurrency,
      total: count,
      expectedStatus: 201,
      plan: (i): PlannedRequest => ({
        method: 'POST',
        path: '/tasks',
        headers: { ...stack.identity[path](i), 'content-type': 'application/json' },
        body: JSON.stringify({ title: `bench task ${i}`, description: 'created by npm run bench -- --e2e' })
      }),
      onBody: (i, body) => {
        ids[path][i] = (JSON.parse(body) as { id: string }).id
      }
    })))
  }
  for (const path of paths) {
    rows.push(await measured(stack, 'list (GET /tasks)', path, () =>
      runWorkers({ baseUrl: stack.baseUrl[path], concurrency, total: count, expectedStatus: 200, plan: (i) => ({ method: 'GET', path: '/tasks', headers: stack.identity[path](i) }) })))
  }
  // Only ids that were created can be toggled and deleted; a failed create already counts as an error.
  const created = (path: Path): { id: string, i: number }[] => ids[path].flatMap((id, i) => (id ? [{ id, i }] : []))
  for (const path of paths) {
    const tasks = created(path)
    rows.push(await measured(stack, 'toggle (PATCH /tasks/:id/complete)', path, () => runWorkers({
      baseUrl: stack.baseUrl[path],
      concurrency,
      total: tasks.length,
      expectedStatus: 200,
      plan: (n) => ({ method: 'PATCH', path: `/tasks/${encodeURIComponent(tasks[n]!.id)}/complete`, headers: stack.identity[path](tasks[n]!.i) })
    })))
  }
  for (const path of paths) {
    const tasks = created(path)
    rows.push(await measured(stack, 'delete (DELETE /tasks/:id)', path, () => runWorkers({
      baseUrl: stack.baseUrl[path],
      concurrency,
      total: tasks.length,
      expectedStatus: 204,
      plan: (n) => ({ method: 'DELETE', path: `/tasks/${encodeURIComponent(tasks[n]!.id)}`, headers: stack.identity[path](tasks[n]!.i) })
    })))
  }
  // Same operation together in the table: through the gateway, then directly.
  return rows
}
