// The closed-loop load generator of the proxy scenarios: wrk when it is installed (or can be installed),
// else several autocannon worker processes (bench/clients/closed-loop-client.ts). Either way it runs on
// the load core, away from the proxy under test, and reports what the proxy answered.
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ClosedLoopJob } from '../clients/closed-loop-client.js'
import type { LoadResult } from './load.js'
import { logTail } from '../../support/processes.js'
import { startProcess } from './processes.js'
import { runWrk, type WrkRun } from './wrk.js'

const clientScript = fileURLToPath(new URL('../clients/closed-loop-client.ts', import.meta.url))

/** One window of load: the same description whether wrk or the autocannon workers drive it. */
export type LoadRun = WrkRun

export interface LoadGenerator {
  /** How the table describes it. */
  description: string
  run (load: LoadRun): Promise<LoadResult>
}

export function wrkGenerator (): LoadGenerator {
  return {
    description: 'wrk (one thread)',
    async run (load) {
      const result = await runWrk(load)
      return { ...result, requestsPerSecond: result.requests / result.seconds }
    }
  }
}

/** Splits `connections` over `workers` as evenly as possible (every worker gets at least one). */
export function splitConnections (connections: number, workers: number): number[] {
  const count = Math.max(1, Math.min(workers, connections))
  return Array.from({ length: count }, (_, i) => Math.floor(connections / count) + (i < connections % count ? 1 : 0))
}

let runs = 0

export function autocannonGenerator (workers: number): LoadGenerator {
  return {
    description: `autocannon, ${workers} worker processes`,
    async run (load) {
      const id = ++runs
      const shares = splitConnections(load.connections, workers)
      const perWorker = Math.ceil(load.tokens.length / shares.length)
      const results = await Promise.all(shares.map(async (connections, w) => {
        const jobFile = join(load.workDir, `closed-loop-${id}-${w}.job.json`)
        const resultFile = join(load.workDir, `closed-loop-${id}-${w}.result.json`)
        const job: ClosedLoopJob = { url: load.url, connections, durationSeconds: load.seconds, tokens: load.tokens, firstToken: w * perWorker }
        writeFileSync(jobFile, JSON.stringify(job))
        const managed = startProcess({ name: `closed-loop-${id}-${w}`, command: process.execPath, args: ['--import', 'tsx', clientScript, jobFile, resultFile], core: load.core, logDir: load.workDir })
        const killer = setTimeout(() => managed.child.kill('SIGKILL'), (load.seconds + 60) * 1000)
        const { code } = await managed.exited
        clearTimeout(killer)
        if (code !== 0) throw new Error(`autocannon worker exited with ${code}:\n${logTail(managed)}`)
        const result = JSON.parse(readFileSync(resultFile, 'utf8')) as LoadResult
        rmSync(jobFile, { force: true })
        rmSync(resultFile, { force: true })
        return result
      }))
      const seconds = Math.max(...results.map((r) => r.seconds))
      const requests = results.reduce((sum, r) => sum + r.requests, 0)
      return {
        requests,
        seconds,
        requestsPerSecond: requests / seconds,
        // Percentiles cannot be merged exactly from summaries: the worst worker's stand for the run.
        p50Ms: Math.max(...results.map((r) => r.p50Ms)),
        p99Ms: Math.max(...results.map((r) => r.p99Ms)),
        errors: results.reduce((sum, r) => sum + r.errors, 0)
      }
    }
  }
}
