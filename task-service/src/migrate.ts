// Versioned SQL migrations from task-service/migrations/, applied in one transaction under an advisory lock.
// Safe to run twice (applied versions are skipped) and by two instances at once (the second waits for the lock,
// then finds everything applied).
import { readdir, readFile } from 'node:fs/promises'
import type { Database } from './db.js'

/** Resolved relative to this module, so it works from src/ (tsx) and from dist/ (after the build). */
export const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url)

/** Key of the transaction-scoped advisory lock that serializes migration runs (any constant bigint will do). */
export const MIGRATION_LOCK_KEY = '7365401928374651'

export interface Migration {
  version: string
  name: string
  sql: string
}

const FILE_PATTERN = /^(\d{3,})_([a-z0-9_]+)\.sql$/

export async function loadMigrations (dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort()
  const migrations: Migration[] = []
  const seen = new Set<string>()
  for (const file of files) {
    const match = FILE_PATTERN.exec(file)
    if (!match) throw new Error(`migration file name "${file}" must look like 001_description.sql`)
    const version = match[1] as string
    if (seen.has(version)) throw new Error(`two migrations share version ${version}`)
    seen.add(version)
    migrations.push({ version, name: match[2] as string, sql: await readFile(new URL(file, dir), 'utf8') })
  }
  return migrations
}

/** Applies pending migrations; returns the versions applied by this call (empty when already up to date). */
export async function runMigrations (db: Database, dir: URL = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await loadMigrations(dir)
  return db.transaction(async (tx) => {
    // Not bound by the request path's statement timeout: a migration may run long, and an instance that
    // starts while another migrates waits on the lock for as long as that takes. (exec(): no client-side
    // request timeout either; the lock key is a constant, hence no parameter.)
    await tx.exec('SET LOCAL statement_timeout = 0')
    await tx.exec(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY}::bigint)`)
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`)
    const { rows } = await tx.query<{ version: string }>('SELECT version FROM schema_migrations')
    const applied = new Set(rows.map((r) => r.version))
    const done: string[] = []
    for (const m of migrations) {
      if (applied.has(m.version)) continue
      await tx.exec(m.sql)
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name])
      done.push(m.version)
    }
    return done
  })
}
