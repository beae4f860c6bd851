// A closed-loop driver for multi-step scenarios (create, then toggle what was created…): unlike
// autocannon it hands each response body back, so later steps can use the ids the service assigned.
// Bounded by a fixed request count.
import { Agent, request } from 'node:http'
import { latencyPercentiles } from '../../support/stats.js'
import type { LoadResult } from './load.js'

export interface PlannedRequest {
  method: string
  path: string
  headers: Record<string, string>
  body?: string
}

export interface WorkerLoadOptions {
  baseUrl: string
  concurrency: number
  total: number
  plan: (index: number) => PlannedRequest
  expectedStatus: number
  /** Called with each response body that had the expected status (only when given: bodies cost memory). */
  onBody?: (index: number, body: string) => void
}

export async function runWorkers (options: WorkerLoadOptions): Promise<LoadResult & { statuses: Record<number, number> }> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency })
  const latenciesMs: number[] = []
  const statuses: Record<number, number> = {}
  let errors = 0
  let next = 0

  const one = (index: number): Promise<void> =>
    new Promise((resolve) => {
      const planned = options.plan(index)
      const sentAt = performance.now()
      const req = request(`${options.baseUrl}${planned.path}`, { agent, method: planned.method, headers: planned.headers, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => {
          if (options.onBody) chunks.push(chunk)
        })
        res.on('end', () => {
          latenciesMs.push(performance.now() - sentAt)
          const status = res.statusCode ?? 0
          statuses[status] = (statuses[status] ?? 0) + 1
          if (status !== options.expectedStatus) errors++
          else options.onBody?.(index, Buffer.concat(chunks).toString('utf8'))
          resolve()
        })
      })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', () => {
        errors++
        resolve()
      })
      req.end(planned.body)
    })

  const started = performance.now()
  const worker = async (): Promise<void> => {
    while (next < options.total) await one(next++)
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  const seconds = (performance.now() - started) / 1000
  agent.destroy()
  const { p50, p99 } = latencyPercentiles(latenciesMs)
  return { requests: latenciesMs.length, seconds, requestsPerSecond: latenciesMs.length / seconds, p50Ms: p50, p99Ms: p99, errors, statuses }
}
