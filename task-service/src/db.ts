// The database seam: one small interface, two implementations (PostgreSQL through a pg pool, and embedded PGlite).
// Both speak the same SQL; callers never know which one they have.
import { resolve } from 'node:path'
import pg from 'pg'
import { PGlite } from '@electric-sql/pglite'
import { OwnerOnlyNodeFS, prepareDataDir } from './data-dir.js'

export interface QueryResult<R> {
  rows: R[]
  rowCount: number
}

export interface Queryable {
  /** One parameterized statement. */
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<QueryResult<R>>
  /**
   * A script of one or more statements without parameters (migrations). Not bound by the request-path
   * client timeout: a migration may run long (PostgreSQL: up to SCRIPT_TIMEOUT_MS; the server-side
   * statement_timeout is lifted by the migration's own transaction).
   */
  exec(sql: string): Promise<void>
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite'
  /** Runs fn inside BEGIN … COMMIT on one connection; rolls back if fn throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  close(): Promise<void>
}

/** The database cannot be reached or went away: a 503, not a bug. */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError'
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED'
])
// SQLSTATE: admin/crash shutdown, cannot connect now, too many connections, statement cancelled by timeout.
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '57014'])
const UNAVAILABLE_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /query read timeout/i,
  /client has encountered a connection error/i,
  /cannot use a pool after calling end/i,
  /client was closed and is not queryable/i,
  /pglite is closed/i,
  /connection (?:is )?closed/i
]

export function isUnavailableError (err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true
  if (typeof err !== 'object' || err === null) return false
  const { code, message } = err as { code?: unknown; message?: unknown }
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code)) return true
    // Class 08 (connection exception) — but not 08P01, which PostgreSQL also uses for malformed protocol input.
    if (code.startsWith('08') && code !== '08P01') return true
  }
  if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((re) => re.test(message))) return true
  // AggregateError from a connect to several addresses (e.g. localhost → ::1 and 127.0.0.1).
  if (err instanceof AggregateError) return err.errors.some(isUnavailableError)
  return false
}

function describe (err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const { code, message } = err as { code?: unknown; message?: unknown }
    const text = typeof message === 'string' && message !== '' ? message : String(err)
    return typeof code === 'string' ? `${code}: ${text}` : text
  }
  return String(err)
}

/** Rethrows err as DatabaseUnavailableError when it means "the database is not there"; other errors unchanged. */
function translate (err: unknown): never {
  if (isUnavailableError(err) && !(err instanceof DatabaseUnavailableError)) {
    throw new DatabaseUnavailableError(`database unavailable (${describe(err)})`, { cause: err })
  }
  throw err
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

export interface PostgresOptions {
  connectionString: string
  /** Extra libpq-style startup options, e.g. "-c search_path=test_abc" (tests use this for a private schema). */
  options?: string
  max?: number
  onIdleError?: (err: Error) => void
  /** Server-side limit per statement on the request path (default 5 s); the client-side one is 3 s longer. */
  statementTimeoutMs?: number
}

/** Client-side bound on one exec() script (migrations): long enough for real work, short of forever. */
export const SCRIPT_TIMEOUT_MS = 30 * 60_000

class PgQueryable implements Queryable {
  constructor (private readonly client: pg.Pool | pg.PoolClient) {}
  async query<R>(text: string, params: unknown[] = []): Promise<QueryResult<R>> {
    try {
      const result = await this.client.query(text, params)
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 }
    } catch (err) {
      translate(err)
    }
  }

  async exec (sql: string): Promise<void> {
    try {
      // pg reads query_timeout per query (its types do not declare it).
      await this.client.query({ text: sql, query_timeout: SCRIPT_TIMEOUT_MS } as pg.QueryConfig)
    } catch (err) {
      translate(err)
    }
  }
}

export class PostgresDatabase extends PgQueryable implements Database {
  readonly kind = 'postgres' as const
  readonly pool: pg.Pool
  private closed = false

  constructor (opts: PostgresOptions) {
    const pool = new pg.Pool({
      connectionString: opts.connectionString,
      ...(opts.options !== undefined ? { options: opts.options } : {}),
      max: opts.max ?? 10,
      // Fail fast when the database is away, so a request gets its 503 quickly instead of hanging.
      connectionTimeoutMillis: 3000,
      idleTimeoutMillis: 30000,
      // Server-side limit first (a clean cancel, SQLSTATE 57014 → 503); the client-side one covers a silent network.
      statement_timeout: opts.statementTimeoutMs ?? 5000,
      query_timeout: (opts.statementTimeoutMs ?? 5000) + 3000,
      application_name: 'task-service'
    })
    // An idle client whose server went away emits 'error' on the pool; without a listener that would crash the
    // process. The pool discards that client and opens a new one on the next checkout: that is the recovery path.
    pool.on('error', (err) => opts.onIdleError?.(err))
    super(pool)
    this.pool = pool
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (err) {
      translate(err)
    }
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      const result = await fn(new PgQueryable(client))
      await client.query('COMMIT')
      return result
    } catch (err) {
      try {
        await client.query('ROLLBACK')
      } catch (rollbackErr) {
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr))
      }
      translate(err)
    } finally {
      // A client that could not roll back is destroyed rather than returned to the pool.
      client.release(broken)
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.pool.end()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// PGlite (embedded PostgreSQL in WebAssembly)

interface PgliteLike {
  query<R>(text: string, params?: unknown[]): Promise<{ rows: R[]; affectedRows?: number }>
  exec(sql: string): Promise<unknown>
}

class PgliteQueryable implements Queryable {
  constructor (protected readonly target: PgliteLike) {}
  async query<R>(text: string, params: unknown[] = []): Promise<QueryResult<R>> {
    try {
      const result = await this.target.query<R>(text, params)
      // For SELECT, affectedRows is 0; for INSERT/UPDATE/DELETE it is the number of rows touched.
      return { rows: result.rows, rowCount: result.affectedRows || result.rows.length }
    } catch (err) {
      translate(err)
    }
  }

  async exec (sql: string): Promise<void> {
    try {
      await this.target.exec(sql)
    } catch (err) {
      translate(err)
    }
  }
}

export class PgliteDatabase extends PgliteQueryable implements Database {
  readonly kind = 'pglite' as const
  constructor (readonly pglite: PGlite) {
    super(pglite)
  }

  /** Opens (creating if needed) a database in dataDir, or an in-memory one when dataDir is undefined. */
  static async open (dataDir?: string, loadDataDir?: Blob): Promise<PgliteDatabase> {
    if (dataDir !== undefined) await prepareDataDir(dataDir, { contents: true })
    const pglite = await PGlite.create({
      ...(dataDir !== undefined ? { fs: new OwnerOnlyNodeFS(dataDir) } : {}),
      ...(loadDataDir !== undefined ? { loadDataDir } : {})
    })
    return new PgliteDatabase(pglite)
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    try {
      return await this.pglite.transaction((tx) => fn(new PgliteQueryable(tx)))
    } catch (err) {
      translate(err)
    }
  }

  async close (): Promise<void> {
    if (!this.pglite.closed) await this.pglite.close()
  }
}

/** The production choice: PostgreSQL when DATABASE_URL is set, else PGlite persisted under DATA_DIR/pglite. */
export async function openDatabase (
  config: { databaseUrl: string | undefined; dataDir: string },
  onIdleError?: (err: Error) => void
): Promise<Database> {
  if (config.databaseUrl !== undefined) {
    return new PostgresDatabase({ connectionString: config.databaseUrl, ...(onIdleError ? { onIdleError } : {}) })
  }
  // DATA_DIR itself is made owner-only too, not just the pglite folder inside it.
  await prepareDataDir(resolve(config.dataDir))
  return PgliteDatabase.open(resolve(config.dataDir, 'pglite'))
}
