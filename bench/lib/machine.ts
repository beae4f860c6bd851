// What the numbers were measured on, printed with every result (the issue asks for it, and numbers from
// a noisy shared 2-core VM mean little without it).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { hasTaskset } from '../../support/processes.js'
import { BENCH_NICENESS, canRaisePriority } from './processes.js'

export interface MachineInfo {
  cpus: number
  cpuModel: string
  node: string
  date: string
  commit: string
  pinning: string
}

export function describeMachine (): MachineInfo {
  let cpuModel = 'unknown'
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel
  } catch {
    // Not Linux: leave it unknown.
  }
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() || 'unknown'
  // The services are built from the working tree, which may be ahead of HEAD while someone works on them.
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'gateway', 'task-service'], { encoding: 'utf8' }).stdout?.trim()
  const commit = dirty ? `${head}, with uncommitted changes to the services` : head
  return {
    // Not availableParallelism(): the harness pins itself to one core, which would make it report 1.
    cpus: cpus().length,
    cpuModel,
    node: process.version,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    commit,
    pinning:
      (hasTaskset ? 'taskset: proxy on core 1, load generator and upstream on core 0' : 'no taskset: processes not pinned') +
      (canRaisePriority ? `; all at nice ${BENCH_NICENESS}` : '; normal priority')
  }
}
