// Child processes for tests, benchmarks and scripts: started (optionally pinned to a CPU core with taskset and
// reniced), their output kept in a log file or in memory, never outliving the process that started them, and
// waited on by polling HTTP or their exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import net from 'node:net'
import { getPriority } from 'node:os'
import { join } from 'node:path'
import { sleep } from './wait.js'

export const hasTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface Managed {
  name: string
  pid: number
  child: ChildProcess
  /** The log file, when output goes to one (StartOptions.logDir). */
  logFile: string | undefined
  exited: Promise<Exit>
  /** Everything the process wrote to stdout and stderr so far (from memory, or the end of its log file). */
  output: () => string
}

export interface StartOptions {
  name: string
  command: string
  args: string[]
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Pins the process and every thread it makes to this core (when taskset exists). */
  core?: number
  /** Runs the process at this niceness (`nice -n` relative to this process's own). */
  niceness?: number
  /**
   * Output to `<logDir>/<name>.log` (a file, not a pipe this process must drain: a benchmark's load generator
   * must not spend CPU on it). Without it, output is kept in memory.
   */
  logDir?: string
}

const running = new Set<Managed>()

export function startProcess (options: StartOptions): Managed {
  // nice and taskset each exec the next command, so the pid we get is the pid of the process itself, and every
  // thread it creates inherits both the priority and the core.
  const niceAdjustment = options.niceness === undefined ? 0 : options.niceness - getPriority()
  const prefix = [
    ...(niceAdjustment !== 0 ? ['nice', '-n', String(niceAdjustment)] : []),
    ...(hasTaskset && options.core !== undefined ? ['taskset', '-c', String(options.core)] : [])
  ]
  const [command, args] = prefix.length > 0 ? [prefix[0]!, [...prefix.slice(1), options.command, ...options.args]] : [options.command, options.args]
  const logFile = options.logDir === undefined ? undefined : join(options.logDir, `${options.name}.log`)
  const logFd = logFile === undefined ? undefined : openSync(logFile, 'a')
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: logFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFd, logFd]
  })
  if (logFd !== undefined) closeSync(logFd)
  if (child.pid === undefined) throw new Error(`could not start ${options.name} (${command})`)
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { out += c.toString() })
  // Never outlive this process (e.g. when a test runner kills it on a timeout).
  const killChild = (): void => { child.kill('SIGKILL') }
  process.once('exit', killChild)
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => {
    process.off('exit', killChild)
    resolve({ code, signal })
  }))
  const managed: Managed = {
    name: options.name,
    pid: child.pid,
    child,
    logFile,
    exited,
    output: () => logFile === undefined ? out : readLog(logFile)
  }
  running.add(managed)
  void exited.then(() => running.delete(managed))
  return managed
}

function readLog (file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

export function logTail (managed: Managed, maxChars = 2000): string {
  return managed.output().slice(-maxChars)
}

const hasExited = (managed: Managed): boolean => managed.child.exitCode !== null || managed.child.signalCode !== null

/** SIGTERM (lets a Node process with --cpu-prof write its profile, a server drain), then SIGKILL if it hangs. */
export async function stopProcess (managed: Managed, graceMs = 5000): Promise<void> {
  if (hasExited(managed)) return
  managed.child.kill('SIGTERM')
  const timer = setTimeout(() => managed.child.kill('SIGKILL'), graceMs)
  await managed.exited
  clearTimeout(timer)
}

/** Stops every process started here that is still running. */
export async function stopAll (): Promise<void> {
  await Promise.all([...running].map((managed) => stopProcess(managed)))
}

/** The process's exit, or 'still running' when it has not exited within `ms`. */
export async function exitWithin (managed: Pick<Managed, 'exited'>, ms: number): Promise<Exit | 'still running'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'still running'>((resolve) => { timer = setTimeout(() => { resolve('still running') }, ms) })
  try {
    return await Promise.race([managed.exited, late])
  } finally {
    clearTimeout(timer)
  }
}

/** The status of a GET on a fresh connection, or 0 when it fails or takes longer than `timeoutMs`. */
export function httpStatus (url: string, headers: Record<string, string> = {}, timeoutMs = 1000): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { headers, timeout: timeoutMs, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(0))
    req.end()
  })
}

/** Polls `url` until it answers `expectedStatus`; fails fast if the process exits first. */
export async function waitForHttp (managed: Managed, url: string, timeoutMs = 20_000, expectedStatus = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastStatus = 0
  while (Date.now() < deadline) {
    if (hasExited(managed)) {
      throw new Error(`${managed.name} exited (code ${managed.child.exitCode}) before it was ready:\n${logTail(managed)}`)
    }
    lastStatus = await httpStatus(url)
    if (lastStatus === expectedStatus) return
    await sleep(100)
  }
  throw new Error(`${managed.name} not ready at ${url} after ${timeoutMs} ms (last status ${lastStatus}):\n${logTail(managed)}`)
}

/** Resolves true when a new TCP connection to the port on 127.0.0.1 is refused. */
export async function refused (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.on('connect', () => { s.destroy(); resolve(false) })
    s.on('error', (err: NodeJS.ErrnoException) => { resolve(err.code === 'ECONNREFUSED') })
  })
}
