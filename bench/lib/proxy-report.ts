// The pure part of the proxy benchmark's report: summarising rounds, saturation, ratios against the
// references, the targets and the Markdown tables. No I/O, so bench/test/bench-lib.test.ts covers it.
import { median } from '../../support/stats.js'
import { formatNumber, formatRatio, markdownTable } from './table.js'

/** A row whose proxy used less than this share of one core during its window did not saturate it. */
export const SATURATION_THRESHOLD = 0.9

/** The issue's targets, as ratios within one run. */
export const TARGETS = {
  /** Gateway HS256 CPU per request ≤ this × the bare Node proxy floor's. */
  hs256VsFloor: 1.15,
  /** Gateway repeated-EdDSA CPU per request ≤ this × HAProxy ES256's. */
  eddsaRepeatedVsHaproxyEs256: 0.75,
  /** p99 the gateway adds at a fixed 1,000 requests/s, over the same request sent to the upstream directly. */
  addedP99Ms: 1,
  peakRssMb: 150
}

/** Share of one core a process used: CPU time over wall time. */
export function coreUse (cpuMicros: number, seconds: number): number {
  return seconds > 0 ? cpuMicros / (seconds * 1e6) : Number.NaN
}

export function isSaturated (use: number, threshold = SATURATION_THRESHOLD): boolean {
  return Number.isFinite(use) && use >= threshold
}

/** a / b, NaN when either is missing or b is not positive (a ratio against nothing is no ratio). */
export function ratio (a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return Number.NaN
  return a / b
}

export interface RoundSample {
  requests: number
  seconds: number
  cpuMicros: number
  p99Ms: number
  peakRssBytes: number
  errors: number
}

export interface ProxyRow {
  id: string
  label: string
  gateway: boolean
  rounds: number
  cpuMicrosPerRequest: number
  requestsPerSecond: number
  /** Median share of one core the measured process used. */
  coreUse: number
  /** Lowest share of any round: one unsaturated round is worth seeing. */
  minCoreUse: number
  saturated: boolean
  p99Ms: number
  peakRssBytes: number
  errors: number
}

export function summarizeRounds (id: string, label: string, gateway: boolean, samples: RoundSample[]): ProxyRow {
  const uses = samples.map((s) => coreUse(s.cpuMicros, s.seconds))
  const use = median(uses)
  return {
    id,
    label,
    gateway,
    rounds: samples.length,
    cpuMicrosPerRequest: median(samples.map((s) => (s.requests > 0 ? s.cpuMicros / s.requests : Number.NaN))),
    requestsPerSecond: median(samples.map((s) => s.requests / s.seconds)),
    coreUse: use,
    minCoreUse: Math.min(...uses),
    saturated: isSaturated(use),
    p99Ms: median(samples.map((s) => s.p99Ms)),
    peakRssBytes: Math.max(0, ...samples.map((s) => s.peakRssBytes)),
    // Summed, not medianed: one failed request in any round is worth seeing.
    errors: samples.reduce((sum, s) => sum + s.errors, 0)
  }
}

export interface References {
  haproxyHs256?: ProxyRow
  haproxyEs256?: ProxyRow
  floor?: ProxyRow
}

export function referencesOf (rows: ProxyRow[]): References {
  const byId = (id: string): ProxyRow | undefined => rows.find((row) => row.id === id)
  const refs: References = {}
  const hs = byId('haproxy-hs256')
  const es = byId('haproxy-es256')
  const floor = byId('node-floor-proxy')
  if (hs) refs.haproxyHs256 = hs
  if (es) refs.haproxyEs256 = es
  if (floor) refs.floor = floor
  return refs
}

export function saturationCell (row: ProxyRow): string {
  const percent = `${formatNumber(row.coreUse * 100)} %`
  return row.saturated ? percent : `${percent} ⚠ not saturated`
}

export function renderProxyTable (rows: ProxyRow[]): string {
  const refs = referencesOf(rows)
  return markdownTable(
    ['proxy', 'CPU µs / request', 'vs HAProxy HS256', 'vs Node floor', 'core use', 'req/s', 'p99 ms', 'peak RSS MB', 'errors'],
    rows.map((row) => [
      row.gateway ? `**${row.label}**` : row.label,
      formatNumber(row.cpuMicrosPerRequest, 1),
      formatRatio(ratio(row.cpuMicrosPerRequest, refs.haproxyHs256?.cpuMicrosPerRequest)),
      formatRatio(ratio(row.cpuMicrosPerRequest, refs.floor?.cpuMicrosPerRequest)),
      saturationCell(row),
      formatNumber(row.requestsPerSecond),
      formatNumber(row.p99Ms, 2),
      formatNumber(row.peakRssBytes / 2 ** 20),
      row.errors
    ]),
    [false, true, true, true, true, true, true, true, true]
  )
}

export interface FixedRateRow {
  id: string
  label: string
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  errors: number
}

export function renderFixedRateTable (rows: FixedRateRow[]): string {
  const direct = rows.find((row) => row.id === 'direct')
  const floor = rows.find((row) => row.id === 'node-floor-proxy')
  const added = (row: FixedRateRow, base: FixedRateRow | undefined): string =>
    base === undefined || base === row ? '–' : formatNumber(row.p99Ms - base.p99Ms, 3)
  return markdownTable(
    ['target', 'achieved req/s', 'p50 ms', 'p99 ms', 'p99 added vs direct, ms', 'p99 vs Node floor, ms', 'errors'],
    rows.map((row) => [
      row.label,
      formatNumber(row.requestsPerSecond),
      formatNumber(row.p50Ms, 3),
      formatNumber(row.p99Ms, 3),
      added(row, direct),
      added(row, floor),
      row.errors
    ]),
    [false, true, true, true, true, true, true]
  )
}

export interface TargetCheck {
  target: string
  goal: string
  measured: string
  /** pass / fail, with a warning when a row it rests on did not saturate its core. */
  verdict: string
}

function verdict (ok: boolean, rows: ProxyRow[]): string {
  const unsaturated = rows.filter((row) => !row.saturated).map((row) => row.label)
  return `${ok ? 'pass' : 'FAIL'}${unsaturated.length > 0 ? ` (⚠ not saturated: ${unsaturated.join(', ')})` : ''}`
}

/** The targets that this run measured, each as measured value, goal and verdict. */
export function checkTargets (rows: ProxyRow[], fixedRows: FixedRateRow[], ratePerSecond = 1000): TargetCheck[] {
  const refs = referencesOf(rows)
  const checks: TargetCheck[] = []
  const hs = rows.find((row) => row.id === 'gateway-hs256')
  const edRepeated = rows.find((row) => row.id === 'gateway-eddsa-repeated')
  if (hs && refs.floor) {
    const value = ratio(hs.cpuMicrosPerRequest, refs.floor.cpuMicrosPerRequest)
    checks.push({ target: 'gateway HS256 CPU / request vs the bare Node proxy floor', goal: `≤ ${formatRatio(TARGETS.hs256VsFloor)}`, measured: formatRatio(value), verdict: verdict(value <= TARGETS.hs256VsFloor, [hs, refs.floor]) })
  }
  if (edRepeated && refs.haproxyEs256) {
    const value = ratio(edRepeated.cpuMicrosPerRequest, refs.haproxyEs256.cpuMicrosPerRequest)
    checks.push({ target: 'gateway repeated-EdDSA CPU / request vs HAProxy ES256', goal: `≤ ${formatRatio(TARGETS.eddsaRepeatedVsHaproxyEs256)}`, measured: formatRatio(value), verdict: verdict(value <= TARGETS.eddsaRepeatedVsHaproxyEs256, [edRepeated, refs.haproxyEs256]) })
  }
  const direct = fixedRows.find((row) => row.id === 'direct')
  for (const row of fixedRows.filter((r) => r.id.startsWith('gateway'))) {
    if (!direct) break
    const added = row.p99Ms - direct.p99Ms
    checks.push({ target: `p99 added at ${formatNumber(ratePerSecond)} req/s, ${row.label}`, goal: `≤ ${TARGETS.addedP99Ms} ms`, measured: `${formatNumber(added, 3)} ms`, verdict: verdict(added <= TARGETS.addedP99Ms, []) })
  }
  const gatewayRows = rows.filter((row) => row.gateway)
  if (gatewayRows.length > 0) {
    const peakMb = Math.max(...gatewayRows.map((row) => row.peakRssBytes)) / 2 ** 20
    checks.push({ target: 'gateway peak RSS under load', goal: `≤ ${TARGETS.peakRssMb} MB`, measured: `${formatNumber(peakMb)} MB`, verdict: verdict(peakMb <= TARGETS.peakRssMb, []) })
  }
  return checks
}

export function renderTargets (checks: TargetCheck[]): string {
  return markdownTable(['target', 'goal', 'measured', 'verdict'], checks.map((c) => [c.target, c.goal, c.measured, c.verdict]))
}
