// Starts the benchmark's small Node servers (bench/servers/*.ts) as child processes: the trivial upstream
// (also the "Node http hello world" reference when pinned to the proxy core) and the bare Node proxy floor.
// They run as plain `node server.cjs`, compiled once per scratch directory by esbuild (dependencies bundled
// in): a reference row is a Node process with nothing else in it, as a service deployed from its build
// runs. Through tsx, the loader and its transpiled-module cache would add tens of MB to the measured RSS.
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { freePort } from '../../support/ports.js'
import { waitForHttp, type Managed } from '../../support/processes.js'
import { startProcess } from './processes.js'

const serverSources = {
  'upstream-server': fileURLToPath(new URL('../servers/upstream-server.ts', import.meta.url)),
  'node-floor-proxy': fileURLToPath(new URL('../servers/node-floor-proxy.ts', import.meta.url))
}
type ServerName = keyof typeof serverSources

// The floor forwards with the undici the gateway forwards with (the gateway's own dependency, which may be a
// newer major than the one at the repository root), so the two rows differ only in what the gateway adds.
const gatewayUndici = dirname(createRequire(new URL('../../gateway/package.json', import.meta.url)).resolve('undici/package.json'))

export interface HttpTarget {
  managed: Managed
  baseUrl: string
}

const compiled = new Map<string, Promise<Record<ServerName, string>>>()

/**
 * The servers as plain JavaScript in `<dir>/servers`, one CommonJS bundle each (the gateway's undici included,
 * so the output runs from any directory), compiled for the running Node. Once per directory.
 */
export function compileBenchServers (dir: string): Promise<Record<ServerName, string>> {
  let scripts = compiled.get(dir)
  if (scripts === undefined) {
    scripts = (async () => {
      const outdir = join(dir, 'servers')
      mkdirSync(outdir, { recursive: true })
      await build({
        entryPoints: serverSources,
        outdir,
        outExtension: { '.js': '.cjs' },
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: `node${process.versions.node}`,
        alias: { undici: gatewayUndici },
        logLevel: 'silent'
      })
      const names = Object.keys(serverSources) as ServerName[]
      return Object.fromEntries(names.map((name) => [name, join(outdir, `${name}.cjs`)])) as Record<ServerName, string>
    })()
    compiled.set(dir, scripts)
  }
  return scripts
}

async function startNodeServer (name: string, server: ServerName, env: Record<string, string>, logDir: string, core: number | undefined): Promise<HttpTarget> {
  const script = (await compileBenchServers(logDir))[server]
  const port = await freePort()
  const managed = startProcess({
    name,
    command: process.execPath,
    args: [script],
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    core,
    logDir
  })
  const baseUrl = `http://127.0.0.1:${port}`
  await waitForHttp(managed, `${baseUrl}/healthz`)
  return { managed, baseUrl }
}

export function startUpstream (name: string, logDir: string, core: number | undefined): Promise<HttpTarget> {
  return startNodeServer(name, 'upstream-server', {}, logDir, core)
}

export function startNodeFloorProxy (
  name: string,
  options: { upstreamUrl: string, hmacSecret: string, issuer: string },
  logDir: string,
  core: number | undefined
): Promise<HttpTarget> {
  return startNodeServer(name, 'node-floor-proxy', { UPSTREAM_URL: options.upstreamUrl, JWT_SECRET: options.hmacSecret, JWT_ISSUER: options.issuer }, logDir, core)
}
