// The repository's workspaces as the starters run them: from source through tsx, or from their build
// (dist/server.js, as production runs it), built first when missing or older than the sources.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './ports.js'
import { startProcess, waitForHttp, type Managed } from './processes.js'
import type { TestContext } from './test-context.js'

export const repoRoot = resolve(fileURLToPath(new URL('..', import.meta.url)))

export type Workspace = 'gateway' | 'task-service'

export function sourceEntry (workspace: Workspace): string {
  return join(repoRoot, workspace, 'src', 'server.ts')
}

export function distEntry (workspace: Workspace): string {
  return join(repoRoot, workspace, 'dist', 'server.js')
}

/**
 * The NODE_OPTIONS the workspace's container image runs node with (the `ENV NODE_OPTIONS=…` of its Dockerfile;
 * empty when it sets none): whatever starts the build as production does (the benchmarks, `npm start`) passes
 * the same, so that V8's heap is sized alike there and in the image.
 */
export function imageNodeOptions (workspace: Workspace): string {
  const dockerfile = readFileSync(join(repoRoot, workspace, 'Dockerfile'), 'utf8')
  const settings = [...dockerfile.matchAll(/^ENV NODE_OPTIONS=(?:"([^"]*)"|(\S+))\s*$/gm)]
  const last = settings.at(-1)
  return last === undefined ? '' : (last[1] ?? last[2] ?? '')
}

/** `env` with the image's NODE_OPTIONS first and env's own after them (for V8 flags, the last one wins). */
export function withImageNodeOptions<E extends Record<string, string | undefined>> (workspace: Workspace, env: E): E {
  const nodeOptions = [imageNodeOptions(workspace), env.NODE_OPTIONS ?? ''].filter((part) => part !== '').join(' ')
  return nodeOptions === '' ? env : { ...env, NODE_OPTIONS: nodeOptions }
}

export function sourceExists (workspace: Workspace): boolean {
  return existsSync(sourceEntry(workspace))
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
export function buildWorkspaceIfStale (workspace: Workspace): void {
  const dir = join(repoRoot, workspace)
  const entry = distEntry(workspace)
  if (existsSync(entry) && statSync(entry).mtimeMs >= newestMtime(join(dir, 'src'))) return
  console.log(`building ${workspace} (dist missing or stale)…`)
  const tsc = join(repoRoot, 'node_modules', '.bin', 'tsc')
  const result = spawnSync(tsc, ['-p', join(dir, 'tsconfig.build.json')], { cwd: repoRoot, encoding: 'utf8' })
  if (result.status !== 0) {
    throw new Error(`${workspace} build failed:\n${(result.stdout + result.stderr).slice(-3000)}`)
  }
}

export interface SpawnOptions {
  /** Default: a free port. */
  port?: number
  /** Killed (SIGKILL) at t's teardown. */
  t?: TestContext
  /**
   * 'source' (default): src/server.ts through tsx. 'dist': as production runs it: the build (built first when
   * stale), with the image's NODE_OPTIONS (imageNodeOptions).
   */
  from?: 'source' | 'dist'
  /** Another entry script (overrides `from`). */
  entry?: string
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[]
  /** A command that runs node, e.g. ['valgrind', '--tool=callgrind']. */
  launcher?: string[]
  /** Default: the workspace's name. */
  name?: string
  /** Output to <logDir>/<name>.log instead of memory. */
  logDir?: string
  core?: number
  niceness?: number
  /** Polled until 200 (default /healthz; /readyz also waits for the service's dependencies). */
  readyPath?: string
  /** Default 60 s; the process is killed when it is not ready by then. */
  timeoutMs?: number
}

export interface ServiceProcess extends Managed {
  port: number
  url: string
}

/**
 * A workspace's server as its own process, configured by `env` only: nothing inherited from the caller's shell
 * but PATH can change its behaviour. NODE_ENV=production (and from 'dist', the image's NODE_OPTIONS before any in env), listening
 * on 127.0.0.1. Resolves once readyPath answers 200.
 */
export async function spawnWorkspace (workspace: Workspace, env: Record<string, string>, options: SpawnOptions = {}): Promise<ServiceProcess> {
  const port = options.port ?? await freePort()
  if (options.from === 'dist' && options.entry === undefined) buildWorkspaceIfStale(workspace)
  const entry = options.entry ?? (options.from === 'dist' ? distEntry(workspace) : sourceEntry(workspace))
  const nodeFlags = options.nodeFlags ?? []
  const processEnv = { PATH: process.env.PATH ?? '', NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port), ...env }
  const managed = startProcess({
    name: options.name ?? workspace,
    command: options.launcher?.[0] ?? process.execPath,
    args: [
      ...(options.launcher !== undefined ? [...options.launcher.slice(1), process.execPath] : []),
      ...nodeFlags,
      ...(entry.endsWith('.ts') && !nodeFlags.includes('tsx') ? ['--import', 'tsx'] : []),
      entry
    ],
    env: options.from === 'dist' ? withImageNodeOptions(workspace, processEnv) : processEnv,
    cwd: repoRoot,
    ...(options.logDir !== undefined ? { logDir: options.logDir } : {}),
    ...(options.core !== undefined ? { core: options.core } : {}),
    ...(options.niceness !== undefined ? { niceness: options.niceness } : {})
  })
  options.t?.teardown(() => { managed.child.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  try {
    await waitForHttp(managed, url + (options.readyPath ?? '/healthz'), options.timeoutMs ?? 60_000)
  } catch (err) {
    managed.child.kill('SIGKILL')
    throw err
  }
  return Object.assign(managed, { port, url })
}
