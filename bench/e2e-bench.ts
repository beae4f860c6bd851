// `npm run bench -- --e2e`: the real stack, gateway + task service, on PGlite and on PostgreSQL.
// Each operation (create, list, toggle, delete) is measured on its own with a fixed request count,
// users spread over the connections, and the ids that create returned are the ones toggled and deleted.
// Not pinned: this measures the whole stack on the whole machine, not one process's CPU.
import { join } from 'node:path'
import type { BenchOptions } from './lib/args.js'
import { buildWorkspaceIfStale, gatewaySourceExists, startGateway } from './lib/gateway.js'
import { runWorkers, type PlannedRequest } from './lib/http-workers.js'
import type { LoadResult } from './lib/load.js'
import { describeMachine } from './lib/machine.js'
import { createThrowawayDatabase } from './lib/postgres.js'
import { stopProcess } from './lib/processes.js'
import { replaceMeasuredSection } from './lib/report.js'
import { formatNumber, markdownTable } from './lib/table.js'
import { startTaskService, taskServiceSourceExists } from './lib/task-service.js'
import { createKeys, gatewayAuth, mintPool } from './lib/tokens.js'
import { startJwks } from '../support/jwks-server.js'

interface OperationResult {
  backend: string
  operation: string
  result: LoadResult
}

const USERS = 16

export async function runE2eBench (options: BenchOptions, workDir: string): Promise<number> {
  // Say plainly what is missing rather than print numbers for a stack that does not exist yet.
  const missing = [
    ...(gatewaySourceExists() ? [] : ['the gateway (gateway/src/server.ts)']),
    ...(taskServiceSourceExists() ? [] : ['the task service (task-service/src/server.ts)'])
  ]
  if (missing.length > 0) {
    console.error(`e2e: not runnable yet: ${missing.join(' and ')} missing. No numbers measured.`)
    return 1
  }
  buildWorkspaceIfStale('gateway')
  buildWorkspaceIfStale('task-service')

  const machine = describeMachine()
  const perOperation = options.quick ? 400 : 3000
  const concurrency = Math.min(options.connections, USERS)
  const jwks = await startJwks()
  const keys = await createKeys(jwks.origin)
  jwks.keys = [keys.eddsaPublicJwk]
  const tokens = await mintPool(keys, 'HS256', USERS)
  const notes: string[] = []
  const results: OperationResult[] = []

  const backends: { name: string; prepare: () => Promise<{ databaseUrl?: string; cleanup: () => Promise<void> } | undefined> }[] = [
    { name: 'PGlite', prepare: async () => ({ cleanup: async () => {} }) },
    {
      name: 'PostgreSQL',
      prepare: async () => {
        const database = await createThrowawayDatabase()
        if ('unavailable' in database) {
          notes.push(`PostgreSQL skipped: ${database.unavailable}.`)
          return undefined
        }
        return { databaseUrl: database.url, cleanup: database.drop }
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
      console.log(`e2e on ${backend.name}: ${perOperation} requests per operation, ${concurrency} connections, ${USERS} users`)
      const measured = await runOperations(gateway.baseUrl, tokens, perOperation, concurrency)
      for (const [operation, result] of measured) {
        results.push({ backend: backend.name, operation, result })
        console.log(`${backend.name} ${operation}: ${formatNumber(result.requestsPerSecond)} req/s, p99 ${result.p99Ms.toFixed(2)} ms, errors ${result.errors}`)
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
    `Each operation: ${formatNumber(perOperation)} requests, ${concurrency} connections, ${USERS} users (HS256 tokens), through the gateway.`,
    '',
    markdownTable(
      ['database', 'operation', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'errors'],
      results.map(({ backend, operation, result }) => [
        backend,
        operation,
        result.requests,
        formatNumber(result.requestsPerSecond),
        formatNumber(result.p50Ms, 2),
        formatNumber(result.p99Ms, 2),
        result.errors
      ]),
      [false, false, true, true, true, true, true]
    ),
    ...notes.map((note) => `\n- ${note}`)
  ]
  const markdown = lines.join('\n')
  console.log(`\n${markdown}\n`)
  if (options.write) {
    replaceMeasuredSection('e2e', markdown)
    console.log('wrote docs/performance.md')
  }
  return results.some((r) => r.result.errors > 0) || results.length === 0 ? 1 : 0
}

async function runOperations (baseUrl: string, tokens: string[], count: number, concurrency: number): Promise<[string, LoadResult][]> {
  const auth = (index: number): Record<string, string> => ({ authorization: `Bearer ${tokens[index % tokens.length]!}` })
  // ids[i] belongs to the user of request i, so toggles and deletes go out with the owner's token.
  const ids: string[] = new Array<string>(count)
  const measured: [string, LoadResult][] = []

  // Warm-up, not reported: JIT, the gateway's and the task service's connection pools, the database cache.
  await runWorkers({ baseUrl, concurrency, total: Math.max(100, count / 4), expectedStatus: 200, plan: (i) => ({ method: 'GET', path: '/api/tasks', headers: auth(i) }) })

  measured.push([
    'create (POST /api/tasks)',
    await runWorkers({
      baseUrl,
      concurrency,
      total: count,
      expectedStatus: 201,
      plan: (i): PlannedRequest => ({
        method: 'POST',
        path: '/api/tasks',
        headers: { ...auth(i), 'content-type': 'application/json' },
        body: JSON.stringify({ title: `bench task ${i}`, description: 'created by npm run bench -- --e2e' })
      }),
      onBody: (i, body) => {
        ids[i] = (JSON.parse(body) as { id: string }).id
      }
    })
  ])
  measured.push([
    'list (GET /api/tasks)',
    await runWorkers({ baseUrl, concurrency, total: count, expectedStatus: 200, plan: (i) => ({ method: 'GET', path: '/api/tasks', headers: auth(i) }) })
  ])
  // Only ids that were created can be toggled and deleted; a failed create already counts as an error.
  const created = ids.flatMap((id, i) => (id ? [{ id, i }] : []))
  measured.push([
    'toggle (PATCH /api/tasks/:id/complete)',
    await runWorkers({
      baseUrl,
      concurrency,
      total: created.length,
      expectedStatus: 200,
      plan: (n) => ({ method: 'PATCH', path: `/api/tasks/${encodeURIComponent(created[n]!.id)}/complete`, headers: auth(created[n]!.i) })
    })
  ])
  measured.push([
    'delete (DELETE /api/tasks/:id)',
    await runWorkers({
      baseUrl,
      concurrency,
      total: created.length,
      expectedStatus: 204,
      plan: (n) => ({ method: 'DELETE', path: `/api/tasks/${encodeURIComponent(created[n]!.id)}`, headers: auth(created[n]!.i) })
    })
  ])
  return measured
}
