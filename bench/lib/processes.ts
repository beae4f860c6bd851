// Starting and stopping the processes under test: optionally pinned to a CPU core with taskset, output
// kept in a log file (a pipe the harness must drain would steal CPU from the load generator's core), and
// always stopped at the end, even when the run fails half-way.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'node:http'
import { getPriority, setPriority } from 'node:os'

/** The core the proxy under test runs on, and the one shared by the load generator and the upstream. */
export const PROXY_CORE = 1
export const LOAD_CORE = 0

export const hasTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0

/**
 * Niceness for everything the benchmark runs. The development machines are shared with other work (test
 * suites, builds); a higher priority keeps that work from preempting the measured processes mid-request,
 * which otherwise shows up as tens of milliseconds of p99. Only root may raise priority: elsewhere
 * nothing is reniced and the run says so.
 */
export const BENCH_NICENESS = -10
export const canRaisePriority = spawnSync('nice', ['-n', String(BENCH_NICENESS), 'true'], { stdio: 'ignore' }).status === 0 && process.getuid?.() === 0

export interface Managed {
  name: string
  pid: number
  child: ChildProcess
  logFile: string
  exited: Promise<number | null>
}

const running = new Set<Managed>()

export interface StartOptions {
  name: string
  command: string
  args: string[]
  env?: NodeJS.ProcessEnv
  core?: number
  logDir: string
  cwd?: string
}

export function startProcess (options: StartOptions): Managed {
  // nice and taskset each exec the next command, so the pid we get is the pid of the process we measure,
  // and every thread it creates inherits both the priority and the core.
  // `nice -n` is relative to the harness's own niceness, which prepareLoadGenerator() may already have set.
  const niceAdjustment = BENCH_NICENESS - getPriority()
  const prefix = [
    ...(canRaisePriority && niceAdjustment !== 0 ? ['nice', '-n', String(niceAdjustment)] : []),
    ...(hasTaskset && options.core !== undefined ? ['taskset', '-c', String(options.core)] : [])
  ]
  const [command, args] = prefix.length > 0 ? [prefix[0]!, [...prefix.slice(1), options.command, ...options.args]] : [options.command, options.args]
  const logFile = join(options.logDir, `${options.name}.log`)
  const logFd = openSync(logFile, 'a')
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['ignore', logFd, logFd]
  })
  closeSync(logFd)
  if (child.pid === undefined) throw new Error(`could not start ${options.name} (${command})`)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const managed: Managed = { name: options.name, pid: child.pid, child, logFile, exited }
  running.add(managed)
  void exited.then(() => running.delete(managed))
  return managed
}

/** SIGTERM (lets a Node process with --cpu-prof write its profile), then SIGKILL if it hangs. */
export async function stopProcess (managed: Managed, graceMs = 5000): Promise<void> {
  if (managed.child.exitCode !== null || managed.child.signalCode !== null) return
  managed.child.kill('SIGTERM')
  const timer = setTimeout(() => managed.child.kill('SIGKILL'), graceMs)
  await managed.exited
  clearTimeout(timer)
}

export async function stopAll (): Promise<void> {
  await Promise.all([...running].map((managed) => stopProcess(managed)))
}

export function logTail (managed: Managed, maxChars = 2000): string {
  try {
    const text = readFileSync(managed.logFile, 'utf8')
    return text.slice(-maxChars)
  } catch {
    return ''
  }
}

export function httpStatus (url: string, headers: Record<string, string> = {}, timeoutMs = 1000): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { headers, timeout: timeoutMs }, (res) => {
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
    if (managed.child.exitCode !== null || managed.child.signalCode !== null) {
      throw new Error(`${managed.name} exited (code ${managed.child.exitCode}) before it was ready:\n${logTail(managed)}`)
    }
    lastStatus = await httpStatus(url)
    if (lastStatus === expectedStatus) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${managed.name} not ready at ${url} after ${timeoutMs} ms (last status ${lastStatus}):\n${logTail(managed)}`)
}

/**
 * Pins the harness itself (every thread: the load generator) to the load core, away from the proxy, and
 * raises the priority of its main thread (on Linux, niceness is per thread; that is the one sending load).
 */
let previousAutogroupNice: string | undefined

export function prepareLoadGenerator (): void {
  if (hasTaskset) spawnSync('taskset', ['-a', '-p', '-c', String(LOAD_CORE), String(process.pid)], { stdio: 'ignore' })
  if (canRaisePriority) {
    try {
      setPriority(BENCH_NICENESS)
    } catch {
      // Not permitted after all: run at normal priority.
    }
    // With autogroup scheduling (the default on desktop-style kernels), niceness only ranks processes
    // within one session; sessions share the CPU equally whatever their processes' niceness. Raising the
    // session's own autogroup niceness is what makes the priority count against other sessions' work.
    // Every process the harness starts stays in its session, so one write covers them all.
    try {
      if (readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1') {
        // The session outlives the harness (it is the caller's shell's): remember what to restore.
        previousAutogroupNice = /nice (-?\d+)/.exec(readFileSync('/proc/self/autogroup', 'utf8'))?.[1]
        writeFileSync('/proc/self/autogroup', String(BENCH_NICENESS))
      }
    } catch {
      // No autogroup support, or not permitted: niceness alone applies.
    }
  }
}

/** Gives the caller's session back its scheduling priority. */
export function restoreSessionPriority (): void {
  if (previousAutogroupNice === undefined) return
  try {
    writeFileSync('/proc/self/autogroup', previousAutogroupNice)
  } catch {
    // Nothing more to do: the session ends with its shell anyway.
  }
}
