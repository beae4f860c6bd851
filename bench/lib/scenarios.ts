// The saturation harness shared by the proxy benchmark and its "cost of each feature" mode: the load
// generator and the upstream, the tokens, the check that a target does the real job before it is timed,
// and the interleaved rounds at saturation whose medians make the tables (proxy-report.ts).
import { request } from 'node:http'
import type { BenchOptions } from './args.js'
import { autocannonGenerator, wrkGenerator, type LoadGenerator } from './load-generator.js'
import type { MachineInfo } from './machine.js'
import { nginxVersion, startNginx } from './nginx.js'
import { watchProcess } from './proc-stats.js'
import { LOAD_CORE, PROXY_CORE } from './processes.js'
import { SATURATION_THRESHOLD, summarizeRounds, type ProxyRow, type RoundSample } from './proxy-report.js'
import { formatNumber } from './table.js'
import { mintPool, userIdFor, type BenchKeys, type TokenAlgorithm } from './tokens.js'
import { startNodeFloorProxy, startUpstream, type HttpTarget } from './upstream.js'
import { ensureWrk } from './wrk.js'
import type { Managed } from '../../support/processes.js'
import { imageNodeOptions } from '../../support/workspaces.js'

export interface Scenario {
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

/** The id the reports find the floor by (proxy-report.ts, referencesOf). */
export const FLOOR_ID = 'node-floor-proxy'

export const NO_GATEWAY_NOTE = 'The gateway does not exist (no gateway/src/server.ts): gateway scenarios skipped.'

/** The gateway (one of its processes) under load with the given tokens, checked for the right X-User-Id. */
export function gatewayScenario (id: string, label: string, target: HttpTarget, alg: TokenAlgorithm, { fresh = false } = {}): Scenario {
  return { id, label, target, measured: target.managed, path: '/api/tasks', alg, fresh, checksIdentity: true, gateway: true }
}

/** The bare Node proxy floor (bench/servers/node-floor-proxy.ts) on the proxy core, HS256 tokens. */
export async function startFloorScenario (upstream: HttpTarget, keys: BenchKeys, workDir: string): Promise<Scenario> {
  const floor = await startNodeFloorProxy(FLOOR_ID, { upstreamUrl: upstream.baseUrl, hmacSecret: keys.hmacSecret, issuer: keys.issuer }, workDir, PROXY_CORE)
  return { id: FLOOR_ID, label: 'bare Node proxy floor (node:http + undici Pool + sync HMAC)', target: floor, measured: floor.managed, path: '/api/tasks', alg: 'HS256', fresh: false, checksIdentity: true, gateway: false }
}

/** wrk when it is there (or installable), else autocannon workers, with a note saying what that means. */
export function chooseLoadGenerator (options: BenchOptions, notes: string[]): LoadGenerator {
  const wrkProblem = options.autocannon ? 'autocannon chosen with --autocannon' : ensureWrk()
  const generator = wrkProblem === undefined ? wrkGenerator() : autocannonGenerator(options.autocannonWorkers)
  if (wrkProblem !== undefined) {
    notes.push(`Load generator: ${generator.description} instead of wrk, because ${wrkProblem}. Fast proxies may not saturate: check the core use column.`)
  }
  return generator
}

export interface Upstream {
  target: HttpTarget
  /** How the tables name it: `nginx 1.22.1` or `Node http`. */
  kind: string
  /** nginx's version when nginx is the upstream (and so may also be a plain-proxy row). */
  nginx: string | undefined
}

/**
 * The upstream, on the load core. It shares that core with the client: the cheaper it is, the more of the
 * core is left to drive the proxy to saturation, so nginx when there is one.
 */
export async function startBenchUpstream (options: BenchOptions, workDir: string, notes: string[]): Promise<Upstream> {
  let nginx = options.nginx ? nginxVersion() : undefined
  if (options.nginx && nginx === undefined) notes.push('nginx is not installed: Node upstream, no nginx row (Debian: `apt-get install nginx-light`).')
  let target: HttpTarget | undefined
  if (nginx !== undefined) {
    try {
      target = await startNginx('upstream', { kind: 'upstream' }, workDir, LOAD_CORE)
    } catch (error) {
      notes.push(`nginx ${nginx} did not start (${error instanceof Error ? error.message.split('\n')[0] : String(error)}): Node upstream, no nginx row.`)
      nginx = undefined
    }
  }
  target ??= await startUpstream('upstream', workDir, LOAD_CORE)
  return { target, kind: nginx !== undefined ? `nginx ${nginx}` : 'Node http', nginx }
}

export function probe (url: string, token: string): Promise<{ status: number; sawUser: string | undefined }> {
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

export class TokenPools {
  private readonly repeated = new Map<TokenAlgorithm, string[]>()
  /** One pool per round (plus warm-up) so a round never meets a token that an earlier one cached. */
  private readonly fresh: string[][] = []

  /** `fresh: false` when no scenario sends fresh tokens: minting those pools takes a while. */
  static async mint (keys: BenchKeys, options: BenchOptions, algorithms: TokenAlgorithm[], { fresh = true } = {}): Promise<TokenPools> {
    const pools = new TokenPools()
    // One user per connection, as many logged-in browsers each sending their own token again and again.
    for (const alg of algorithms) pools.repeated.set(alg, await mintPool(keys, alg, options.connections))
    if (!fresh) return pools
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
    const pool = this.fresh[round + 1]
    if (!pool) throw new Error(`no fresh tokens minted for round ${round}`)
    return pool
  }
}

/**
 * The scenarios that do the real job, checked before anything is timed: 200, and the upstream saw the
 * token's sub. The others are left out with a note.
 */
export async function runnableScenarios (scenarios: Scenario[], pools: TokenPools, notes: string[]): Promise<Scenario[]> {
  const runnable: Scenario[] = []
  for (const scenario of scenarios) {
    const token = scenario.fresh ? pools.freshFor(-1)[0]! : pools.repeatedFor(scenario.alg)[0]!
    const result = await probe(scenario.target.baseUrl + scenario.path, token)
    const expectedUser = userIdFor(scenario.fresh ? 1_000_000 : 0)
    if (result.status !== 200) notes.push(`${scenario.label}: probe answered ${result.status}, scenario skipped.`)
    else if (scenario.checksIdentity && result.sawUser !== expectedUser) notes.push(`${scenario.label}: upstream saw X-User-Id ${JSON.stringify(result.sawUser)} instead of ${expectedUser}, scenario skipped.`)
    else runnable.push(scenario)
  }
  return runnable
}

async function measure (generator: LoadGenerator, scenario: Scenario, tokens: string[], options: BenchOptions, seconds: number, workDir: string): Promise<RoundSample> {
  const watch = watchProcess(scenario.measured.pid)
  const load = await generator.run({ url: scenario.target.baseUrl + scenario.path, tokens, connections: options.connections, seconds, core: LOAD_CORE, workDir })
  const window = watch.stop()
  return { requests: load.requests, seconds: load.seconds, cpuMicros: window.cpuMicros, p99Ms: load.p99Ms, peakRssBytes: window.peakRssBytes, errors: load.errors }
}

export interface SaturatedRounds {
  /** One row per scenario, in the scenarios' order: medians of its rounds. */
  rows: ProxyRow[]
  /** What a reader of the table must know: stalled windows, fresh tokens reused. */
  notes: string[]
  /** A window without a single response: the run fails. */
  stalled: boolean
}

/**
 * Every scenario warmed up once (JIT, pools, caches), then measured at saturation in interleaved rounds:
 * A B C, then C B A, so that a drift over the run (the machine heating, a neighbour starting) falls
 * evenly on every row.
 */
export async function runSaturatedRounds (generator: LoadGenerator, scenarios: Scenario[], pools: TokenPools, options: BenchOptions, workDir: string): Promise<SaturatedRounds> {
  for (const scenario of scenarios) {
    console.log(`warm-up: ${scenario.label}`)
    const tokens = scenario.fresh ? pools.freshFor(-1) : pools.repeatedFor(scenario.alg)
    await generator.run({ url: scenario.target.baseUrl + scenario.path, tokens, connections: options.connections, seconds: options.warmupSeconds, core: LOAD_CORE, workDir })
  }

  const samples = new Map<string, RoundSample[]>(scenarios.map((s) => [s.id, []]))
  let freshReused = 0
  const notes: string[] = []
  for (let round = 0; round < options.rounds; round++) {
    for (const scenario of round % 2 === 0 ? scenarios : [...scenarios].reverse()) {
      const tokens = scenario.fresh ? pools.freshFor(round) : pools.repeatedFor(scenario.alg)
      const sample = await measure(generator, scenario, tokens, options, options.durationSeconds, workDir)
      if (scenario.fresh) freshReused += Math.max(0, sample.requests - tokens.length)
      if (sample.requests === 0) notes.push(`${scenario.label}: no response at all in round ${round + 1} (the proxy or the machine stalled); the run fails.`)
      samples.get(scenario.id)!.push(sample)
      const use = sample.cpuMicros / (sample.seconds * 1e6)
      console.log(
        `round ${round + 1}/${options.rounds} ${scenario.label}: ${formatNumber(sample.requests / sample.seconds)} req/s, ` +
          `${(sample.cpuMicros / Math.max(1, sample.requests)).toFixed(1)} µs CPU/req, core use ${(use * 100).toFixed(0)} %` +
          `${use < SATURATION_THRESHOLD ? ' (not saturated)' : ''}, p99 ${sample.p99Ms.toFixed(2)} ms, errors ${sample.errors}`
      )
    }
  }
  const stalled = notes.length > 0
  if (freshReused > 0) notes.push(`Fresh-token rows: ${formatNumber(freshReused)} requests reused a token of the same round (the pool ran out), so those were cache hits.`)
  const rows = scenarios.map((scenario) => summarizeRounds(scenario.id, scenario.label, scenario.gateway, samples.get(scenario.id)!))
  return { rows, notes, stalled }
}

/** The lines above every saturation table: who measured what, on which machine, under which load. */
export function describeRun (options: BenchOptions, machine: MachineInfo, generator: LoadGenerator, upstreamKind: string): string[] {
  const gatewayNodeOptions = imageNodeOptions('gateway')
  return [
    `Measured by \`${options.command}\` on ${machine.date} (commit ${machine.commit}).`,
    '',
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}; ${machine.pinning}.`,
    `Load: ${generator.description}, ${options.connections} connections; upstream: ${upstreamKind} on the load core; ` +
      `${options.rounds} interleaved round(s) of ${options.durationSeconds} s per row, medians shown; errors are totals over all rounds.`,
    `Processes: the gateway as its image runs it (\`node gateway/dist/server.js\`, NODE_ENV=production${gatewayNodeOptions !== '' ? `, NODE_OPTIONS=\`${gatewayNodeOptions}\`` : ''}); ` +
      'the Node reference rows as plain `node` on their esbuild output (no loader in the process).'
  ]
}

/** How the proxy table's CPU and core-use columns are measured (shared by every saturation table). */
export const CPU_COLUMNS_NOTE =
  '"CPU µs / request" is the proxy process\'s CPU time (user + system, all threads, from /proc) divided by the responses it served; ' +
  `"core use" is that CPU time over the window's wall time: a row under ${SATURATION_THRESHOLD * 100} % did not saturate its core and is flagged.`
