// The real stack in one process, over real sockets on 127.0.0.1: the task service (PGlite, or a private
// PostgreSQL schema when TEST_DATABASE_URL is set) and one or more gateways in front of it.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildApp as buildGateway } from '../../gateway/src/app.js'
import { loadConfig as loadGatewayConfig } from '../../gateway/src/config.js'
import { ASSERTION_KEYS, DEV_AUDIENCE } from '../../support/tokens.js'
import { buildTestApp, type TestContext } from '../../task-service/test/helpers.js'

export const STACK_SECRET = 'reliability-tests-secret-of-at-least-32-bytes'

export function originOf (app: FastifyInstance): string {
  const { port } = app.server.address() as AddressInfo
  return `http://127.0.0.1:${port}`
}

/** A TestContext that collects teardowns (for scripts that run outside tap). */
export class Teardowns implements TestContext {
  private readonly fns: Array<() => unknown> = []
  teardown (fn: () => unknown): void { this.fns.push(fn) }
  async run (): Promise<void> {
    for (const fn of this.fns.reverse()) await fn()
  }
}

/** A ready task service listening on 127.0.0.1 (port 0 unless given). */
export async function startTaskService (t: TestContext, port = 0): Promise<FastifyInstance> {
  const app = await buildTestApp(t)
  await app.listen({ port, host: '127.0.0.1' })
  return app
}

/** A gateway configured through loadConfig, as production does, listening on 127.0.0.1; it signs with the key the task service trusts. */
export async function startGateway (t: TestContext, env: Record<string, string>, port = 0): Promise<FastifyInstance> {
  const gateway = await buildGateway(loadGatewayConfig({ JWT_SECRET: STACK_SECRET, JWT_AUDIENCE: DEV_AUDIENCE, GATEWAY_ASSERTION_PRIVATE_KEY: ASSERTION_KEYS.privateKeyPem, LOG_LEVEL: 'silent', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', ...env }), { logger: false })
  t.teardown(() => gateway.close())
  await gateway.listen({ port, host: '127.0.0.1' })
  return gateway
}
