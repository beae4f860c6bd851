// The gateway under test, started exactly as in production: `node gateway/dist/server.js`, configured by
// its environment only. Built first when dist/ is missing or older than the sources.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../support/ports.js'
import { ASSERTION_KEYS } from '../../support/tokens.js'
import { PROXY_CORE, startProcess, waitForHttp } from './processes.js'
import type { HttpTarget } from './upstream.js'

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const gatewayDir = join(repoRoot, 'gateway')
export const gatewayEntry = join(gatewayDir, 'dist', 'server.js')

export function gatewaySourceExists (): boolean {
  return existsSync(join(gatewayDir, 'src', 'server.ts'))
}

function newestMtime (dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

/** Runs the workspace's own build when dist/server.js is missing or older than any file in src/. */
export function buildWorkspaceIfStale (workspace: 'gateway' | 'task-service'): void {
  const dir = join(repoRoot, workspace)
  const entry = join(dir, 'dist', 'server.js')
  if (existsSync(entry) && statSync(entry).mtimeMs >= newestMtime(join(dir, 'src'))) return
  console.log(`building ${workspace} (dist missing or stale)…`)
  const tsc = join(repoRoot, 'node_modules', '.bin', 'tsc')
  const result = spawnSync(tsc, ['-p', join(dir, 'tsconfig.build.json')], { cwd: repoRoot, encoding: 'utf8' })
  if (result.status !== 0) {
    throw new Error(`${workspace} build failed:\n${(result.stdout + result.stderr).slice(-3000)}`)
  }
}

export interface GatewayOptions {
  name: string
  upstreamUrl: string
  hmacSecret: string
  jwksUrl: string
  issuer: string
  audience: string
  logDir: string
  logLevel: string
  /** Extra node flags, e.g. --cpu-prof for profiling runs. */
  nodeFlags?: string[]
  entry?: string
  core?: number
  /** Extra environment for the gateway process (e.g. the forwarder A/B's FORWARDER). */
  env?: Record<string, string>
  /** A command that runs node, e.g. ['valgrind', '--tool=callgrind'] for instruction counts. */
  launcher?: string[]
  /** How long to wait for /readyz (a gateway under valgrind starts in tens of seconds). */
  readyTimeoutMs?: number
}

export async function startGateway (options: GatewayOptions): Promise<HttpTarget> {
  const port = await freePort()
  const managed = startProcess({
    name: options.name,
    command: options.launcher?.[0] ?? process.execPath,
    args: [...(options.launcher ?? []).slice(1), ...(options.launcher !== undefined ? [process.execPath] : []), ...(options.nodeFlags ?? []), options.entry ?? gatewayEntry],
    env: {
      // Only what a deployment sets: nothing inherited from the developer's shell can change the result.
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      TASK_SERVICE_URL: options.upstreamUrl,
      JWT_SECRET: options.hmacSecret,
      GATEWAY_ASSERTION_PRIVATE_KEY: ASSERTION_KEYS.privateKeyPem,
      JWKS_URL: options.jwksUrl,
      JWT_ISSUER: options.issuer,
      JWT_AUDIENCE: options.audience,
      LOG_LEVEL: options.logLevel,
      // The benchmark is one client IP and a few users sending thousands of requests a second: keep the
      // rate limiter on its real code path (its cost is part of every request) but out of reach.
      RATE_LIMIT_IP_MAX: String(100_000_000),
      RATE_LIMIT_USER_MAX: String(100_000_000),
      // Metrics on, as deployed, each gateway on a port of its own (the A/B runs two side by side).
      METRICS_PORT: String(await freePort()),
      ...options.env
    },
    core: options.core ?? PROXY_CORE,
    logDir: options.logDir,
    cwd: repoRoot
  })
  const baseUrl = `http://127.0.0.1:${port}`
  // /readyz: the upstream answers and the JWKS is loaded, so the first measured request can succeed.
  await waitForHttp(managed, `${baseUrl}/readyz`, options.readyTimeoutMs ?? 30_000)
  return { managed, baseUrl }
}
