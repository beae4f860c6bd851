// Gateways for tests, benchmarks and scripts, configured from an env-like object through loadConfig, as
// production does: built in this process (startGateway), or run as a child process (spawnGateway). Both
// listen on 127.0.0.1 only and, unless told otherwise, get test defaults (testGatewayEnv). The gateway's
// source is imported only when a gateway is built here: a benchmark spawning a build never loads it.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { BuildAppOptions } from '../gateway/src/app.js'
import type { TestContext } from './test-context.js'
import { ASSERTION_ENV, AUDIENCE, SECRET } from './tokens.js'
import { sourceExists, spawnWorkspace, type ServiceProcess, type SpawnOptions } from './workspaces.js'

/**
 * What a test gateway runs with unless `env` says otherwise: the test assertion key (the task services started
 * here trust it), the test HS256 secret, the test audience (unless BETTER_AUTH_URL names one), and load
 * shedding off: on a busy CI machine a starved sample would turn requests of tests that assert "never a 5xx"
 * into 503s (load-shedding.test.ts sets its own thresholds).
 */
export function testGatewayEnv (env: Record<string, string> = {}): Record<string, string> {
  const audience: Record<string, string> = env.JWT_AUDIENCE === undefined && env.BETTER_AUTH_URL === undefined ? { JWT_AUDIENCE: AUDIENCE } : {}
  return { ...ASSERTION_ENV, JWT_SECRET: SECRET, LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', ...audience, ...env }
}

export interface RunningGateway {
  app: FastifyInstance
  url: string
  port: number
  close: () => Promise<void>
}

export interface StartGatewayOptions extends BuildAppOptions {
  /** false: ready() only, for app.inject() (default: listen). */
  listen?: boolean
  /** Default 0: any free port. */
  port?: number
  /** Closed at t's teardown. */
  t?: TestContext
}

/** A gateway in this process. Logging is off unless a logger or logStream is given. */
export async function startGateway (env: Record<string, string> = {}, options: StartGatewayOptions = {}): Promise<RunningGateway> {
  const { listen, port: wanted, t, ...build } = options
  const logging = build.logger === undefined && build.logStream === undefined ? { logger: false as const } : {}
  const [{ buildApp }, { loadConfig }] = await Promise.all([import('../gateway/src/app.js'), import('../gateway/src/config.js')])
  const app = await buildApp(loadConfig(testGatewayEnv(env)), { ...logging, ...build })
  t?.teardown(() => app.close())
  let port = 0
  if (listen !== false) {
    await app.listen({ port: wanted ?? 0, host: '127.0.0.1' })
    port = (app.server.address() as AddressInfo).port
  } else {
    await app.ready()
  }
  return { app, url: `http://127.0.0.1:${port}`, port, close: async () => { await app.close() } }
}

export function gatewaySourceExists (): boolean {
  return sourceExists('gateway')
}

export interface SpawnGatewayOptions extends SpawnOptions {
  /**
   * false: no test defaults; `env` (with the assertion key) is the whole configuration, as a deployment sets it
   * (benchmarks). Default true: testGatewayEnv, LOG_LEVEL=warn, metrics off.
   */
  testDefaults?: boolean
}

/** A gateway as its own process, as production runs it (real signals, real exit codes), once it answers readyPath. */
export async function spawnGateway (env: Record<string, string> = {}, options: SpawnGatewayOptions = {}): Promise<ServiceProcess> {
  const { testDefaults, ...spawnOptions } = options
  return await spawnWorkspace('gateway', testDefaults === false
    ? { ...ASSERTION_ENV, ...env }
    : { HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', METRICS_PORT: '0', ...testGatewayEnv(env) }, spawnOptions)
}
