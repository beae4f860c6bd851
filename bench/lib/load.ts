// Load drivers. Closed loop: autocannon's programmatic API, N connections as fast as the target answers.
// Open loop: a fixed request rate from node:http, because autocannon's rate limit sends each second's quota
// in a burst at the start of the second, which would measure queueing behind the burst rather than the
// latency the gateway adds at a steady 1,000 requests/s.
import autocannon from 'autocannon'
import { Agent, request } from 'node:http'
import { latencyPercentiles } from '../../support/stats.js'

export interface LoadResult {
  /** Responses received (any status). */
  requests: number
  seconds: number
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  /** Connection errors + timeouts + non-2xx responses: a proxy that answers 401 fast is not fast. */
  errors: number
  /** Responses per status code, to tell 401s from 429s or 502s when errors is not 0. */
  statusCounts?: Record<string, number>
}

export interface ClosedLoopOptions {
  url: string
  connections: number
  /** Either a duration in seconds or a fixed number of requests. */
  durationSeconds?: number
  amount?: number
  /** The bearer token for the i-th request (i counts from 0 across all connections). */
  tokenFor: (requestIndex: number) => string
}

export function runClosedLoop (options: ClosedLoopOptions): Promise<LoadResult> {
  const latenciesMs: number[] = []
  let requestIndex = 0
  const started = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        pipelining: 1,
        timeout: 10,
        ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.durationSeconds ?? 5 }),
        requests: [
          {
            method: 'GET',
            // Rebuilding the request per call costs the load generator, never the proxy, and keeps every
            // scenario's client identical (direct and HAProxy get the same headers as the gateway).
            setupRequest: (req) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${options.tokenFor(requestIndex++)}` } })
          }
        ]
      },
      (err, result) => {
        if (err) return reject(err)
        const seconds = Number(process.hrtime.bigint() - started) / 1e9
        const { p50, p99 } = latencyPercentiles(latenciesMs)
        const requests = latenciesMs.length
        resolve({
          requests,
          seconds,
          requestsPerSecond: requests / seconds,
          p50Ms: p50,
          p99Ms: p99,
          errors: result.errors + result.timeouts + result.non2xx,
          statusCounts: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [status, count]))
        })
      }
    )
    // autocannon's own histogram has 1 ms resolution; record the exact response times instead.
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => {
      latenciesMs.push(responseTimeMs)
    })
  })
}

export interface OpenLoopOptions {
  url: string
  ratePerSecond: number
  durationSeconds: number
  headersFor: (requestIndex: number) => Record<string, string>
  method?: string
  body?: (requestIndex: number) => string | undefined
  /** Requests sent one at a time before the schedule starts and not recorded: connections opened, code warm. */
  warmupRequests?: number
  /** A keep-alive agent to reuse across windows (left open); by default one per call, destroyed at the end. */
  agent?: Agent
  /** How long to wait for answers after the last request is sent (default 10 s); later ones are not counted. */
  drainMs?: number
}

export interface OpenLoopResult extends LoadResult {
  /** Every recorded response time, in the order the responses arrived. */
  latenciesMs: number[]
}

/**
 * Sends requests on a fixed schedule (checked every millisecond, catching up on whatever is due) and records
 * each response time from the moment it was sent. Bounded: stops scheduling at the deadline and waits at
 * most `drainMs` (10 s) for stragglers.
 */
export async function runOpenLoop (options: OpenLoopOptions): Promise<OpenLoopResult> {
  const agent = options.agent ?? new Agent({ keepAlive: true, maxSockets: 256 })
  const latenciesMs: number[] = []
  const statusCounts: Record<string, number> = {}
  let errors = 0
  let sent = 0
  let inFlight = 0
  const totalToSend = Math.round(options.ratePerSecond * options.durationSeconds)
  let recording = false

  const sendOne = (index: number, onDone?: () => void): void => {
    inFlight++
    const sentAt = performance.now()
    const body = options.body?.(index)
    const req = request(options.url, { agent, method: options.method ?? 'GET', headers: options.headersFor(index), timeout: 10_000 }, (res) => {
      res.resume()
      res.on('end', () => {
        if (recording) {
          latenciesMs.push(performance.now() - sentAt)
          if ((res.statusCode ?? 0) >= 300) errors++
          const status = String(res.statusCode ?? 0)
          statusCounts[status] = (statusCounts[status] ?? 0) + 1
        }
        inFlight--
        onDone?.()
      })
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => {
      if (recording) {
        errors++
        statusCounts.error = (statusCounts.error ?? 0) + 1
      }
      inFlight--
      onDone?.()
    })
    req.end(body)
  }

  for (let i = 0; i < (options.warmupRequests ?? 0); i++) await new Promise<void>((resolve) => { sendOne(i, resolve) })
  recording = true
  const started = performance.now()

  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(totalToSend, Math.floor(((performance.now() - started) / 1000) * options.ratePerSecond))
      while (sent < due) sendOne(sent++)
      if (sent >= totalToSend) {
        clearInterval(timer)
        resolve()
      }
    }, 1)
  })
  const drainDeadline = performance.now() + (options.drainMs ?? 10_000)
  while (inFlight > 0 && performance.now() < drainDeadline) await new Promise((resolve) => setTimeout(resolve, 5))
  const seconds = (performance.now() - started) / 1000
  if (options.agent === undefined) agent.destroy()
  const { p50, p99 } = latencyPercentiles(latenciesMs)
  return {
    requests: latenciesMs.length,
    seconds,
    requestsPerSecond: latenciesMs.length / seconds,
    p50Ms: p50,
    p99Ms: p99,
    errors: errors + inFlight,
    // A snapshot: responses that arrive after the drain deadline are not counted; those still out are.
    statusCounts: inFlight > 0 ? { ...statusCounts, unanswered: inFlight } : { ...statusCounts },
    latenciesMs
  }
}
