// `npm start`: the local stack on one machine, no database server needed.
//   task service on 127.0.0.1:3001 (PGlite on disk under ./data), gateway on 127.0.0.1:8080 in front of it.
// On first run it writes a .env with a random BETTER_AUTH_SECRET, JWT_AUDIENCE=todo-api, the usual frontend dev origins in
// CORS_ORIGINS and the gateway's identity-assertion key pair (never overwriting any of them); each service gets
// only its half of the pair. Both services' log lines are shown, each marked with its service; Ctrl-C stops
// both cleanly (gateway first, so no request is forwarded to a task service that is already gone).
// Services are started from their build output (`npm start` runs `npm run build` first), the same code that
// runs in the container images, and with the images' NODE_OPTIONS (V8's heap sized as there).
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { withImageNodeOptions, type Workspace } from '../support/workspaces.js'
import { ensureAssertionKeys, ensureDevAudience, ensureDevCorsOrigins, ensureDevSecret, effectiveEnv, publicKeyOf, repoRoot } from './dev-env.js'

const READY_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 15_000

interface Service {
  name: string
  child: ChildProcess
  exited: Promise<number | null>
}

const colour = process.stdout.isTTY ? { 'task-service': '\x1b[36m', gateway: '\x1b[35m' } as Record<string, string> : {}
const reset = process.stdout.isTTY ? '\x1b[0m' : ''

function say (line: string): void {
  process.stdout.write(`[stack] ${line}\n`)
}

function parsePort (value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback
  const port = Number(value)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write(`[stack] ${name} must be a port number from 1 to 65535, got "${value}"\n`)
    process.exit(1)
  }
  return port
}

function startService (name: Workspace, entry: string, env: NodeJS.ProcessEnv): Service {
  // A process group of its own: a terminal's Ctrl-C reaches only this launcher, which then stops each service
  // once, in order, instead of every process receiving the signal at the same moment.
  const child = spawn(process.execPath, [entry], { cwd: repoRoot, env: withImageNodeOptions(name, env), stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const prefix = `${colour[name] ?? ''}[${name}]${reset} `
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream! }).on('line', (line) => process.stdout.write(prefix + line + '\n'))
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { name, child, exited }
}

async function waitUntilReady (service: Service, url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  let exited = false
  void service.exited.then(() => { exited = true })
  while (Date.now() < deadline && !exited) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) })
      if (response.ok) return
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(exited
    ? `${service.name} exited before it was ready (see its log lines above)`
    : `${service.name} was not ready at ${url} within ${READY_TIMEOUT_MS / 1000} s`)
}

async function stop (service: Service): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return
  service.child.kill('SIGTERM')
  const timer = setTimeout(() => service.child.kill('SIGKILL'), STOP_TIMEOUT_MS)
  await service.exited
  clearTimeout(timer)
}

async function main (): Promise<void> {
  const { created } = ensureDevSecret(process.env)
  if (created) say('wrote .env with a new random BETTER_AUTH_SECRET (kept for later runs)')
  if (ensureDevAudience(process.env).created) say('added JWT_AUDIENCE=todo-api to .env (the audience the gateway requires; `npm run token` mints it)')
  if (ensureDevCorsOrigins(process.env).created) say('wrote CORS_ORIGINS to .env: browsers on http://localhost:3000 and http://127.0.0.1:3000 may call the API (edit .env to change)')
  try {
    if (ensureAssertionKeys(process.env).created) say('wrote .env with a new identity-assertion key pair for the gateway and the task service (kept for later runs)')
  } catch (error) {
    process.stderr.write(`[stack] ${(error as Error).message}\n`)
    process.exit(1)
  }
  const env = effectiveEnv()
  // Each service gets only its half of the key pair: the task service never holds the gateway's private key.
  const { GATEWAY_ASSERTION_PRIVATE_KEY: assertionPrivateKey = '', GATEWAY_ASSERTION_PUBLIC_KEY: assertionPublicKey, ...sharedEnv } = env
  let taskServicePublicKey = assertionPublicKey
  if (!taskServicePublicKey) {
    try {
      taskServicePublicKey = publicKeyOf(assertionPrivateKey)
    } catch {
      process.stderr.write('[stack] GATEWAY_ASSERTION_PRIVATE_KEY is not an Ed25519 private key in PEM form: fix it, or remove it from .env to have a new pair made\n')
      process.exit(1)
    }
  }
  const gatewayPort = parsePort(env.GATEWAY_PORT, 8080, 'GATEWAY_PORT')
  const taskServicePort = parsePort(env.TASK_SERVICE_PORT, 3001, 'TASK_SERVICE_PORT')
  // Each service's own metrics port (METRICS_PORT in .env would give both the same one).
  const gatewayMetricsPort = parsePort(env.GATEWAY_METRICS_PORT, 9464, 'GATEWAY_METRICS_PORT')
  const taskServiceMetricsPort = parsePort(env.TASK_SERVICE_METRICS_PORT, 9465, 'TASK_SERVICE_METRICS_PORT')
  const taskServiceUrl = `http://127.0.0.1:${taskServicePort}`
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`

  const services: Service[] = []
  let stopping = false
  const stopAll = async (exitCode: number): Promise<never> => {
    if (!stopping) {
      stopping = true
      say('stopping…')
      // Gateway first: it stops accepting and drains, then the service behind it goes.
      for (const service of [...services].reverse()) await stop(service)
      say('stopped')
    }
    process.exit(exitCode)
  }
  process.on('SIGINT', () => { void stopAll(0) })
  process.on('SIGTERM', () => { void stopAll(0) })

  const taskService = startService('task-service', join('task-service', 'dist', 'server.js'), {
    ...sharedEnv,
    GATEWAY_ASSERTION_PUBLIC_KEY: taskServicePublicKey,
    PORT: String(taskServicePort),
    HOST: '127.0.0.1',
    METRICS_PORT: String(taskServiceMetricsPort),
    DATA_DIR: env.DATA_DIR || join(repoRoot, 'data')
  })
  services.push(taskService)
  void taskService.exited.then((code) => { if (!stopping) { say(`task-service exited (code ${code})`); void stopAll(1) } })

  try {
    await waitUntilReady(taskService, `${taskServiceUrl}/readyz`)
    const gateway = startService('gateway', join('gateway', 'dist', 'server.js'), {
      ...sharedEnv,
      GATEWAY_ASSERTION_PRIVATE_KEY: assertionPrivateKey,
      PORT: String(gatewayPort),
      HOST: '127.0.0.1',
      METRICS_PORT: String(gatewayMetricsPort),
      TASK_SERVICE_URL: taskServiceUrl
    })
    services.push(gateway)
    void gateway.exited.then((code) => { if (!stopping) { say(`gateway exited (code ${code})`); void stopAll(1) } })
    await waitUntilReady(gateway, `${gatewayUrl}/readyz`)
  } catch (error) {
    process.stderr.write(`[stack] ${(error as Error).message}\n`)
    await stopAll(1)
  }

  say(`ready: the API is at ${gatewayUrl}/api/tasks (task service, private: ${taskServiceUrl})`)
  say('get a token:  npm run -s token -- alice')
  say(`try it:       curl -H "Authorization: Bearer $(npm run -s token -- alice)" ${gatewayUrl}/api/tasks`)
  say('Ctrl-C stops both services')
}

await main()
