// The local development environment file (.env at the repository root).
// Only the root launcher and the token script read it: the services themselves take configuration from
// their process environment alone, so a stray .env can never configure a production gateway.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseEnv } from 'node:util'
import { DEV_AUDIENCE } from '../support/tokens.js'

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

/**
 * Makes sure the local gateway has a token audience (it refuses to start without one): JWT_AUDIENCE=todo-api
 * is appended to .env unless an audience is already configured in the environment or in .env — JWT_AUDIENCE,
 * or BETTER_AUTH_URL, whose origin is the audience. Returns whether it was written.
 */
export function ensureDevAudience (env: NodeJS.ProcessEnv, path: string = envFilePath): { created: boolean } {
  const fromFile = readEnvFile(path)
  if (env.JWT_AUDIENCE || env.BETTER_AUTH_URL || fromFile.JWT_AUDIENCE || fromFile.BETTER_AUTH_URL) return { created: false }
  appendLines(path, `# Written by \`npm start\`: the audience (aud) the gateway requires in tokens; \`npm run token\` mints it.\nJWT_AUDIENCE=${DEV_AUDIENCE}\n`)
  return { created: true }
}

/** Appends `lines` to .env (created when absent; mode 0600 either way); what is in it is never changed. */
function appendLines (path: string, lines: string): void {
  if (existsSync(path)) {
    const current = readFileSync(path, 'utf8')
    appendFileSync(path, (current.endsWith('\n') || current === '' ? '' : '\n') + lines)
    // It may hold a private key now, whatever mode it had.
    chmodSync(path, 0o600)
  } else {
    writeFileSync(path, lines, { mode: 0o600, flag: 'wx' })
  }
}

/** A new Ed25519 pair for the gateway's identity assertions, as .env lines (PEM on one line, \n escaped). */
export function assertionKeyLines (): string {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const oneLine = (pem: string): string => `"${pem.trim().replace(/\n/g, '\\n')}"`
  return '# The gateway signs the identity it forwards with this Ed25519 key (keep it private; gateway only).\n' +
    `GATEWAY_ASSERTION_PRIVATE_KEY=${oneLine(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())}\n` +
    '# The task service verifies those signatures with this public key.\n' +
    `GATEWAY_ASSERTION_PUBLIC_KEY=${oneLine(publicKey.export({ type: 'spki', format: 'pem' }).toString())}\n`
}

/**
 * Makes sure the gateway's assertion key pair exists for local runs. A private key already in the environment
 * or .env is kept (and, when no public key is set, the task service gets the one derived from it); with
 * neither, a new pair is appended to .env. A public key without its private key cannot be completed: that is
 * an error, never a silent replacement.
 */
export function ensureAssertionKeys (env: NodeJS.ProcessEnv, path: string = envFilePath): { created: boolean } {
  const fromFile = readEnvFile(path)
  const privateKey = env.GATEWAY_ASSERTION_PRIVATE_KEY || fromFile.GATEWAY_ASSERTION_PRIVATE_KEY
  const publicKey = env.GATEWAY_ASSERTION_PUBLIC_KEY || fromFile.GATEWAY_ASSERTION_PUBLIC_KEY
  if (privateKey) return { created: false }
  if (publicKey) {
    throw new Error('GATEWAY_ASSERTION_PUBLIC_KEY is set but GATEWAY_ASSERTION_PRIVATE_KEY is not: set both (npm run keys prints a pair), or remove the public key to have a pair made')
  }
  appendLines(path, assertionKeyLines())
  return { created: true }
}

/**
 * The public key matching the gateway's private key (PEM), for a task service started next to it when only the
 * private key is configured.
 */
export function publicKeyOf (privateKeyPem: string): string {
  const pem = privateKeyPem.replace(/\\n/g, '\n')
  return createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'pem' }).toString()
}

/** The process environment over .env: what is set in the shell wins. */
export function effectiveEnv (env: NodeJS.ProcessEnv = process.env, path: string = envFilePath): NodeJS.ProcessEnv {
  return { ...readEnvFile(path), ...env }
}
