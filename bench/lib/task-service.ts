// The real task service for --e2e: its build (`node task-service/dist/server.js`), started by
// support/task-service.ts, configured by its environment.
import { spawnTaskService } from '../../support/task-service.js'
import { benchNiceness } from './processes.js'
import type { HttpTarget } from './upstream.js'

export async function startTaskService (options: { name: string; databaseUrl?: string; dataDir: string; logDir: string }): Promise<HttpTarget> {
  const managed = await spawnTaskService({
    LOG_LEVEL: 'info',
    DATA_DIR: options.dataDir,
    // Unset DATABASE_URL selects the embedded PGlite, which is what the PGlite rows measure.
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {})
  }, {
    from: 'dist',
    name: options.name,
    logDir: options.logDir,
    ...(benchNiceness !== undefined ? { niceness: benchNiceness } : {}),
    // PGlite initialises a WASM Postgres and runs the migrations: give it time.
    timeoutMs: 60_000
  })
  return { managed, baseUrl: managed.url }
}
