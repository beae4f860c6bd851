// Just the part of autocannon's programmatic API the harness uses: the package ships no types and
// @types/autocannon is not installed (a shared lockfile is not worth changing for a dev-only tool).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  interface AutocannonRequest {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string
    setupRequest?: (req: AutocannonRequest, context: Record<string, unknown>) => AutocannonRequest
  }

  interface AutocannonOptions {
    url: string
    connections?: number
    pipelining?: number
    duration?: number
    amount?: number
    timeout?: number
    method?: string
    headers?: Record<string, string>
    body?: string
    requests?: AutocannonRequest[]
    bailout?: number
  }

  interface AutocannonResult {
    requests: { total: number; average: number }
    latency: { p50: number; p99: number }
    errors: number
    timeouts: number
    non2xx: number
    statusCodeStats?: Record<string, { count: number }>
    duration: number
    start: Date
    finish: Date
  }

  interface Instance extends EventEmitter {
    stop(): void
  }

  function autocannon (
    options: AutocannonOptions,
    callback: (err: Error | null, result: AutocannonResult) => void
  ): Instance

  export default autocannon
  export type { AutocannonOptions, AutocannonRequest, AutocannonResult, Instance }
}
