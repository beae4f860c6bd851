// CPU time and resident memory of one process, read from /proc so that the same numbers are available for
// a Node gateway and for HAProxy alike (process.cpuUsage() would only work from inside Node).
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

/** Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat (almost always 100). */
export const CLOCK_TICKS_PER_SECOND = readClockTicks()

function readClockTicks (): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100
  } catch {
    return 100
  }
}

/** User + system CPU time of every thread of the process (GC and libuv threads included), in microseconds. */
export function processCpuMicros (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) is in parentheses and may contain spaces: split after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // After the name, field 3 (state) is index 0, so utime (field 14) is index 11 and stime (15) is 12.
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  return ((utime + stime) * 1e6) / CLOCK_TICKS_PER_SECOND
}

/** Current resident set size in bytes (VmRSS in /proc/<pid>/status). */
export function processRssBytes (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  return match ? Number(match[1]) * 1024 : 0
}

export interface ResourceWindow {
  cpuMicros: number
  peakRssBytes: number
}

/**
 * Measures one load window: CPU time consumed between start and stop, and the highest RSS seen by polling
 * every `intervalMs` (VmHWM would give the peak over the whole process life, not over this window).
 */
export function watchProcess (pid: number, intervalMs = 100): { stop(): ResourceWindow } {
  const cpuAtStart = processCpuMicros(pid)
  let peakRssBytes = processRssBytes(pid)
  const timer = setInterval(() => {
    try {
      peakRssBytes = Math.max(peakRssBytes, processRssBytes(pid))
    } catch {
      // The process died mid-run: the load result will show the errors; keep the last peak.
    }
  }, intervalMs)
  return {
    stop () {
      clearInterval(timer)
      peakRssBytes = Math.max(peakRssBytes, processRssBytes(pid))
      return { cpuMicros: processCpuMicros(pid) - cpuAtStart, peakRssBytes }
    }
  }
}

/** CPU time of each of `pids` that still exists (a process that has gone is left out). */
export function cpuOfPids (pids: number[]): Map<number, number> {
  const cpu = new Map<number, number>()
  for (const pid of pids) {
    try {
      cpu.set(pid, processCpuMicros(pid))
    } catch {
      // Exited between the listing and the read: nothing left to count.
    }
  }
  return cpu
}

/**
 * CPU used between two readings of a changing set of processes (database backends come and go): a process
 * present only at the end was born in the window and all its CPU counts; one gone by the end is lost.
 */
export function cpuDelta (before: Map<number, number>, after: Map<number, number>): number {
  let total = 0
  for (const [pid, cpu] of after) total += cpu - (before.get(pid) ?? 0)
  return total
}
