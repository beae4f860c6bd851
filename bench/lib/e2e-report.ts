// The pure part of the end-to-end report: CPU per request of each process and the gateway's share of a
// whole request, as a Markdown table. No I/O, so bench/test/bench-lib.test.ts covers it.
import { formatNumber, markdownTable } from './table.js'

export interface E2eRow {
  database: string
  operation: string
  /** 'gateway' (the whole stack) or 'direct' (the task service alone, requests signed as the gateway would). */
  path: 'gateway' | 'direct'
  requests: number
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  errors: number
  /** CPU µs per request of each process; undefined when the process is not in the path or not measurable. */
  gatewayMicros: number | undefined
  taskServiceMicros: number
  postgresMicros: number | undefined
}

export function totalMicros (row: E2eRow): number {
  return (row.gatewayMicros ?? 0) + row.taskServiceMicros + (row.postgresMicros ?? 0)
}

/** The gateway's part of the whole request's CPU (NaN for direct rows). */
export function gatewayShare (row: E2eRow): number {
  const total = totalMicros(row)
  return row.gatewayMicros === undefined || total <= 0 ? Number.NaN : row.gatewayMicros / total
}

const micros = (value: number | undefined): string => (value === undefined ? '–' : formatNumber(value, 1))

export function renderE2eTable (rows: E2eRow[]): string {
  return markdownTable(
    ['database', 'operation', 'path', 'req/s', 'p50 ms', 'p99 ms', 'gateway µs/req', 'task service µs/req', 'PostgreSQL µs/req', 'total µs/req', 'gateway share', 'errors'],
    rows.map((row) => [
      row.database,
      row.operation,
      row.path === 'gateway' ? 'through the gateway' : 'task service directly',
      formatNumber(row.requestsPerSecond),
      formatNumber(row.p50Ms, 2),
      formatNumber(row.p99Ms, 2),
      micros(row.gatewayMicros),
      micros(row.taskServiceMicros),
      micros(row.postgresMicros),
      formatNumber(totalMicros(row), 1),
      Number.isFinite(gatewayShare(row)) ? `${formatNumber(gatewayShare(row) * 100)} %` : '–',
      row.errors
    ]),
    [false, false, false, true, true, true, true, true, true, true, true, true]
  )
}
