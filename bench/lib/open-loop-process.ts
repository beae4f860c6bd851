// Runs the fixed-rate phase in its own process (bench/clients/open-loop-client.ts), pinned to the load
// generator's core like the rest of the client side, and returns what it measured per target.
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { OpenLoopJob, OpenLoopTargetResult } from '../clients/open-loop-client.js'
import { logTail } from '../../support/processes.js'
import { startProcess } from './processes.js'

const clientScript = fileURLToPath(new URL('../clients/open-loop-client.ts', import.meta.url))

let runs = 0

export async function runOpenLoopProcess (job: OpenLoopJob, workDir: string, core: number | undefined): Promise<OpenLoopTargetResult[]> {
  const id = `open-loop-${++runs}`
  const jobFile = join(workDir, `${id}.job.json`)
  const resultFile = join(workDir, `${id}.result.json`)
  writeFileSync(jobFile, JSON.stringify(job))
  const managed = startProcess({ name: id, command: process.execPath, args: ['--import', 'tsx', clientScript, jobFile, resultFile], core, logDir: workDir })
  // Bounded like the client itself: every window with its drain (at most 10 s each), warm-up and start-up.
  const windows = job.passes * job.targets.length
  const limitMs = windows * (job.windowSeconds * 1000 + 10_000) + 60_000
  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([
    managed.exited.then((exit) => exit.code),
    new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), limitMs) })
  ])
  clearTimeout(timer)
  if (code !== 0) {
    managed.child.kill('SIGKILL')
    throw new Error(`the open-loop client ${code === 'timeout' ? `did not finish within ${limitMs} ms` : `exited with ${code}`}:\n${logTail(managed)}`)
  }
  const result = JSON.parse(readFileSync(resultFile, 'utf8')) as OpenLoopTargetResult[]
  rmSync(jobFile, { force: true })
  rmSync(resultFile, { force: true })
  return result
}
