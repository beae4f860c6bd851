// Test helpers: a ready app on a private database — in-memory PGlite by default, or a fresh PostgreSQL schema when
// TEST_DATABASE_URL is set — torn down with the test. Used by this workspace's tests and the root end-to-end tests.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import pg from 'pg'
import { buildApp, type BuildAppOptions } from '../src/app.js'
import type { TaskServiceConfig } from '../src/config.js'
import { PgliteDatabase, PostgresDatabase, type Database } from '../src/db.js'
import { runMigrations } from '../src/migrate.js'
import { readUserId } from '../src/identity.js'
import { ASSERTION_HEADER } from '../src/plugins/gateway-assertion.js'
import { ASSERTION_KEYS, signAssertion } from '../../support/tokens.js'
import type { TestContext } from '../../support/test-context.js'

export type { TestContext }

export const TEST_DATABASE_URL: string | undefined = process.env.TEST_DATABASE_URL || undefined
export const BACKEND: 'postgres' | 'pglite' = TEST_DATABASE_URL ? 'postgres' : 'pglite'

const assertions = new Map<string, Promise<string>>()
/** A valid assertion for userId (made once per user per test process; valid for 300 s). */
export function assertionFor (userId: string): Promise<string> {
  let a = assertions.get(userId)
  if (a === undefined) {
    a = signAssertion(userId)
    assertions.set(userId, a)
  }
  return a
}

/** X-User-Id with its signed X-Gateway-Assertion: what the gateway sends. */
export async function identityHeaders (userId: string): Promise<Record<string, string>> {
  return { 'x-user-id': userId, [ASSERTION_HEADER]: await assertionFor(userId) }
}

export function testConfig (overrides: Partial<TaskServiceConfig> = {}): TaskServiceConfig {
  return {
    port: 0,
    host: '127.0.0.1',
    databaseUrl: undefined,
    dataDir: './data',
    logLevel: 'silent',
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    assertionPublicKeys: [ASSERTION_KEYS.publicKeyPem],
    allowedHosts: ['127.0.0.1', 'localhost', '[::1]'],
    ...overrides
  }
}

/**
 * Adds the signed assertion a gateway would send to an inject() request that names a user in X-User-Id and
 * carries no X-Gateway-Assertion of its own, so that tests about tasks talk to the service the way the gateway
 * does. (An X-User-Id the service refuses anyway is left unsigned.)
 */
async function signedInjectOptions (options: InjectOptions | string): Promise<InjectOptions | string> {
  if (typeof options === 'string' || options.headers === undefined) return options
  const headers = options.headers as Record<string, unknown>
  const names = Object.keys(headers).map((n) => n.toLowerCase())
  if (names.includes(ASSERTION_HEADER)) return options
  const userHeader = Object.keys(headers).find((n) => n.toLowerCase() === 'x-user-id')
  const value = userHeader === undefined ? undefined : headers[userHeader]
  if (typeof value !== 'string') return options
  let userId: string
  try {
    userId = readUserId(value, [])
  } catch {
    return options
  }
  return { ...options, headers: { ...headers, [ASSERTION_HEADER]: await assertionFor(userId) } }
}

/** A fresh schema name, unique across parallel test processes. */
export function uniqueSchemaName (): string {
  return `task_test_${process.pid}_${randomBytes(6).toString('hex')}`
}

async function withAdminClient<T> (fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

export async function createSchema (schema: string): Promise<void> {
  await withAdminClient((c) => c.query(`CREATE SCHEMA "${schema}"`))
}

export async function dropSchema (schema: string): Promise<void> {
  await withAdminClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))
}

async function openPrivateDatabase (
  opts: { connectionString?: string; schema?: string; statementTimeoutMs?: number } = {}
): Promise<{ db: Database; cleanup: () => Promise<void> }> {
  if (TEST_DATABASE_URL === undefined) {
    const db = await PgliteDatabase.open()
    return { db, cleanup: () => db.close() }
  }
  const ownSchema = opts.schema === undefined
  const schema = opts.schema ?? uniqueSchemaName()
  if (ownSchema) await createSchema(schema)
  const db = new PostgresDatabase({
    connectionString: opts.connectionString ?? TEST_DATABASE_URL,
    options: `-c search_path=${schema}`,
    max: 5,
    ...(opts.statementTimeoutMs !== undefined ? { statementTimeoutMs: opts.statementTimeoutMs } : {})
  })
  return {
    db,
    cleanup: async () => {
      await db.close()
      if (ownSchema) await dropSchema(schema)
    }
  }
}

/**
 * A private, empty (not yet migrated) database, closed (and its schema dropped) at teardown.
 * PostgreSQL: a new schema reached through search_path (or the given one, left in place). PGlite: a new
 * in-memory instance.
 */
export async function openTestDatabase (
  t: TestContext,
  opts: { connectionString?: string; schema?: string; statementTimeoutMs?: number } = {}
): Promise<Database> {
  const { db, cleanup } = await openPrivateDatabase(opts)
  t.teardown(cleanup)
  return db
}

/**
 * A ready (migrated, plugins loaded) app on a private database. Use app.inject(), or app.listen({ port: 0 }).
 * At t's teardown the app is closed, then its database (when the helper opened it).
 */
export async function buildTestApp (
  t: TestContext,
  options: Omit<BuildAppOptions, 'db'> & {
    db?: Database
    config?: Partial<TaskServiceConfig>
    /** inject() signs requests with X-User-Id as the gateway would (default true); false: sent as given. */
    signRequests?: boolean
  } = {}
): Promise<FastifyInstance> {
  const opened = options.db ? undefined : await openPrivateDatabase()
  const db = options.db ?? (opened as { db: Database }).db
  const built: { app?: FastifyInstance } = {}
  t.teardown(async () => {
    await built.app?.close()
    await opened?.cleanup()
  })
  await runMigrations(db)
  const app = await buildApp(testConfig(options.config), {
    db,
    ...(options.logStream ? { logStream: options.logStream } : {})
  })
  built.app = app
  await app.ready()
  if (options.signRequests !== false) {
    const inject = app.inject.bind(app) as (o: InjectOptions | string) => Promise<LightMyRequestResponse>
    Object.assign(app, { inject: async (o: InjectOptions | string) => inject(await signedInjectOptions(o)) })
  }
  return app
}

/**
 * Waits past the current millisecond. Timestamps have millisecond precision and ties are broken by id (random),
 * so tests that assert creation order space their creates out with this.
 */
export const nextMillisecond = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 3))

/** A user id no other test uses. */
export function newUser (label = 'user'): string {
  return `${label}-${randomBytes(5).toString('hex')}`
}

export const json = (res: LightMyRequestResponse): unknown => JSON.parse(res.body)

export interface TaskJson {
  id: string
  user_id: string
  title: string
  description: string | null
  completed: boolean
  created_at: string
  updated_at: string
}

/** Creates a task through the API and returns it. */
export async function createTask (
  app: FastifyInstance,
  userId: string,
  body: Record<string, unknown> = { title: 'a task' }
): Promise<TaskJson> {
  const res = await app.inject({ method: 'POST', url: '/tasks', headers: await identityHeaders(userId), payload: body })
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
  return res.json<TaskJson>()
}

/**
 * A migrated database in a fresh PostgreSQL schema of TEST_DATABASE_URL's server, reached through
 * 127.0.0.1:<port> instead (a test's TCP fault proxy in front of the server), so the test can cut the
 * database away. Closed, and its schema dropped, at t's teardown.
 */
export async function openMigratedPostgresVia (t: TestContext, port: number, max: number): Promise<PostgresDatabase> {
  const schema = uniqueSchemaName()
  await createSchema(schema)
  t.teardown(() => dropSchema(schema))
  const viaProxy = new URL(TEST_DATABASE_URL as string)
  viaProxy.hostname = '127.0.0.1'
  viaProxy.port = String(port)
  const db = new PostgresDatabase({ connectionString: viaProxy.toString(), options: `-c search_path=${schema}`, max })
  t.teardown(() => db.close())
  await runMigrations(db)
  return db
}
