// The local development environment file (.env at the repository root).
// Only the root launcher and the token script read it: the services themselves take configuration from
// their process environment alone, so a stray .env can never configure a production gateway.
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseEnv } from 'node:util'

export const repoRoot = fileURLToPath(new URL('..', import.meta.url))
export const envFilePath = fileURLToPath(new URL('../.env', import.meta.url))

/** Reads .env if it exists; an absent file is an empty environment. */
export function readEnvFile (path: string = envFilePath): Record<string, string> {
  if (!existsSync(path)) return {}
  return parseEnv(readFileSync(path, 'utf8')) as Record<string, string>
}

/**
 * Makes sure a BETTER_AUTH_SECRET exists for local runs. A secret already in the environment or in .env is
 * kept as it is; otherwise a random 32-byte secret is written (appended when .env exists, so nothing in it
 * is ever overwritten). Returns whether a secret was created.
 */
export function ensureDevSecret (env: NodeJS.ProcessEnv, path: string = envFilePath): { created: boolean } {
  const fromFile = readEnvFile(path)
  if (env.BETTER_AUTH_SECRET || env.JWT_SECRET || fromFile.BETTER_AUTH_SECRET || fromFile.JWT_SECRET) {
    return { created: false }
  }
  const secret = randomBytes(32).toString('base64url')
  appendLines(path, `# Written by \`npm start\` on first run: the HS256 secret shared with Better Auth (keep it private).\nBETTER_AUTH_SECRET=${secret}\n`)
  return { created: true }
}

/** The frontend dev servers' usual origins, allowed to call the local gateway from a browser. */
export const DEV_CORS_ORIGINS = 'http://localhost:3000,http://127.0.0.1:3000'

/**
 * Makes sure the local gateway answers a frontend dev server's browser requests: CORS_ORIGINS is written
 * to .env when neither the environment nor .env sets it (set to empty, it stays empty: no origin allowed).
 */
export function ensureDevCorsOrigins (env: NodeJS.ProcessEnv, path: string = envFilePath): { created: boolean } {
  if (env.CORS_ORIGINS !== undefined || readEnvFile(path).CORS_ORIGINS !== undefined) return { created: false }
  appendLines(path, `# Frontend origins allowed to call the gateway from a browser (comma-separated; empty: none).\nCORS_ORIGINS=${DEV_CORS_ORIGINS}\n`)
  return { created: true }
}

/** Appends `lines` to .env (created, mode 0600, when absent); what is in it is never changed. */
function appendLines (path: string, lines: string): void {
  if (existsSync(path)) {
    const current = readFileSync(path, 'utf8')
    appendFileSync(path, (current.endsWith('\n') || current === '' ? '' : '\n') + lines, { mode: 0o600 })
  } else {
    writeFileSync(path, lines, { mode: 0o600, flag: 'wx' })
  }
}

/** The process environment over .env: what is set in the shell wins. */
export function effectiveEnv (env: NodeJS.ProcessEnv = process.env, path: string = envFilePath): NodeJS.ProcessEnv {
  return { ...readEnvFile(path), ...env }
}
