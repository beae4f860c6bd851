// A Database whose connection can be taken away: while down, every statement fails the way drivers fail
// when the server is gone (and a transaction fails on its next statement, so it rolls back mid-way).
import type { Database, Queryable, QueryResult } from '../../task-service/src/db.js'

function gone (): Error {
  return Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' })
}

export class FaultyDatabase implements Database {
  down = false
  constructor (private readonly inner: Database) {}
  get kind (): Database['kind'] { return this.inner.kind }
  async query<R>(text: string, params?: unknown[]): Promise<QueryResult<R>> {
    if (this.down) throw gone()
    return await this.inner.query<R>(text, params)
  }

  async exec (sql: string): Promise<void> {
    if (this.down) throw gone()
    await this.inner.exec(sql)
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    if (this.down) throw gone()
    return await this.inner.transaction(async (tx) => await fn({
      query: async <R>(text: string, params?: unknown[]): Promise<QueryResult<R>> => {
        if (this.down) throw gone()
        return await tx.query<R>(text, params)
      },
      exec: async (sql: string) => {
        if (this.down) throw gone()
        await tx.exec(sql)
      }
    }))
  }

  async close (): Promise<void> { await this.inner.close() }
}
