// Where and at what priority the benchmark runs its processes (started by support/processes.ts, with their
// output in log files): the proxy under test on a core of its own, the load generator and the upstream on the
// other, everything reniced when permitted.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { setPriority } from 'node:os'
import { hasTaskset, startProcess as startAnyProcess, type Managed, type StartOptions } from '../../support/processes.js'

/** The core the proxy under test runs on, and the one shared by the load generator and the upstream. */
export const PROXY_CORE = 1
export const LOAD_CORE = 0

/**
 * Niceness for everything the benchmark runs. The development machines are shared with other work (test
 * suites, builds); a higher priority keeps that work from preempting the measured processes mid-request,
 * which otherwise shows up as tens of milliseconds of p99. Only root may raise priority: elsewhere
 * nothing is reniced and the run says so.
 */
export const BENCH_NICENESS = -10
export const canRaisePriority = spawnSync('nice', ['-n', String(BENCH_NICENESS), 'true'], { stdio: 'ignore' }).status === 0 && process.getuid?.() === 0
/** The niceness every process the benchmark starts gets (StartOptions.niceness). */
export const benchNiceness: number | undefined = canRaisePriority ? BENCH_NICENESS : undefined

/** support/processes.ts's startProcess, at the benchmark's niceness. */
export function startProcess (options: StartOptions): Managed {
  return startAnyProcess({ niceness: benchNiceness, ...options })
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
