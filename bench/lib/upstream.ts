// Starts the benchmark's small Node servers (bench/servers/*.ts) as child processes: the trivial upstream
// (also the "Node http hello world" reference when pinned to the proxy core) and the bare Node proxy floor.
import { fileURLToPath } from 'node:url'
import { freePort } from '../../support/ports.js'
import { waitForHttp, type Managed } from '../../support/processes.js'
import { startProcess } from './processes.js'

const upstreamScript = fileURLToPath(new URL('../servers/upstream-server.ts', import.meta.url))
const floorScript = fileURLToPath(new URL('../servers/node-floor-proxy.ts', import.meta.url))

export interface HttpTarget {
  managed: Managed
  baseUrl: string
}

async function startNodeServer (name: string, script: string, env: Record<string, string>, logDir: string, core: number | undefined): Promise<HttpTarget> {
  const port = await freePort()
  const managed = startProcess({
    name,
    command: process.execPath,
    // tsx as a loader only costs at start-up; the request path is plain node:http.
    args: ['--import', 'tsx', script],
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    core,
    logDir
  })
  const baseUrl = `http://127.0.0.1:${port}`
  await waitForHttp(managed, `${baseUrl}/healthz`)
  return { managed, baseUrl }
}

export function startUpstream (name: string, logDir: string, core: number | undefined): Promise<HttpTarget> {
  return startNodeServer(name, upstreamScript, {}, logDir, core)
}

export function startNodeFloorProxy (
  name: string,
  options: { upstreamUrl: string, hmacSecret: string, issuer: string },
  logDir: string,
  core: number | undefined
): Promise<HttpTarget> {
  return startNodeServer(name, floorScript, { UPSTREAM_URL: options.upstreamUrl, JWT_SECRET: options.hmacSecret, JWT_ISSUER: options.issuer }, logDir, core)
}
