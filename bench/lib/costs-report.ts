// The pure part of `npm run bench -- --costs`: which gateway variants the run compares (each one the
// deployed gateway with features switched off through its own production configuration), and the
// tables of what each switch saves. No I/O, so bench/test/bench-lib.test.ts covers it.
import { ratio, saturationCell, type ProxyRow } from './proxy-report.js'
import { formatNumber, formatRatio, markdownTable } from './table.js'
import type { TokenAlgorithm } from './tokens.js'

export interface CostVariant {
  id: string
  label: string
  /** The gateway's own settings that switch the feature off (gateway/src/config.ts, limits-config.ts). */
  env: Record<string, string>
}

/** The gateway exactly as the proxy benchmark deploys it (bench/lib/gateway.ts): nothing switched off. */
export const DEPLOYED: CostVariant = { id: 'deployed', label: 'gateway as deployed', env: {} }

/**
 * One feature off per variant. Only settings whose 0 (or level) makes the gateway skip the feature's
 * per-request work; what is left on in each is what cannot be switched off.
 */
export const SINGLE_FEATURE_VARIANTS: readonly CostVariant[] = [
  // The access line (access-log.ts) is an info line: at warn pino neither serialises nor writes it (its
  // fields are still gathered, and the request metrics still counted at the same call).
  { id: 'access-log-off', label: 'access log off', env: { LOG_LEVEL: 'warn' } },
  // No Prometheus registry and no metrics hook (plugins/observability.ts).
  { id: 'metrics-off', label: 'metrics off', env: { METRICS_PORT: '0' } },
  // Both at 0: the rate-limit plugin registers its no-op limits (plugins/rate-limit.ts); one of them
  // alone would leave the other's counting, and the per-address limiter's blocked-address check.
  { id: 'rate-limits-off', label: 'rate limits off (per user and per address)', env: { RATE_LIMIT_USER_MAX: '0', RATE_LIMIT_IP_MAX: '0' } },
  // acquireUserSlot returns at once: no in-flight count, no release listener (plugins/concurrency.ts).
  { id: 'in-flight-cap-off', label: 'per-user in-flight cap off', env: { MAX_CONCURRENT_REQUESTS_PER_USER: '0' } },
  // No per-address connection count, and no server-wide maxConnections (plugins/slow-clients.ts). Both are
  // paid per connection, not per request: with keep-alive this variant should cost next to nothing.
  { id: 'connection-caps-off', label: 'connection caps off (total and per address)', env: { SERVER_MAX_CONNECTIONS: '0', SERVER_MAX_CONNECTIONS_PER_ADDRESS: '0' } },
  // All three thresholds at 0: @fastify/under-pressure is not registered, so neither its onRequest hook
  // nor its sampling timer runs (plugins/load-shedding.ts).
  {
    id: 'load-shedding-off',
    label: 'load shedding off',
    env: { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', LOAD_SHED_MAX_EVENT_LOOP_UTILIZATION: '0', LOAD_SHED_MAX_HEAP_BYTES: '0' }
  }
]

/**
 * Everything above off at once: what is left is the gateway's fixed core (authentication, the header
 * rules, the signed identity assertion, forwarding, request ids, error handling).
 */
export const FIXED_CORE: CostVariant = {
  id: 'fixed-core',
  label: 'fixed core (all of the above off)',
  env: Object.assign({}, ...SINGLE_FEATURE_VARIANTS.map((variant) => variant.env)) as Record<string, string>
}

export const COST_VARIANTS: readonly CostVariant[] = [DEPLOYED, ...SINGLE_FEATURE_VARIANTS, FIXED_CORE]

export interface CostLoad {
  id: string
  label: string
  alg: TokenAlgorithm
}

/** Repeated tokens only: the same user per connection, as logged-in browsers send them. */
export const COST_LOADS: readonly CostLoad[] = [
  { id: 'hs256', label: 'HS256, repeated tokens', alg: 'HS256' },
  // The verification cache answers: the signature check is out of the way, the features are not.
  { id: 'eddsa-repeated', label: 'EdDSA (JWKS), repeated tokens', alg: 'EdDSA' }
]

/** The id of the scenario (and of its row) that runs `load` against `variant`'s gateway process. */
export function costScenarioId (variant: CostVariant, load: CostLoad): string {
  return `${variant.id}/${load.id}`
}

/** How the table names a variant's switches: `LOG_LEVEL=warn`, or `–` for the deployed gateway. */
export function describeSwitches (variant: CostVariant): string {
  if (variant.id === FIXED_CORE.id) return 'all of the above'
  const switches = Object.entries(variant.env).map(([name, value]) => `${name}=${value}`)
  return switches.length > 0 ? switches.join(', ') : '–'
}

export interface VariantRow {
  variant: CostVariant
  row: ProxyRow
}

/** What switching the variant's features off saved per request against the deployed gateway (µs). */
export function savedMicros (row: ProxyRow, deployed: ProxyRow | undefined): number {
  if (deployed === undefined) return Number.NaN
  return deployed.cpuMicrosPerRequest - row.cpuMicrosPerRequest
}

/**
 * One load's table: each variant's CPU per request, what it saves against the deployed gateway (µs and
 * share), its ratio to the bare Node proxy floor, and the floor itself, whose "saved" is the whole gap.
 */
export function renderCostsTable (rows: VariantRow[], floor: ProxyRow | undefined): string {
  const deployed = rows.find((entry) => entry.variant.id === DEPLOYED.id)?.row
  const line = (label: string, switches: string, row: ProxyRow, isDeployed: boolean): string[] => {
    const saved = isDeployed ? Number.NaN : savedMicros(row, deployed)
    return [
      label,
      switches,
      formatNumber(row.cpuMicrosPerRequest, 1),
      formatNumber(saved, 1),
      Number.isFinite(saved) ? `${formatNumber(100 * ratio(saved, deployed?.cpuMicrosPerRequest), 1)} %` : '–',
      formatRatio(ratio(row.cpuMicrosPerRequest, floor?.cpuMicrosPerRequest)),
      saturationCell(row),
      String(row.errors)
    ]
  }
  const body = rows.map(({ variant, row }) => line(variant.id === DEPLOYED.id ? `**${variant.label}**` : variant.label, describeSwitches(variant), row, variant.id === DEPLOYED.id))
  if (floor !== undefined) body.push(line(floor.label, '(not the gateway)', floor, false))
  return markdownTable(
    ['variant', 'switched off by', 'CPU µs / request', 'saved vs deployed, µs', 'saved vs deployed, %', 'vs Node floor', 'core use', 'errors'],
    body,
    [false, false, true, true, true, true, true, true]
  )
}

export interface CostSummary {
  /** The deployed gateway's CPU per request over the floor's (µs): the gap the table explains. */
  gapToFloorMicros: number
  /** The single-feature variants' savings added up (µs). */
  sumOfSingleSavingsMicros: number
  /** What switching everything off at once saved (µs). */
  fixedCoreSavingMicros: number
  /** The fixed core's CPU per request over the floor's (µs): what no switch removes. */
  fixedCoreOverFloorMicros: number
}

export function summarizeCosts (rows: VariantRow[], floor: ProxyRow | undefined): CostSummary {
  const byId = (id: string): ProxyRow | undefined => rows.find((entry) => entry.variant.id === id)?.row
  const deployed = byId(DEPLOYED.id)
  const fixedCore = byId(FIXED_CORE.id)
  const singles = SINGLE_FEATURE_VARIANTS.map((variant) => byId(variant.id))
  const over = (row: ProxyRow | undefined): number =>
    row === undefined || floor === undefined ? Number.NaN : row.cpuMicrosPerRequest - floor.cpuMicrosPerRequest
  return {
    gapToFloorMicros: over(deployed),
    // NaN when any single variant is missing: a partial sum would pass for the whole.
    sumOfSingleSavingsMicros: singles.reduce((sum: number, row) => sum + (row === undefined ? Number.NaN : savedMicros(row, deployed)), 0),
    fixedCoreSavingMicros: fixedCore === undefined ? Number.NaN : savedMicros(fixedCore, deployed),
    fixedCoreOverFloorMicros: over(fixedCore)
  }
}

/** The sentence under a load's table: the gap, the switches' share of it, and what the fixed core keeps. */
export function renderCostSummary (summary: CostSummary): string {
  const µs = (value: number): string => `${formatNumber(value, 1)} µs`
  return (
    `Gap from the floor to the deployed gateway: ${µs(summary.gapToFloorMicros)}. ` +
    `The single switches save ${µs(summary.sumOfSingleSavingsMicros)} added up, all of them at once ${µs(summary.fixedCoreSavingMicros)} ` +
    '(not strictly additive: with one feature gone the others run in a different program, for the garbage collector and the JIT alike, and each row has its own noise); ' +
    `the fixed core stays ${µs(summary.fixedCoreOverFloorMicros)} above the floor.`
  )
}
