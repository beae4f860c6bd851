// The real task service for --e2e: `node task-service/dist/server.js`, configured by its environment.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ASSERTION_KEYS } from '../../support/tokens.js'
import { buildWorkspaceIfStale, repoRoot } from './gateway.js'
import { freePort } from '../../support/ports.js'
import { startProcess, waitForHttp } from './processes.js'
import type { HttpTarget } from './upstream.js'

export function taskServiceSourceExists (): boolean {
  return existsSync(join(repoRoot, 'task-service', 'src', 'server.ts'))
}

export async function startTaskService (options: { name: string; databaseUrl?: string; dataDir: string; logDir: string }): Promise<HttpTarget> {
  buildWorkspaceIfStale('task-service')
  const port = await freePort()
  const managed = startProcess({
    name: options.name,
    command: process.execPath,
    args: [join(repoRoot, 'task-service', 'dist', 'server.js')],
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      DATA_DIR: options.dataDir,
      GATEWAY_ASSERTION_PUBLIC_KEY: ASSERTION_KEYS.publicKeyPem,
      // Unset DATABASE_URL selects the embedded PGlite, which is what the PGlite rows measure.
      ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {})
    },
    logDir: options.logDir,
    cwd: repoRoot
  })
  const baseUrl = `http://127.0.0.1:${port}`
  // PGlite initialises a WASM Postgres and runs the migrations: give it time.
  await waitForHttp(managed, `${baseUrl}/readyz`, 60_000)
  return { managed, baseUrl }
}
