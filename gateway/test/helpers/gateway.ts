// Builds a gateway from an env-like object (through loadConfig, as production does) and listens on
// 127.0.0.1:0.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { ASSERTION_ENV, AUDIENCE, SECRET } from '../../../support/tokens.js'

export interface RunningGateway {
  app: FastifyInstance
  url: string
  port: number
  close: () => Promise<void>
}

export async function startGateway (env: Record<string, string>, opts: { listen?: boolean } = {}): Promise<RunningGateway> {
  // Load shedding off unless a test sets it: on a busy CI machine a starved sample would turn requests of
  // tests that assert "never a 5xx" into 503s. load-shedding.test.ts sets its own thresholds.
  // The test audience unless the test configures one (JWT_AUDIENCE, or BETTER_AUTH_URL's origin).
  const audience = env.JWT_AUDIENCE === undefined && env.BETTER_AUTH_URL === undefined ? { JWT_AUDIENCE: AUDIENCE } : {}
  const config = loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', ...audience, ...env })
  const app = await buildApp(config, { logger: false })
  let port = 0
  if (opts.listen !== false) {
    await app.listen({ port: 0, host: '127.0.0.1' })
    port = (app.server.address() as AddressInfo).port
  } else {
    await app.ready()
  }
  return { app, url: `http://127.0.0.1:${port}`, port, close: async () => { await app.close() } }
}

export function bearer (token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

/** Polls until `cond` holds (or fails after `ms`). Behavioural waiting, not a timing assertion. */
export async function eventually (cond: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await cond()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error('condition not reached')
}

/** The type of a tap subtest's `t`. */
export type TapTest = Parameters<Parameters<typeof import('tap').default.test>[0]>[0]
