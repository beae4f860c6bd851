// One autocannon worker as its own process: `node --import tsx closed-loop-client.ts <job.json> <result.json>`.
// The fallback load generator when wrk is missing: several of these side by side (bench/lib/load-generator.ts)
// drive a proxy harder than autocannon inside the harness process could.
import { readFileSync, writeFileSync } from 'node:fs'
import { runClosedLoop } from '../lib/load.js'

export interface ClosedLoopJob {
  url: string
  connections: number
  durationSeconds: number
  tokens: string[]
  /** Where this worker starts in the token list, so workers do not send the same fresh token twice. */
  firstToken: number
}

const [jobFile, resultFile] = process.argv.slice(2)
if (jobFile === undefined || resultFile === undefined) {
  console.error('usage: closed-loop-client.ts <job.json> <result.json>')
  process.exit(2)
}
const job = JSON.parse(readFileSync(jobFile, 'utf8')) as ClosedLoopJob
const result = await runClosedLoop({
  url: job.url,
  connections: job.connections,
  durationSeconds: job.durationSeconds,
  tokenFor: (i) => job.tokens[(job.firstToken + i) % job.tokens.length]!
})
writeFileSync(resultFile, JSON.stringify(result))
