// The gateway as its own process (gateway/src/server.ts through tsx), as production runs it: real signals,
// real exit codes. Listens on 127.0.0.1 only.
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { ASSERTION_KEYS, DEV_AUDIENCE } from '../../support/tokens.js'
import { freePort } from '../../support/ports.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface GatewayProcess {
  port: number
  url: string
  child: ChildProcess
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  output: () => string
}

/**
 * Spawns a gateway and resolves once /healthz answers 200 (at most 60 s, else it is killed and this throws).
 * Load shedding is off unless `env` sets it: a busy test machine must not turn these tests' requests into 503s.
 * It signs identity assertions with the key the tests' task service trusts.
 */
export async function spawnGateway (env: Record<string, string>, port?: number): Promise<GatewayProcess> {
  const p = port ?? await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/src/server.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(p), LOG_LEVEL: 'warn', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', JWT_AUDIENCE: DEV_AUDIENCE, METRICS_PORT: '0', GATEWAY_ASSERTION_PRIVATE_KEY: ASSERTION_KEYS.privateKeyPem, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  // Never outlive the test process (e.g. when a test runner kills it on a timeout).
  const killChild = (): void => { child.kill('SIGKILL') }
  process.once('exit', killChild)
  child.once('exit', () => { process.off('exit', killChild) })
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { out += c.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  let gone = false
  void exited.then(() => { gone = true })
  const url = `http://127.0.0.1:${p}`
  const end = Date.now() + 60_000
  while (Date.now() < end && !gone) {
    try {
      const res = await request(url + '/healthz', { reset: true, headersTimeout: 1_000, bodyTimeout: 1_000 })
      await res.body.dump()
      if (res.statusCode === 200) return { port: p, url, child, exited, output: () => out }
    } catch { /* not listening yet */ }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  child.kill('SIGKILL')
  throw new Error(`gateway did not start: ${out}`)
}

/** Resolves true when a new TCP connection to the port is refused. */
export async function refused (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.on('connect', () => { s.destroy(); resolve(false) })
    s.on('error', (err: NodeJS.ErrnoException) => { resolve(err.code === 'ECONNREFUSED') })
  })
}

/** The process's exit, or 'still running' when it has not exited within `ms`. */
export async function exitWithin (g: GatewayProcess, ms: number): Promise<{ code: number | null, signal: NodeJS.Signals | null } | 'still running'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'still running'>((resolve) => { timer = setTimeout(() => { resolve('still running') }, ms) })
  try {
    return await Promise.race([g.exited, late])
  } finally {
    clearTimeout(timer)
  }
}
