// The fixed-rate (open-loop) client as its own small process: `node --import tsx open-loop-client.ts
// <job.json> <result.json>`.
//
// - Apart from the harness, so that the harness's heap (autocannon's results, earlier rounds) and its
//   garbage collections never sit between a request and the clock that times it: a pause there would
//   count as latency "added" by whichever proxy happened to be measured.
// - One process for the whole fixed-rate phase, warm before anything is recorded.
// - Short windows, interleaved across targets (A B C D A B C D …) and pooled per target: on a shared VM
//   the latency tail comes in bursts (the host preempting a vCPU for milliseconds); fine interleaving
//   spreads those bursts evenly over the targets instead of letting one window catch them.
import { readFileSync, writeFileSync } from 'node:fs'
import { Agent } from 'node:http'
import { runOpenLoop, type LoadResult } from '../lib/load.js'
import { latencyPercentiles } from '../../support/stats.js'

export interface OpenLoopTarget {
  id: string
  url: string
  /** Bearer tokens, used round-robin (empty: no Authorization header). */
  tokens: string[]
}

export interface OpenLoopJob {
  ratePerSecond: number
  windowSeconds: number
  /** How many times each target gets a window. */
  passes: number
  /** Per target, requests sent one at a time before the first window, not recorded (connections, JIT). */
  warmupRequests: number
  /**
   * Then, per target, this long at the fixed rate, not recorded: the process under test settles into the
   * steady state the target is about (its optimizing compiler and garbage collector done with whatever
   * the phases before left them, e.g. the closed-loop burst of fresh tokens).
   */
  warmupSeconds: number
  targets: OpenLoopTarget[]
}

export interface OpenLoopTargetResult {
  id: string
  /** All windows of this target together: percentiles over every recorded response. */
  pooled: LoadResult
  /** Each window on its own, in order (to show the spread). */
  windows: LoadResult[]
}

async function run (job: OpenLoopJob): Promise<OpenLoopTargetResult[]> {
  const agents = new Map(job.targets.map((target) => [target.id, new Agent({ keepAlive: true, maxSockets: 256 })]))
  const headersFor = (target: OpenLoopTarget) => (i: number): Record<string, string> =>
    target.tokens.length === 0 ? {} : { authorization: `Bearer ${target.tokens[i % target.tokens.length]!}` }
  const latencies = new Map<string, number[]>(job.targets.map((target) => [target.id, []]))
  const windows = new Map<string, LoadResult[]>(job.targets.map((target) => [target.id, []]))
  for (const target of job.targets) {
    await runOpenLoop({ url: target.url, ratePerSecond: job.ratePerSecond, durationSeconds: job.warmupSeconds, headersFor: headersFor(target), warmupRequests: job.warmupRequests, agent: agents.get(target.id)! })
  }
  for (let pass = 0; pass < job.passes; pass++) {
    for (const target of job.targets) {
      const { latenciesMs, ...window } = await runOpenLoop({ url: target.url, ratePerSecond: job.ratePerSecond, durationSeconds: job.windowSeconds, headersFor: headersFor(target), agent: agents.get(target.id)! })
      for (const ms of latenciesMs) latencies.get(target.id)!.push(ms)
      windows.get(target.id)!.push(window)
      console.log(`pass ${pass + 1}/${job.passes} ${target.id}: p50 ${window.p50Ms.toFixed(3)} ms, p99 ${window.p99Ms.toFixed(3)} ms, errors ${window.errors}`)
    }
  }
  for (const agent of agents.values()) agent.destroy()
  return job.targets.map((target) => {
    const all = latencies.get(target.id)!
    const perWindow = windows.get(target.id)!
    const seconds = perWindow.reduce((sum, w) => sum + w.seconds, 0)
    const { p50, p99 } = latencyPercentiles(all)
    return {
      id: target.id,
      pooled: { requests: all.length, seconds, requestsPerSecond: all.length / seconds, p50Ms: p50, p99Ms: p99, errors: perWindow.reduce((sum, w) => sum + w.errors, 0) },
      windows: perWindow
    }
  })
}

const [jobFile, resultFile] = process.argv.slice(2)
if (jobFile === undefined || resultFile === undefined) {
  console.error('usage: open-loop-client.ts <job.json> <result.json>')
  process.exit(2)
}
const results = await run(JSON.parse(readFileSync(jobFile, 'utf8')) as OpenLoopJob)
writeFileSync(resultFile, JSON.stringify(results))
