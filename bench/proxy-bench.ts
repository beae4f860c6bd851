// `npm run bench`: the proxy benchmark, measured the way a skeptic would.
// - Every proxy is driven to saturation: wrk (or, without it, several autocannon worker processes) with
//   enough connections, pinned to the load core together with the upstream, the proxy alone on the other
//   core. The figure is the proxy process's CPU time per request answered; a row whose proxy used less
//   than 90 % of its core is flagged, since an idle proxy spends more CPU per request.
// - References in the same run: nginx as a plain proxy, HAProxy jwt_verify HS256 and ES256, the Node http
//   hello world and the bare Node proxy floor (bench/servers/node-floor-proxy.ts); each gateway row is
//   shown against HAProxy HS256 and against the floor.
// - Interleaved rounds (A B C … A B C …), medians; then p99 at a fixed 1,000 requests/s from an
//   open-loop client, and the gateway's peak RSS.
import { mkdirSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import type { BenchOptions } from './lib/args.js'
import { hotSpots, readProfiles, type HotSpot, type PackageShare } from './lib/cpu-profile.js'
import { startGateway, type GatewayOptions } from './lib/gateway.js'
import { gatewaySourceExists } from '../support/gateway.js'
import { buildWorkspaceIfStale } from '../support/workspaces.js'
import { haproxyVersion, isSupportedHaproxy, startHaproxy } from './lib/haproxy.js'
import { autocannonGenerator, wrkGenerator, type LoadGenerator } from './lib/load-generator.js'
import { describeMachine } from './lib/machine.js'
import { nginxVersion, startNginx } from './lib/nginx.js'
import { runOpenLoopProcess } from './lib/open-loop-process.js'
import { watchProcess } from './lib/proc-stats.js'
import { LOAD_CORE, PROXY_CORE } from './lib/processes.js'
import { stopProcess, type Managed } from '../support/processes.js'
import {
  checkTargets,
  renderFixedRateTable,
  renderProxyTable,
  renderTargets,
  SATURATION_THRESHOLD,
  summarizeRounds,
  type FixedRateRow,
  type RoundSample
} from './lib/proxy-report.js'
import { replaceMeasuredSection, writeBenchResult } from './lib/report.js'
import { formatNumber, markdownTable } from './lib/table.js'
import { gatewayAuth, mintPool, startKeyServer, userIdFor, type BenchKeys, type TokenAlgorithm } from './lib/tokens.js'
import { startNodeFloorProxy, startUpstream, type HttpTarget } from './lib/upstream.js'
import { ensureWrk } from './lib/wrk.js'

interface Scenario {
  id: string
  label: string
  target: HttpTarget
  /** The process whose CPU and memory the row reports. */
  measured: Managed
  path: string
  alg: TokenAlgorithm
  /** Fresh: every request carries a token never seen before. */
  fresh: boolean
  /** Whether the upstream must see X-User-Id = the token's sub (false for targets that do no auth). */
  checksIdentity: boolean
  gateway: boolean
}

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

function probe (url: string, token: string): Promise<{ status: number; sawUser: string | undefined }> {
  return new Promise((resolve) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
      res.resume()
      res.on('end', () => {
        const saw = res.headers['x-upstream-saw-user']
        resolve({ status: res.statusCode ?? 0, sawUser: typeof saw === 'string' ? saw : undefined })
      })
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve({ status: 0, sawUser: undefined }))
    req.end()
  })
}

class TokenPools {
  private readonly repeated = new Map<TokenAlgorithm, string[]>()
  /** One pool per round (plus warm-up) so a round never meets a token that an earlier one cached. */
  private readonly fresh: string[][] = []

  static async mint (keys: BenchKeys, options: BenchOptions, algorithms: TokenAlgorithm[]): Promise<TokenPools> {
    const pools = new TokenPools()
    // One user per connection, as many logged-in browsers each sending their own token again and again.
    for (const alg of algorithms) pools.repeated.set(alg, await mintPool(keys, alg, options.connections))
    const perWindow = (seconds: number): number => Math.max(options.freshTokenRequests, seconds * options.freshTokensPerSecond)
    pools.fresh.push(await mintPool(keys, 'EdDSA', perWindow(options.warmupSeconds), 1_000_000))
    let first = 2_000_000
    for (let round = 0; round < options.rounds; round++) {
      const size = perWindow(options.durationSeconds)
      pools.fresh.push(await mintPool(keys, 'EdDSA', size, first))
      first += size
    }
    return pools
  }

  repeatedFor (alg: TokenAlgorithm): string[] {
    const pool = this.repeated.get(alg)
    if (!pool) throw new Error(`no ${alg} tokens minted`)
    return pool
  }

  /** Round -1 is the warm-up. */
  freshFor (round: number): string[] {
    return this.fresh[round + 1]!
  }
}

async function measure (generator: LoadGenerator, scenario: Scenario, tokens: string[], options: BenchOptions, seconds: number, workDir: string): Promise<RoundSample> {
  const watch = watchProcess(scenario.measured.pid)
  const load = await generator.run({ url: scenario.target.baseUrl + scenario.path, tokens, connections: options.connections, seconds, core: LOAD_CORE, workDir })
  const window = watch.stop()
  return { requests: load.requests, seconds: load.seconds, cpuMicros: window.cpuMicros, p99Ms: load.p99Ms, peakRssBytes: window.peakRssBytes, errors: load.errors }
}

export async function runProxyBench (options: BenchOptions, workDir: string): Promise<number> {
  const machine = describeMachine()
  const notes: string[] = []
  console.log(`machine: ${machine.cpus} CPUs, ${machine.cpuModel}, Node ${machine.node}; ${machine.pinning}`)

  const wrkProblem = options.autocannon ? 'autocannon chosen with --autocannon' : ensureWrk()
  const generator = wrkProblem === undefined ? wrkGenerator() : autocannonGenerator(options.autocannonWorkers)
  if (wrkProblem !== undefined) {
    notes.push(`Load generator: ${generator.description} instead of wrk, because ${wrkProblem}. Fast proxies may not saturate: check the core use column.`)
  }

  const { jwks, keys } = await startKeyServer()

  let nginx = options.nginx ? nginxVersion() : undefined
  if (options.nginx && nginx === undefined) notes.push('nginx is not installed: Node upstream, no nginx row (Debian: `apt-get install nginx-light`).')
  // The upstream shares the load core with the client: the cheaper it is, the more of that core is left to
  // drive the proxy to saturation, so nginx when there is one.
  let upstream: HttpTarget | undefined
  if (nginx !== undefined) {
    try {
      upstream = await startNginx('upstream', { kind: 'upstream' }, workDir, LOAD_CORE)
    } catch (error) {
      notes.push(`nginx ${nginx} did not start (${error instanceof Error ? error.message.split('\n')[0] : String(error)}): Node upstream, no nginx row.`)
      nginx = undefined
    }
  }
  upstream ??= await startUpstream('upstream', workDir, LOAD_CORE)
  const upstreamPort = Number(new URL(upstream.baseUrl).port)
  const upstreamKind = nginx !== undefined ? `nginx ${nginx}` : 'Node http'
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
  const floor = await startNodeFloorProxy('node-floor-proxy', { upstreamUrl: upstream.baseUrl, hmacSecret: keys.hmacSecret, issuer: keys.issuer }, workDir, PROXY_CORE)
  scenarios.push({ id: 'node-floor-proxy', label: 'bare Node proxy floor (node:http + undici Pool + sync HMAC)', target: floor, measured: floor.managed, path: '/api/tasks', alg: 'HS256', fresh: false, checksIdentity: true, gateway: false })

  const gatewayBase: Omit<GatewayOptions, 'name'> = {
    upstreamUrl: upstream.baseUrl,
    ...gatewayAuth(keys, jwks.url),
    logDir: workDir,
    logLevel: options.logLevel,
    entry: options.gatewayEntry
  }
  if (options.gatewayEntry !== undefined || gatewaySourceExists()) {
    if (options.gatewayEntry === undefined) buildWorkspaceIfStale('gateway')
    const gateway = await startGateway({ ...gatewayBase, name: 'gateway' })
    scenarios.push(
      { id: 'gateway-hs256', label: 'gateway HS256', target: gateway, measured: gateway.managed, path: '/api/tasks', alg: 'HS256', fresh: false, checksIdentity: true, gateway: true },
      { id: 'gateway-eddsa-repeated', label: 'gateway EdDSA (JWKS), repeated tokens', target: gateway, measured: gateway.managed, path: '/api/tasks', alg: 'EdDSA', fresh: false, checksIdentity: true, gateway: true },
      { id: 'gateway-eddsa-fresh', label: 'gateway EdDSA (JWKS), fresh token per request', target: gateway, measured: gateway.managed, path: '/api/tasks', alg: 'EdDSA', fresh: true, checksIdentity: true, gateway: true }
    )
  } else {
    notes.push('The gateway does not exist (no gateway/src/server.ts): gateway scenarios skipped.')
  }

  console.log('minting tokens…')
  const pools = await TokenPools.mint(keys, options, ['HS256', 'EdDSA', 'ES256'])

  // Check each target does the real job before timing it: 200, and the upstream saw the token's sub.
  const runnable: Scenario[] = []
  for (const scenario of [direct, ...scenarios]) {
    const token = scenario.fresh ? pools.freshFor(-1)[0]! : pools.repeatedFor(scenario.alg)[0]!
    const result = await probe(scenario.target.baseUrl + scenario.path, token)
    const expectedUser = userIdFor(scenario.fresh ? 1_000_000 : 0)
    if (result.status !== 200) notes.push(`${scenario.label}: probe answered ${result.status}, scenario skipped.`)
    else if (scenario.checksIdentity && result.sawUser !== expectedUser) notes.push(`${scenario.label}: upstream saw X-User-Id ${JSON.stringify(result.sawUser)} instead of ${expectedUser}, scenario skipped.`)
    else runnable.push(scenario)
  }
  for (const note of notes) console.log(`note: ${note}`)
  const saturating = runnable.filter((s) => s !== direct)

  if (options.profileOnly) {
    if (!runnable.some((s) => s.gateway)) throw new Error('--profile-only: the gateway is not runnable (see the notes above)')
    const profiles = await profileGateway(options, generator, gatewayBase, pools, workDir)
    await jwks.close()
    console.log(`\n${renderProfiles(profiles).join('\n')}\n`)
    return 0
  }

  for (const scenario of saturating) {
    console.log(`warm-up: ${scenario.label}`)
    const tokens = scenario.fresh ? pools.freshFor(-1) : pools.repeatedFor(scenario.alg)
    await generator.run({ url: scenario.target.baseUrl + scenario.path, tokens, connections: options.connections, seconds: options.warmupSeconds, core: LOAD_CORE, workDir })
  }

  const samples = new Map<string, RoundSample[]>(saturating.map((s) => [s.id, []]))
  let freshReused = 0
  const stalled: string[] = []
  for (let round = 0; round < options.rounds; round++) {
    // A B C, then C B A: a drift over the run (the machine heating, a neighbour starting) falls evenly.
    for (const scenario of round % 2 === 0 ? saturating : [...saturating].reverse()) {
      const tokens = scenario.fresh ? pools.freshFor(round) : pools.repeatedFor(scenario.alg)
      const sample = await measure(generator, scenario, tokens, options, options.durationSeconds, workDir)
      if (scenario.fresh) freshReused += Math.max(0, sample.requests - tokens.length)
      if (sample.requests === 0) stalled.push(`${scenario.label}: no response at all in round ${round + 1} (the proxy or the machine stalled); the run fails.`)
      samples.get(scenario.id)!.push(sample)
      const use = sample.cpuMicros / (sample.seconds * 1e6)
      console.log(
        `round ${round + 1}/${options.rounds} ${scenario.label}: ${formatNumber(sample.requests / sample.seconds)} req/s, ` +
          `${(sample.cpuMicros / Math.max(1, sample.requests)).toFixed(1)} µs CPU/req, core use ${(use * 100).toFixed(0)} %` +
          `${use < SATURATION_THRESHOLD ? ' (not saturated)' : ''}, p99 ${sample.p99Ms.toFixed(2)} ms, errors ${sample.errors}`
      )
    }
  }
  notes.push(...stalled)
  if (freshReused > 0) notes.push(`Fresh-token rows: ${formatNumber(freshReused)} requests reused a token of the same round (the pool ran out), so those were cache hits.`)
  const rows = saturating.map((scenario) => summarizeRounds(scenario.id, scenario.label, scenario.gateway, samples.get(scenario.id)!))

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
  lines.push(`Measured by \`${options.command}\` on ${machine.date} (commit ${machine.commit}).`)
  lines.push('')
  lines.push(`Machine: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}; ${machine.pinning}.`)
  lines.push(
    `Load: ${generator.description}, ${options.connections} connections; upstream: ${upstreamKind} on the load core; ` +
      `${options.rounds} interleaved round(s) of ${options.durationSeconds} s per row, medians shown; errors are totals over all rounds.`
  )
  lines.push('')
  lines.push(renderProxyTable(rows))
  lines.push('')
  lines.push(
    '"CPU µs / request" is the proxy process\'s CPU time (user + system, all threads, from /proc) divided by the responses it served; ' +
      `"core use" is that CPU time over the window's wall time: a row under ${SATURATION_THRESHOLD * 100} % did not saturate its core and is flagged. ` +
      'p99 is the closed-loop latency at saturation (queueing included), not the latency a proxy adds.'
  )
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
  const markdown = lines.join('\n')
  console.log(`\n${markdown}\n`)
  console.log(`wrote ${writeBenchResult('proxy', markdown)}`)
  if (options.write) {
    replaceMeasuredSection('proxy', markdown)
    console.log('wrote docs/performance.md')
  }
  const errors = rows.reduce((sum, row) => sum + row.errors, 0) + fixedRows.reduce((sum, row) => sum + row.errors, 0)
  return errors > 0 || stalled.length > 0 ? 1 : 0
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
