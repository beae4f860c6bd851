// One process, same run: ns per observation of prom-client's Histogram.observe(labels, value) against
// observability's PositionalHistogram.observe(value, ...labelValues), the shape of http_request_duration_seconds
// (3 labels, the gateway's 14 buckets) over 48 series cycled through, with the label object / status string made
// per call as the callers make them. Rounds alternate A/B; best and median of ROUNDS per side. Also checks that
// both expose the same text afterwards.
//   npm run bench:histogram        (ROUNDS=5 OBSERVATIONS=5000000)
import { Histogram, Registry } from 'prom-client'
import { PositionalHistogram } from 'observability'
import { HTTP_BUCKETS } from '../gateway/src/metrics.js'
import { median } from '../support/stats.js'

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const OBSERVATIONS = Number(process.env.OBSERVATIONS ?? 5_000_000)
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || !Number.isInteger(OBSERVATIONS) || OBSERVATIONS < 1) {
  console.error('ROUNDS and OBSERVATIONS take positive whole numbers')
  process.exit(2)
}

const METHODS = ['GET', 'POST', 'PATCH', 'DELETE']
const ROUTES = ['/api/tasks', '/api/tasks/:id', '/api/tasks/:id/complete', 'unmatched']
const STATUSES = [200, 201, 404]
/** Durations spread over the buckets (and past the last), fixed so both sides see the same sequence. */
const VALUES = Float64Array.from({ length: 1024 }, (_, i) => 0.0001 * 1.013 ** i)

const options = { name: 'http_request_duration_seconds', help: 'h', labelNames: ['method', 'route', 'status_code'], buckets: HTTP_BUCKETS }
const promRegistry = new Registry()
const positionalRegistry = new Registry()
const prom = new Histogram({ ...options, registers: [promRegistry] })
const positional = new PositionalHistogram({ ...options, registers: [positionalRegistry] })

function runProm (n: number): void {
  for (let i = 0; i < n; i++) {
    const labels = { method: METHODS[i & 3], route: ROUTES[(i >> 2) & 3], status_code: String(STATUSES[i % 3]) }
    prom.observe(labels, VALUES[i & 1023] as number)
  }
}

function runPositional (n: number): void {
  for (let i = 0; i < n; i++) {
    positional.observe(VALUES[i & 1023] as number, METHODS[i & 3] as string, ROUTES[(i >> 2) & 3] as string, String(STATUSES[i % 3]))
  }
}

function nsPerObservation (run: (n: number) => void): number {
  const start = process.hrtime.bigint()
  run(OBSERVATIONS)
  return Number(process.hrtime.bigint() - start) / OBSERVATIONS
}

runProm(200_000)
runPositional(200_000)
const results = { prom: [] as number[], positional: [] as number[] }
for (let r = 0; r < ROUNDS; r++) {
  // Each round starts with the other side, so neither always runs first.
  if (r % 2 === 0) results.prom.push(nsPerObservation(runProm))
  results.positional.push(nsPerObservation(runPositional))
  if (r % 2 === 1) results.prom.push(nsPerObservation(runProm))
}
const sameText = (await promRegistry.metrics()) === (await positionalRegistry.metrics())
for (const [side, ns] of Object.entries(results)) {
  console.log(`${side.padEnd(10)} best ${Math.min(...ns).toFixed(1)} ns  median ${median(ns).toFixed(1)} ns per observation`)
}
console.log(`exposition text identical: ${sameText}`)
if (!sameText) process.exitCode = 1
