// The gateway under test as the benchmark configures it: its build (`node gateway/dist/server.js` with the
// image's NODE_OPTIONS, as in production), started by support/gateway.ts with no test defaults, configured by
// its environment only.
import { gatewaySourceExists, spawnGateway } from '../../support/gateway.js'
import { freePort } from '../../support/ports.js'
import { buildWorkspaceIfStale } from '../../support/workspaces.js'
import type { BenchOptions } from './args.js'
import { benchNiceness, PROXY_CORE } from './processes.js'
import type { HttpTarget } from './upstream.js'

export interface GatewayOptions {
  name: string
  upstreamUrl: string
  hmacSecret: string
  jwksUrl: string
  issuer: string
  audience: string
  logDir: string
  logLevel: string
  /** Extra node flags, e.g. --cpu-prof for profiling runs. */
  nodeFlags?: string[]
  entry?: string
  core?: number
  /** Extra environment for the gateway process (e.g. the forwarder A/B's FORWARDER). */
  env?: Record<string, string>
  /** A command that runs node, e.g. ['valgrind', '--tool=callgrind'] for instruction counts. */
  launcher?: string[]
  /** How long to wait for /readyz (a gateway under valgrind starts in tens of seconds). */
  readyTimeoutMs?: number
}

/** Out of reach of the benchmark's few users and single client address, yet counted on every request. */
export const UNREACHABLE_RATE_LIMIT = 100_000_000

/**
 * The gateway's environment as the benchmark deploys it (the assertion key aside, which spawnGateway adds):
 * production defaults for everything not named here.
 */
export function benchGatewayEnv (options: GatewayOptions, metricsPort: number): Record<string, string> {
  return {
    TASK_SERVICE_URL: options.upstreamUrl,
    JWT_SECRET: options.hmacSecret,
    JWKS_URL: options.jwksUrl,
    JWT_ISSUER: options.issuer,
    JWT_AUDIENCE: options.audience,
    LOG_LEVEL: options.logLevel,
    // The benchmark is one client IP and a few users sending thousands of requests a second: keep the
    // rate limiter on its real code path (its cost is part of every request) but out of reach.
    RATE_LIMIT_IP_MAX: String(UNREACHABLE_RATE_LIMIT),
    RATE_LIMIT_USER_MAX: String(UNREACHABLE_RATE_LIMIT),
    // Metrics on, as deployed, each gateway on a port of its own (the A/B runs two side by side).
    METRICS_PORT: String(metricsPort),
    ...options.env
  }
}

export async function startGateway (options: GatewayOptions): Promise<HttpTarget> {
  const managed = await spawnGateway(benchGatewayEnv(options, await freePort()), {
    testDefaults: false,
    from: 'dist',
    ...(options.entry !== undefined ? { entry: options.entry } : {}),
    ...(options.nodeFlags !== undefined ? { nodeFlags: options.nodeFlags } : {}),
    ...(options.launcher !== undefined ? { launcher: options.launcher } : {}),
    name: options.name,
    logDir: options.logDir,
    core: options.core ?? PROXY_CORE,
    ...(benchNiceness !== undefined ? { niceness: benchNiceness } : {}),
    // /readyz: the upstream answers and the JWKS is loaded, so the first measured request can succeed.
    readyPath: '/readyz',
    timeoutMs: options.readyTimeoutMs ?? 30_000
  })
  return { managed, baseUrl: managed.url }
}

/**
 * Whether there is a gateway to benchmark: the --gateway-entry file, or the gateway's source, whose build
 * is brought up to date first.
 */
export function prepareGatewayBuild (options: BenchOptions): boolean {
  if (options.gatewayEntry !== undefined) return true
  if (!gatewaySourceExists()) return false
  buildWorkspaceIfStale('gateway')
  return true
}

/** Everything but the name: the bench's keys and upstream, the run's log level and scratch directory. */
export function benchGatewayOptions (
  options: BenchOptions,
  upstreamUrl: string,
  auth: Pick<GatewayOptions, 'hmacSecret' | 'jwksUrl' | 'issuer' | 'audience'>,
  workDir: string
): Omit<GatewayOptions, 'name'> {
  return { upstreamUrl, ...auth, logDir: workDir, logLevel: options.logLevel, entry: options.gatewayEntry }
}
