// Migrations: applied once, in one transaction, under an advisory lock; a second run (or a concurrent one) is a
// no-op; a failing migration leaves nothing behind. And the embedded default keeps data across a restart.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadMigrations, runMigrations } from '../src/migrate.js'
import { BACKEND, createTask, identityHeaders, openTestDatabase, testConfig, type TaskJson } from './helpers.js'

async function tempDir (t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'task-service-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test(`migrations are not bound by the request statement timeout (${BACKEND}; PostgreSQL: statement_timeout 200 ms)`, async (t) => {
  // A migration may legitimately run long (an index on a big table), and a second instance starting at
  // the same time waits on the migration lock for as long as the first one takes.
  const slowDb = await openTestDatabase(t, { statementTimeoutMs: 200 })
  const dir = await tempDir(t)
  await writeFile(join(dir, '001_slow.sql'), 'SELECT pg_sleep(0.5); CREATE TABLE slow_done (id int);')
  t.same(await runMigrations(slowDb, pathToFileURL(dir + '/')), ['001'], 'a 0.5 s migration is applied')
  if (BACKEND === 'postgres') {
    await t.rejects(slowDb.query('SELECT pg_sleep(0.5)'), { name: 'DatabaseUnavailableError' }, 'while a request-path query still times out at 200 ms')
  }
})

t.test('the shipped migrations are well named and start at 001', async (t) => {
  const migrations = await loadMigrations()
  t.ok(migrations.length >= 1)
  t.equal(migrations[0]?.version, '001')
  t.equal(migrations[0]?.name, 'create_tasks')
})

// One database for the next two tests (each PGlite instance takes seconds to start): the failing migration must
// leave it empty, which is exactly what lets the concurrency test start from scratch on it.
const db = await openTestDatabase(t)

t.test(`a failing migration rolls everything back (${BACKEND})`, async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, '001_good.sql'), 'CREATE TABLE good (id int);')
  await writeFile(join(dir, '002_bad.sql'), 'CREATE TABLE worse (id int); SELECT no_such_function();')
  await t.rejects(runMigrations(db, pathToFileURL(dir + '/')), /no_such_function/)
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('good', 'worse', 'schema_migrations')"
  )
  t.equal(rows[0]?.n, 0, 'no table from 001, 002 or the bookkeeping survived')
})

t.test(`concurrent runs are serialized by the advisory lock; a later run is a no-op (${BACKEND})`, async (t) => {
  let results: string[][]
  if (BACKEND === 'postgres') {
    // Two pools (two "instances") on the same schema, starting at the same time.
    const { rows } = await db.query<{ schema: string }>('SELECT current_schema() AS schema')
    const other = await openTestDatabase(t, { schema: rows[0]?.schema as string })
    results = await Promise.all([runMigrations(db), runMigrations(other), runMigrations(db)])
  } else {
    results = await Promise.all([runMigrations(db), runMigrations(db), runMigrations(db)])
  }
  t.same(results.flat(), ['001'], 'exactly one run applied 001, the others found it applied')
  t.same(await runMigrations(db), [], 'running again applies nothing')
  const { rows } = await db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version')
  t.same(rows, [{ version: '001' }])
  const idx = await db.query<{ indexname: string }>(
    "SELECT indexname FROM pg_indexes WHERE tablename = 'tasks' AND schemaname = current_schema() ORDER BY indexname"
  )
  t.same(
    idx.rows.map((r) => r.indexname),
    ['tasks_pkey', 'tasks_user_created_idx', 'tasks_user_title_idx', 'tasks_user_updated_idx'],
    'the list query has an index per user and sort'
  )
})

t.test('badly named or duplicate migration files are refused', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'create.sql'), 'SELECT 1;')
  await t.rejects(loadMigrations(pathToFileURL(dir + '/')), /must look like 001_description\.sql/)
  const dup = await tempDir(t)
  await writeFile(join(dup, '001_a.sql'), 'SELECT 1;')
  await writeFile(join(dup, '001_b.sql'), 'SELECT 1;')
  await t.rejects(loadMigrations(pathToFileURL(dup + '/')), /share version 001/)
})

t.test('PGlite on disk: data survives a restart, and the restart migrates nothing', async (t) => {
  const dataDir = await tempDir(t)
  const config = testConfig({ dataDir })
  const first = await buildApp(config)
  t.same(await runMigrations(first.db), ['001'])
  t.equal(first.db.kind, 'pglite')
  const user = 'persistent-user'
  const task = await createTask(first, user, { title: 'survive me', description: 'ü 👍' })
  await first.inject({ method: 'PATCH', url: `/tasks/${task.id}/complete`, headers: await identityHeaders(user) })
  await first.close()

  const second = await buildApp(config)
  t.teardown(() => second.close())
  t.same(await runMigrations(second.db), [], 'already migrated')
  const res = await second.inject({ url: '/tasks', headers: await identityHeaders(user) })
  const list = res.json<TaskJson[]>()
  t.equal(list.length, 1)
  t.match(list[0], { id: task.id, title: 'survive me', description: 'ü 👍', completed: true })
})
