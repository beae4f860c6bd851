// `npm run bench`: the proxy benchmark, measured the way a skeptic would.
// - Every proxy is driven to saturation: wrk (or, without it, several autocannon worker processes) with
//   enough connections, pinned to the load core together with the upstream, the proxy alone on the other
//   core. The figure is the proxy process's CPU time per request answered; a row whose proxy used less
//   than 90 % of its core is flagged, since an idle proxy spends more CPU per request.
// - References in the same run: nginx as a plain proxy, HAProxy jwt_verify HS256 and ES256, the Node http
//   hello world and the bare Node proxy floor (bench/servers/node-floor-proxy.ts), both run as plain `node`
//   (bench/lib/upstream.ts); each gateway row is shown against HAProxy HS256 and against the floor.
// - Interleaved rounds (A B C … A B C …), medians; then p99 at a fixed 1,000 requests/s from an
//   open-loop client, and the gateway's peak RSS.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BenchOptions } from './lib/args.js'
import { hotSpots, readProfiles, type HotSpot, type PackageShare } from './lib/cpu-profile.js'
import { benchGatewayOptions, prepareGatewayBuild, startGateway, type GatewayOptions } from './lib/gateway.js'
import { haproxyVersion, isSupportedHaproxy, startHaproxy } from './lib/haproxy.js'
import type { LoadGenerator } from './lib/load-generator.js'
import { describeMachine } from './lib/machine.js'
import { startNginx } from './lib/nginx.js'
import { runOpenLoopProcess } from './lib/open-loop-process.js'
import { LOAD_CORE, PROXY_CORE } from './lib/processes.js'
import { stopProcess } from '../support/processes.js'
import {
  checkTargets,
  renderFixedRateTable,
  renderProxyTable,
  renderTargets,
  type FixedRateRow
} from './lib/proxy-report.js'
import { publishBenchResult } from './lib/report.js'
import {
  chooseLoadGenerator,
  CPU_COLUMNS_NOTE,
  describeRun,
  gatewayScenario,
  NO_GATEWAY_NOTE,
  runnableScenarios,
  runSaturatedRounds,
  startBenchUpstream,
  startFloorScenario,
  TokenPools,
  type Scenario
} from './lib/scenarios.js'
import { formatNumber, markdownTable } from './lib/table.js'
import { gatewayAuth, startKeyServer } from './lib/tokens.js'
import { startUpstream } from './lib/upstream.js'

/** The fixed-rate phase's targets: the upstream alone, the floor, HAProxy and the gateway's cached paths. */
const FIXED_RATE_SCENARIOS = ['direct', 'node-floor-proxy', 'haproxy-hs256', 'gateway-hs256', 'gateway-eddsa-repeated']
/** Requests the fixed-rate client sends one by one to each target before the first window (not recorded). */
const OPEN_LOOP_WARMUP_REQUESTS = 500
/** Then seconds at the fixed rate per target, not recorded: the steady state at 1,000 requests/s is measured. */
const OPEN_LOOP_WARMUP_SECONDS = 3
/** Length of one fixed-rate window; each scenario gets rounds × fixedRateSeconds of them in all. */
const FIXED_RATE_WINDOW_SECONDS = 1

function fixedRateWindows (options: BenchOptions): number {
  return Math.max(1, Math.round((options.rounds * options.fixedRateSeconds) / FIXED_RATE_WINDOW_SECONDS))
}

export async function runProxyBench (options: BenchOptions, workDir: string): Promise<number> {
  const machine = describeMachine()
  const notes: string[] = []
  console.log(`machine: ${machine.cpus} CPUs, ${machine.cpuModel}, Node ${machine.node}; ${machine.pinning}`)

  const generator = chooseLoadGenerator(options, notes)

  const { jwks, keys } = await startKeyServer()

  const upstreamRun = await startBenchUpstream(options, workDir, notes)
  const upstream = upstreamRun.target
  const nginx = upstreamRun.nginx
  const upstreamPort = Number(new URL(upstream.baseUrl).port)
  const upstreamKind = upstreamRun.kind
  const direct: Scenario = { id: 'direct', label: `direct to the upstream (${upstreamKind}, no proxy)`, target: upstream, measured: upstream.managed, path: '/tasks', alg: 'HS256', fresh: false, checksIdentity: false, gateway: false }

  const scenarios: Scenario[] = []
  if (nginx !== undefined) {
    const proxy = await startNginx('nginx-proxy', { kind: 'proxy', upstreamPort }, workDir, PROXY_CORE)
    scenarios.push({ id: 'nginx-proxy', label: `nginx ${nginx}, plain proxy, no auth`, target: proxy, measured: proxy.managed, path: '/tasks', alg: 'HS256', fresh: false, checksIdentity: false, gateway: false })
  }
  const version = haproxyVersion()
  if (isSupportedHaproxy(version)) {
    const pemPath = join(workDir, 'es256-public.pem')
    writeFileSync(pemPath, keys.es256PublicPem)
    const hs = await startHaproxy('haproxy-hs256', { alg: 'HS256', key: keys.hmacSecret, issuer: keys.issuer, upstreamPort }, workDir)
    scenarios.push({ id: 'haproxy-hs256', label: `HAProxy ${version} jwt_verify HS256`, target: hs, measured: hs.managed, path: '/api/tasks', alg: 'HS256', fresh: false, checksIdentity: true, gateway: false })
    const es = await startHaproxy('haproxy-es256', { alg: 'ES256', key: pemPath, issuer: keys.issuer, upstreamPort }, workDir)
    scenarios.push({ id: 'haproxy-es256', label: `HAProxy ${version} jwt_verify ES256`, target: es, measured: es.managed, path: '/api/tasks', alg: 'ES256', fresh: false, checksIdentity: true, gateway: false })
  } else {
    notes.push(version ? `HAProxy ${version} is older than 2.6: reference skipped.` : 'HAProxy is not installed: reference skipped (Debian: `apt-get install haproxy`).')
  }
  const hello = await startUpstream('node-hello', workDir, PROXY_CORE)
  scenarios.push({ id: 'node-hello', label: 'Node http hello world (answers itself)', target: hello, measured: hello.managed, path: '/tasks', alg: 'HS256', fresh: false, checksIdentity: false, gateway: false })
  scenarios.push(await startFloorScenario(upstream, keys, workDir))

  const gatewayBase = benchGatewayOptions(options, upstream.baseUrl, gatewayAuth(keys, jwks.url), workDir)
  if (prepareGatewayBuild(options)) {
    const gateway = await startGateway({ ...gatewayBase, name: 'gateway' })
    scenarios.push(
      gatewayScenario('gateway-hs256', 'gateway HS256', gateway, 'HS256'),
      gatewayScenario('gateway-eddsa-repeated', 'gateway EdDSA (JWKS), repeated tokens', gateway, 'EdDSA'),
      gatewayScenario('gateway-eddsa-fresh', 'gateway EdDSA (JWKS), fresh token per request', gateway, 'EdDSA', { fresh: true })
    )
  } else {
    notes.push(NO_GATEWAY_NOTE)
  }

  console.log('minting tokens…')
  const pools = await TokenPools.mint(keys, options, ['HS256', 'EdDSA', 'ES256'])

  // Check each target does the real job before timing it: 200, and the upstream saw the token's sub.
  const runnable = await runnableScenarios([direct, ...scenarios], pools, notes)
  for (const note of notes) console.log(`note: ${note}`)
  const saturating = runnable.filter((s) => s !== direct)

  if (options.profileOnly) {
    if (!runnable.some((s) => s.gateway)) throw new Error('--profile-only: the gateway is not runnable (see the notes above)')
    const profiles = await profileGateway(options, generator, gatewayBase, pools, workDir)
    await jwks.close()
    console.log(`\n${renderProfiles(profiles).join('\n')}\n`)
    return 0
  }

  const saturated = await runSaturatedRounds(generator, saturating, pools, options, workDir)
  notes.push(...saturated.notes)
  const rows = saturated.rows

  // Fixed rate: the latency a proxy adds when it is not saturated. One client process, short windows
  // interleaved across the scenarios, samples pooled per scenario (bench/clients/open-loop-client.ts).
  const fixedScenarios = runnable.filter((s) => FIXED_RATE_SCENARIOS.includes(s.id))
  const fixedResults = fixedScenarios.length === 0
    ? []
    : await runOpenLoopProcess({
      ratePerSecond: options.fixedRatePerSecond,
      windowSeconds: FIXED_RATE_WINDOW_SECONDS,
      passes: fixedRateWindows(options),
      warmupRequests: OPEN_LOOP_WARMUP_REQUESTS,
      warmupSeconds: options.quick ? 1 : OPEN_LOOP_WARMUP_SECONDS,
      targets: fixedScenarios.map((scenario) => ({ id: scenario.id, url: scenario.target.baseUrl + scenario.path, tokens: [...pools.repeatedFor(scenario.alg)] }))
    }, workDir, LOAD_CORE)
  const fixedRows: FixedRateRow[] = fixedScenarios.map((scenario) => {
    const { pooled } = fixedResults.find((r) => r.id === scenario.id)!
    return { id: scenario.id, label: scenario.label, requestsPerSecond: pooled.requestsPerSecond, p50Ms: pooled.p50Ms, p99Ms: pooled.p99Ms, errors: pooled.errors }
  })

  let profiles: ProfileResult[] = []
  if (options.profile && runnable.some((s) => s.gateway)) profiles = await profileGateway(options, generator, gatewayBase, pools, workDir)
  await jwks.close()

  const lines: string[] = []
  lines.push(...describeRun(options, machine, generator, upstreamKind))
  lines.push('')
  lines.push(renderProxyTable(rows))
  lines.push('')
  lines.push(`${CPU_COLUMNS_NOTE} p99 is the closed-loop latency at saturation (queueing included), not the latency a proxy adds.`)
  if (fixedRows.length > 0) {
    lines.push('')
    lines.push(
      `Fixed rate: ${options.fixedRatePerSecond} requests/s (open loop, a client process of its own on the load core), ${fixedRateWindows(options)} window(s) of ` +
        `${FIXED_RATE_WINDOW_SECONDS} s per target, interleaved, percentiles over all of a target's windows; latency from send to last byte.`
    )
    lines.push('')
    lines.push(renderFixedRateTable(fixedRows))
  }
  const checks = checkTargets(rows, fixedRows, options.fixedRatePerSecond)
  if (checks.length > 0) {
    lines.push('')
    lines.push('Targets, as ratios within this run:')
    lines.push('')
    lines.push(renderTargets(checks))
  }
  lines.push(...renderProfiles(profiles))
  if (notes.length > 0) {
    lines.push('')
    for (const note of notes) lines.push(`- ${note}`)
  }
  publishBenchResult('proxy', lines.join('\n'), options.write)
  const errors = rows.reduce((sum, row) => sum + row.errors, 0) + fixedRows.reduce((sum, row) => sum + row.errors, 0)
  return errors > 0 || saturated.stalled ? 1 : 0
}

interface ProfileResult {
  label: string
  totalMs: number
  spots: HotSpot[]
  packages: PackageShare[]
}

/** One fresh gateway per load shape under `node --cpu-prof`, so each profile shows one kind of work. */
async function profileGateway (
  options: BenchOptions,
  generator: LoadGenerator,
  gatewayBase: Omit<GatewayOptions, 'name'>,
  pools: TokenPools,
  workDir: string
): Promise<ProfileResult[]> {
  const shapes: { id: string; label: string; tokens: string[] }[] = [
    { id: 'hs256', label: 'HS256, repeated tokens', tokens: pools.repeatedFor('HS256') },
    { id: 'eddsa-repeated', label: 'EdDSA, repeated tokens', tokens: pools.repeatedFor('EdDSA') },
    // A round's pool (the largest): tokens the main gateway may have seen, but this new process never has.
    { id: 'eddsa-fresh', label: 'EdDSA, fresh token per request', tokens: pools.freshFor(0) }
  ]
  const results: ProfileResult[] = []
  for (const shape of shapes) {
    const dir = join(workDir, `profile-${shape.id}`)
    mkdirSync(dir, { recursive: true })
    const gateway = await startGateway({ ...gatewayBase, name: `gateway-profile-${shape.id}`, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
    console.log(`profiling gateway: ${shape.label}`)
    // Saturated, like the measured rows: a profile of an idling gateway over-weights per-wake-up costs.
    await generator.run({ url: `${gateway.baseUrl}/api/tasks`, tokens: shape.tokens, connections: options.connections, seconds: options.profileSeconds, core: LOAD_CORE, workDir })
    await stopProcess(gateway.managed, 10_000)
    const [profile] = readProfiles(dir)
    if (profile) results.push({ label: shape.label, ...hotSpots(profile, 12) })
    else console.log(`note: no profile written for ${shape.label} (did the gateway exit on SIGTERM?)`)
  }
  return results
}

function renderProfiles (profiles: ProfileResult[]): string[] {
  const lines: string[] = []
  for (const profile of profiles) {
    lines.push('')
    lines.push(
      `Gateway CPU profile, ${profile.label} (\`node --cpu-prof\` over the process's life, start-up included; ` +
        `${formatNumber(profile.totalMs)} ms of samples; top self time):`
    )
    lines.push('')
    lines.push(
      markdownTable(
        ['function', 'where', 'on behalf of (for native and node: frames)', 'self ms', 'self %'],
        profile.spots.map((spot) => [spot.name, spot.location, spot.via, formatNumber(spot.selfMs), formatNumber(spot.percent, 1)]),
        [false, false, false, true, true]
      )
    )
    lines.push('')
    lines.push(
      markdownTable(
        ['self time by package (native and node: time charged to the calling package)', 'self ms', 'self %'],
        profile.packages.map((share) => [share.name, formatNumber(share.selfMs), formatNumber(share.percent, 1)]),
        [false, true, true]
      )
    )
  }
  return lines
}
