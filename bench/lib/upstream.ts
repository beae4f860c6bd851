// Starts the trivial upstream (bench/servers/upstream-server.ts) as a child process.
import { fileURLToPath } from 'node:url'
import { freePort } from '../../support/ports.js'
import { startProcess, waitForHttp, type Managed } from './processes.js'

const upstreamScript = fileURLToPath(new URL('../servers/upstream-server.ts', import.meta.url))

export interface HttpTarget {
  managed: Managed
  baseUrl: string
}

export async function startUpstream (name: string, logDir: string, core: number | undefined): Promise<HttpTarget> {
  const port = await freePort()
  const managed = startProcess({
    name,
    command: process.execPath,
    // tsx as a loader only costs at start-up; the request path is plain node:http.
    args: ['--import', 'tsx', upstreamScript],
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
    core,
    logDir
  })
  const baseUrl = `http://127.0.0.1:${port}`
  await waitForHttp(managed, `${baseUrl}/healthz`)
  return { managed, baseUrl }
}
