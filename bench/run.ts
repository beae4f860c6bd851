// Entry point of `npm run bench`: parses the options, pins the load generator, creates a scratch
// directory for configs, logs and profiles, runs the chosen benchmark, and always stops every process
// it started and removes the scratch directory, whatever happened.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseBenchArgs } from './lib/args.js'
import { prepareLoadGenerator, restoreSessionPriority } from './lib/processes.js'
import { stopAll } from '../support/processes.js'
import { runProxyBench } from './proxy-bench.js'
import { runE2eBench } from './e2e-bench.js'
import { runCostsBench } from './costs-bench.js'

async function main (): Promise<number> {
  const options = parseBenchArgs(process.argv.slice(2))
  prepareLoadGenerator()
  const workDir = mkdtempSync(join(tmpdir(), 'bench-'))
  const interrupt = (): void => {
    void stopAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', interrupt)
  process.once('SIGTERM', interrupt)
  // Every phase is bounded on its own; this is the backstop that makes the whole run stop by itself.
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${options.timeLimitMinutes} minutes (--time-limit): stopping every process and giving up`)
    void stopAll().finally(() => process.exit(124))
  }, options.timeLimitMinutes * 60_000)
  watchdog.unref()
  try {
    if (options.mode === 'e2e') return await runE2eBench(options, workDir)
    if (options.mode === 'costs') return await runCostsBench(options, workDir)
    return await runProxyBench(options, workDir)
  } finally {
    await stopAll()
    restoreSessionPriority()
    if (process.env.BENCH_KEEP_WORKDIR) console.log(`kept ${workDir}`)
    else rmSync(workDir, { recursive: true, force: true })
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error)
    void stopAll().finally(() => process.exit(1))
  }
)
