// Task services for tests, benchmarks and scripts: built in this process on a private database (PGlite, or a
// fresh PostgreSQL schema when TEST_DATABASE_URL is set) by startTaskService, or run as a child process by
// spawnTaskService. Both listen on 127.0.0.1 only and trust the gateways support/gateway.ts starts. The
// task service's source is imported only when one is built here.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { buildTestApp } from '../task-service/test/helpers.js'
import type { TestContext } from './test-context.js'
import { ASSERTION_PUBLIC_ENV } from './tokens.js'
import { sourceExists, spawnWorkspace, type ServiceProcess, type SpawnOptions } from './workspaces.js'

export interface RunningTaskService {
  app: FastifyInstance
  url: string
  port: number
}

export type StartTaskServiceOptions = NonNullable<Parameters<typeof buildTestApp>[1]> & {
  /** Default 0: any free port. */
  port?: number
}

/** A ready task service in this process, listening; closed (and its database dropped) at t's teardown. */
export async function startTaskService (t: TestContext, options: StartTaskServiceOptions = {}): Promise<RunningTaskService> {
  const { port: wanted, ...build } = options
  const { buildTestApp } = await import('../task-service/test/helpers.js')
  const app = await buildTestApp(t, build)
  await app.listen({ port: wanted ?? 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { app, url: `http://127.0.0.1:${port}`, port }
}

export function taskServiceSourceExists (): boolean {
  return sourceExists('task-service')
}

/**
 * A task service as its own process, configured by `env` (DATA_DIR, DATABASE_URL…; without DATABASE_URL it
 * runs the embedded PGlite), trusting the test assertion key. Ready at /readyz: migrated and its database
 * answering; PGlite initialises a WASM Postgres and runs the migrations, so the wait is long by default.
 */
export async function spawnTaskService (env: Record<string, string>, options: SpawnOptions = {}): Promise<ServiceProcess> {
  return await spawnWorkspace('task-service', { LOG_LEVEL: 'warn', ...ASSERTION_PUBLIC_ENV, ...env }, { readyPath: '/readyz', ...options })
}
