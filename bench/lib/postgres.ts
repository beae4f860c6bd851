// A throwaway PostgreSQL database per run (bench_<pid>), dropped afterwards, so the benchmark never
// touches data it did not create. Skipped, with a note, when no server answers.
import pg from 'pg'

/** The machine's PostgreSQL (CI and developer machines run one on 127.0.0.1:5432); overridable. */
const adminUrl = process.env.BENCH_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export interface ThrowawayDatabase {
  url: string
  /** Pids of the server processes (backends) currently connected to this database. */
  backendPids(): Promise<number[]>
  drop(): Promise<void>
}

export async function createThrowawayDatabase (): Promise<ThrowawayDatabase | { unavailable: string }> {
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 })
  try {
    await admin.connect()
  } catch (error) {
    return { unavailable: `PostgreSQL not reachable (${error instanceof Error ? error.message : String(error)})` }
  }
  const name = `bench_${process.pid}`
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name}`)
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async backendPids () {
      const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 })
      await client.connect()
      try {
        const result = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [name])
        return result.rows.map((row) => row.pid)
      } finally {
        await client.end()
      }
    },
    async drop () {
      const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 })
      await client.connect()
      try {
        // WITH (FORCE) (PostgreSQL 13+): the task service's pool may still hold connections for a moment.
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await client.end()
      }
    }
  }
}
