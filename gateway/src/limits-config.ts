// Settings for the gateway's protective limits: rate limiting, load shedding and slow clients.
// Parsed from the env object loadConfig() receives (never from process.env directly); validated, fails closed.
import { ConfigError, int, str } from './env-readers.js'

export interface RateLimitSettings {
  /** Length of one counting window. */
  windowMs: number
  /** Requests per window per user (`sub`): every request with a valid token; 0 disables the per-user limit. */
  userMax: number
  /**
   * Requests WITHOUT a valid token per window per client address (RATE_LIMIT_IP_MAX): each authentication
   * failure, each request for the API document. Requests with a valid token never count here. Once used
   * up, the address is refused before any token is verified until the window ends; 0 disables it.
   */
  ipMax: number
  /** Shared counters across replicas when set (ioredis URL); in-process counters otherwise. */
  redisUrl: string | undefined
}

export interface LoadSheddingSettings {
  /** Shed when the mean event-loop delay over one sample exceeds this (ms); 0 disables. */
  maxEventLoopDelayMs: number
  /** Shed when event-loop utilization over one sample exceeds this (0..1); 0 disables. */
  maxEventLoopUtilization: number
  /** Shed when the V8 heap in use exceeds this many bytes; 0 disables. */
  maxHeapUsedBytes: number
  /** How often the process is sampled (ms). */
  sampleIntervalMs: number
  /** Retry-After (seconds) on a shed request. */
  retryAfterSec: number
}

export interface ServerLimitSettings {
  /** Request headers must arrive within this (slowloris). */
  headersTimeoutMs: number
  /** The whole request (headers + body) must arrive within this. */
  requestTimeoutMs: number
  /** How often the server checks connections against the two timeouts above. */
  connectionsCheckingIntervalMs: number
  /** Max open client connections; further ones are closed at once (0 = unlimited). */
  maxConnections: number
  /**
   * Max open connections from one client address (an IPv6 client's /64), for peers that are not
   * trusted proxies (TRUST_PROXY); further ones are closed at once (0 = unlimited).
   */
  maxConnectionsPerAddress: number
  /**
   * Request bodies are read whole, up to this, before a pooled connection to the task service is taken;
   * a larger Content-Length is answered 413 before authentication, a larger chunked body 413 when it
   * gets there (pipeline/forward.ts).
   */
  maxBodyBytes: number
  /** On SIGTERM/SIGINT: keep serving this long with /readyz 503 before closing (plugins/drain.ts). */
  shutdownDrainMs: number
  /**
   * A client that takes none of its response for this long (the gateway's buffer for it full) is
   * disconnected and the upstream request aborted: a reader that never reads cannot hold one of the
   * task service's pooled connections (pipeline/forward.ts).
   */
  responseStallTimeoutMs: number
}

export interface ConcurrencySettings {
  /** Requests of one user (`sub`) in flight at once in one gateway process; 0 = no cap. */
  perUserMax: number
}

export interface LimitsConfig {
  rateLimit: RateLimitSettings
  concurrency: ConcurrencySettings
  loadShedding: LoadSheddingSettings
  server: ServerLimitSettings
}

function fraction (env: NodeJS.ProcessEnv, name: string, def: number): number {
  const r = str(env, name)
  if (r === undefined) return def
  const n = Number(r)
  if (!/^\d*\.?\d+$/.test(r) || !(n >= 0 && n <= 1)) throw new ConfigError(`${name} must be a number between 0 and 1, got "${r}"`)
  return n
}

export const LIMIT_DEFAULTS = {
  rateLimitWindowMs: 10_000,
  /**
   * 2,000 per 10 s: 200 requests/s sustained per user. Users are never counted by address, so 50 users
   * behind one load balancer at 2,000 requests/s in total (40/s each) use a fifth of their budgets.
   */
  rateLimitUserMax: 2_000,
  /**
   * 500 requests without a valid token per 10 s per client address (50/s). A legitimate client sees a
   * handful of 401s when its token expires before it renews it, so this covers ~100 clients renewing at
   * once behind one address; an address sending bad tokens gets at most 50 signature checks (or JWKS
   * refetch triggers) per second, a few milliseconds of CPU per second for EdDSA, and is
   * refused for free after that until its window ends.
   */
  rateLimitIpMax: 500,
  maxEventLoopDelayMs: 200,
  maxEventLoopUtilization: 0,
  sampleIntervalMs: 1_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  connectionsCheckingIntervalMs: 1_000,
  maxConnections: 10_000,
  /** A NAT of ~40 browsers (6 connections each); behind a load balancer, trust it (TRUST_PROXY). */
  maxConnectionsPerAddress: 256,
  /** In flight per user: 50 users at 40 requests/s each have ~2 in flight at 50 ms per request. */
  maxConcurrentPerUser: 32,
  /** 1 MiB; the task service itself refuses bodies over 64 KiB. */
  maxBodyBytes: 1_048_576,
  responseStallTimeoutMs: 10_000
} as const

export function loadLimitsConfig (env: NodeJS.ProcessEnv): LimitsConfig {
  const redisRaw = str(env, 'REDIS_URL')
  if (redisRaw !== undefined) {
    let u: URL | undefined
    try { u = new URL(redisRaw) } catch { u = undefined }
    if (u === undefined || (u.protocol !== 'redis:' && u.protocol !== 'rediss:')) {
      throw new ConfigError('REDIS_URL must be a redis:// or rediss:// URL')
    }
  }
  const headersTimeoutMs = int(env, 'SERVER_HEADERS_TIMEOUT_MS', LIMIT_DEFAULTS.headersTimeoutMs, 100, 600_000)
  const requestTimeoutMs = int(env, 'SERVER_REQUEST_TIMEOUT_MS', LIMIT_DEFAULTS.requestTimeoutMs, 100, 3_600_000)
  if (requestTimeoutMs < headersTimeoutMs) {
    throw new ConfigError(`SERVER_REQUEST_TIMEOUT_MS (${requestTimeoutMs}) must not be shorter than SERVER_HEADERS_TIMEOUT_MS (${headersTimeoutMs})`)
  }
  return {
    rateLimit: {
      windowMs: int(env, 'RATE_LIMIT_WINDOW_MS', LIMIT_DEFAULTS.rateLimitWindowMs, 100, 3_600_000),
      userMax: int(env, 'RATE_LIMIT_USER_MAX', LIMIT_DEFAULTS.rateLimitUserMax, 0, 100_000_000),
      ipMax: int(env, 'RATE_LIMIT_IP_MAX', LIMIT_DEFAULTS.rateLimitIpMax, 0, 100_000_000),
      redisUrl: redisRaw
    },
    concurrency: {
      perUserMax: int(env, 'MAX_CONCURRENT_REQUESTS_PER_USER', LIMIT_DEFAULTS.maxConcurrentPerUser, 0, 100_000)
    },
    loadShedding: {
      maxEventLoopDelayMs: int(env, 'LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS', LIMIT_DEFAULTS.maxEventLoopDelayMs, 0, 600_000),
      maxEventLoopUtilization: fraction(env, 'LOAD_SHED_MAX_EVENT_LOOP_UTILIZATION', LIMIT_DEFAULTS.maxEventLoopUtilization),
      maxHeapUsedBytes: int(env, 'LOAD_SHED_MAX_HEAP_BYTES', 0, 0, Number.MAX_SAFE_INTEGER),
      sampleIntervalMs: int(env, 'LOAD_SHED_SAMPLE_INTERVAL_MS', LIMIT_DEFAULTS.sampleIntervalMs, 10, 60_000),
      retryAfterSec: 1
    },
    server: {
      headersTimeoutMs,
      requestTimeoutMs,
      connectionsCheckingIntervalMs: Math.min(LIMIT_DEFAULTS.connectionsCheckingIntervalMs, headersTimeoutMs),
      maxConnections: int(env, 'SERVER_MAX_CONNECTIONS', LIMIT_DEFAULTS.maxConnections, 0, 1_000_000),
      maxConnectionsPerAddress: int(env, 'SERVER_MAX_CONNECTIONS_PER_ADDRESS', LIMIT_DEFAULTS.maxConnectionsPerAddress, 0, 1_000_000),
      maxBodyBytes: int(env, 'MAX_BODY_BYTES', LIMIT_DEFAULTS.maxBodyBytes, 1, 1_073_741_824),
      shutdownDrainMs: int(env, 'SHUTDOWN_DRAIN_MS', 0, 0, 300_000),
      responseStallTimeoutMs: int(env, 'SERVER_RESPONSE_STALL_TIMEOUT_MS', LIMIT_DEFAULTS.responseStallTimeoutMs, 100, 3_600_000)
    }
  }
}
