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
  const line = `# Written by \`npm start\` on first run: the HS256 secret shared with Better Auth (keep it private).\nBETTER_AUTH_SECRET=${secret}\n`
  if (existsSync(path)) {
    const current = readFileSync(path, 'utf8')
    appendFileSync(path, (current.endsWith('\n') || current === '' ? '' : '\n') + line, { mode: 0o600 })
  } else {
    writeFileSync(path, line, { mode: 0o600, flag: 'wx' })
  }
  return { created: true }
}

/** The process environment over .env: what is set in the shell wins. */
export function effectiveEnv (env: NodeJS.ProcessEnv = process.env, path: string = envFilePath): NodeJS.ProcessEnv {
  return { ...readEnvFile(path), ...env }
}
