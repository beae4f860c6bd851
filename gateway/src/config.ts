// Configuration: read from the environment once, validated, fails closed.
// This is the only module that may read process.env (lint rule). The gateway never reads `.env` itself.
import { createPrivateKey } from 'node:crypto'
import { readTracingConfig, type TracingConfig } from 'observability'
import { ConfigError, fail, int, str } from './env-readers.js'
import { loadLimitsConfig, type LimitsConfig } from './limits-config.js'
import { parseTrustProxy, type TrustProxySetting } from './trust-proxy.js'

export type HmacAlg = 'HS256' | 'HS384' | 'HS512'
// `Ed25519` is the fully-specified name of `EdDSA` on an Ed25519 key (RFC 9864); both verify the same keys.
export type AsymmetricAlg = 'EdDSA' | 'Ed25519' | 'ES256' | 'ES384' | 'ES512' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512'

export const HMAC_ALGS: readonly HmacAlg[] = ['HS256', 'HS384', 'HS512']
export const ASYMMETRIC_ALGS: readonly AsymmetricAlg[] = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
const DEFAULT_HMAC_ALGS: readonly HmacAlg[] = ['HS256']
// What Better Auth's jwt plugin can sign with (its keyPairConfig), each key bound to its own algorithm.
const DEFAULT_ASYMMETRIC_ALGS: readonly AsymmetricAlg[] = ['EdDSA', 'Ed25519', 'ES256', 'ES512', 'RS256', 'PS256']

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export interface JwksSettings {
  /** Where the JSON Web Key Set is fetched from. */
  url: string
  /** Background refresh period while things are healthy. */
  refreshMs: number
  /** Minimum time between two fetches triggered by an unknown `kid` (one shared fetch per window). */
  cooldownMs: number
  /** How long the last good key set keeps working while the JWKS endpoint fails. */
  staleMaxMs: number
  /** Per-fetch timeout (connect + headers + body). */
  timeoutMs: number
}

export interface GatewayConfig {
  port: number
  host: string
  /** Origin of the task service, e.g. http://127.0.0.1:3001 (no path). */
  taskServiceUrl: string
  /**
   * PUBLIC_URL: the gateway's public origin, e.g. https://api.example.com. When set, Location, Link,
   * Content-Location and Refresh references are absolute URLs on it; otherwise origin-relative paths.
   */
  publicUrl: string | undefined
  jwt: {
    /** HMAC secret as UTF-8 bytes (≥ 32 bytes), or undefined. */
    secret: Buffer | undefined
    jwks: JwksSettings | undefined
    issuer: string | undefined
    /** The token's `aud` must contain one of these; undefined only when JWT_AUDIENCE=* (any audience). */
    audience: string[] | undefined
    hmacAlgorithms: HmacAlg[]
    asymmetricAlgorithms: AsymmetricAlg[]
    clockToleranceSec: number
  }
  /** Max entries of the verification-result cache (0 disables it). */
  verificationCacheMaxEntries: number
  corsOrigins: string[]
  /** Port of the separate Prometheus listener (METRICS_PORT, default 9464); 0: no listener, no metrics. */
  metricsPort: number
  /** Interface the metrics listener binds (METRICS_HOST, default 127.0.0.1). */
  metricsHost: string
  upstreamTimeoutMs: number
  /** Max keep-alive connections to the task service. */
  upstreamConnections: number
  forwardAuthorization: boolean
  logLevel: LogLevel
  /**
   * Bytes of log output collected before one write to stdout (0: every line written at once). Lines
   * are written at the latest FLUSH_INTERVAL_MS (log-destination.ts) after they were logged, and when
   * the gateway stops.
   */
  logBufferBytes: number
  /** TRUST_PROXY: which peers may name the client in X-Forwarded-For (trust-proxy.ts); off by default. */
  trustProxy: TrustProxySetting
  /** Rate limits, load shedding, slow-client limits (limits-config.ts). */
  limits: LimitsConfig
  /** Ed25519 private key, PKCS#8 PEM, that signs the identity assertion sent with every forwarded request. */
  assertionPrivateKey: string
}

const KEYS_HINT = 'make a key pair with `npm run keys` (or: openssl genpkey -algorithm ed25519 -out assertion.pem && ' +
  'openssl pkey -in assertion.pem -pubout), give the private key to the gateway as GATEWAY_ASSERTION_PRIVATE_KEY ' +
  'and the public key to the task service as GATEWAY_ASSERTION_PUBLIC_KEY'

/** GATEWAY_ASSERTION_PRIVATE_KEY: one PKCS#8 PEM block, with real newlines or `\n` escapes (docker env files). */
function assertionPrivateKey (env: NodeJS.ProcessEnv): string {
  const name = 'GATEWAY_ASSERTION_PRIVATE_KEY'
  const raw = str(env, name)
  if (raw === undefined) fail(`${name} is not set: the gateway signs the identity it forwards, and the task service accepts nothing else; ${KEYS_HINT}`)
  const text = raw.replace(/\\r/g, '').replace(/\\n/g, '\n').replace(/\r\n/g, '\n').trim()
  if (!/^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\s]+\n-----END PRIVATE KEY-----$/.test(text)) {
    fail(`${name} must be one PKCS#8 PEM block (-----BEGIN PRIVATE KEY----- … -----END PRIVATE KEY-----, with real newlines or \\n escapes); ${KEYS_HINT}`)
  }
  let key
  try {
    key = createPrivateKey(text)
  } catch {
    return fail(`${name} is not a readable PKCS#8 private key; ${KEYS_HINT}`)
  }
  if (key.asymmetricKeyType !== 'ed25519') fail(`${name} must be an Ed25519 key, got ${key.asymmetricKeyType ?? 'an unknown type'}; ${KEYS_HINT}`)
  return key.export({ type: 'pkcs8', format: 'pem' }).toString()
}

export { ConfigError }

export const DEFAULT_METRICS_PORT = 9464

/** Read by the tracing preload (telemetry.ts) before the app starts: the OTEL_* settings (packages/observability). */
export function loadTracingConfig (env: NodeJS.ProcessEnv = process.env): TracingConfig {
  try {
    return readTracingConfig(env, 'gateway')
  } catch (err) {
    return fail((err as Error).message)
  }
}

function bool (env: NodeJS.ProcessEnv, name: string, def: boolean): boolean {
  const raw = str(env, name)
  if (raw === undefined) return def
  const l = raw.toLowerCase()
  if (l === 'true' || l === '1' || l === 'yes') return true
  if (l === 'false' || l === '0' || l === 'no') return false
  return fail(`${name} must be "true" or "false", got "${raw}"`)
}

function httpUrl (name: string, raw: string): URL {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    return fail(`${name} must be an absolute http(s) URL, got "${raw}"`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(`${name} must use http or https, got "${u.protocol}"`)
  if (u.username !== '' || u.password !== '') fail(`${name} must not contain credentials`)
  return u
}

/** What `JWT_AUDIENCE=*` means: any audience is accepted (logged as a warning at every start). */
export const ANY_AUDIENCE = '*'

/**
 * The `iss` and `aud` a token must carry: JWT_ISSUER / JWT_AUDIENCE, else BETTER_AUTH_URL's origin (what
 * Better Auth's jwt plugin signs). `audience` undefined means JWT_AUDIENCE=* (any audience). Shared with
 * `npm run token`, so a development token carries exactly what this gateway checks.
 */
export function expectedIssuerAndAudience (env: NodeJS.ProcessEnv): { issuer: string | undefined, audience: string[] | undefined } {
  const betterAuthRaw = str(env, 'BETTER_AUTH_URL')
  const betterAuth = betterAuthRaw !== undefined ? httpUrl('BETTER_AUTH_URL', betterAuthRaw) : undefined
  const issuer = str(env, 'JWT_ISSUER') ?? betterAuth?.origin
  const audRaw = str(env, 'JWT_AUDIENCE')
  if (audRaw === undefined) {
    if (betterAuth !== undefined) return { issuer, audience: [betterAuth.origin] }
    return fail(`No token audience configured: any token signed with these keys would be accepted, whatever it was issued for (RFC 8725 §3.9). Set JWT_AUDIENCE to the audience your tokens carry (comma-separated, e.g. JWT_AUDIENCE=todo-api), or BETTER_AUTH_URL (its origin is the audience Better Auth signs), or JWT_AUDIENCE=${ANY_AUDIENCE} to accept any audience`)
  }
  const audience = audRaw.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (audience.length === 0) fail(`JWT_AUDIENCE lists no audience, got "${audRaw}"`)
  if (audience.includes(ANY_AUDIENCE)) {
    if (audience.length > 1) fail(`JWT_AUDIENCE is either ${ANY_AUDIENCE} (any audience) or a list of audiences, not both; got "${audRaw}"`)
    return { issuer, audience: undefined }
  }
  return { issuer, audience }
}

export function loadConfig (env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const port = int(env, 'PORT', 8080, 0, 65535)
  const host = str(env, 'HOST') ?? '127.0.0.1'

  const upstream = httpUrl('TASK_SERVICE_URL', str(env, 'TASK_SERVICE_URL') ?? 'http://127.0.0.1:3001')
  if ((upstream.pathname !== '/' && upstream.pathname !== '') || upstream.search !== '' || upstream.hash !== '') {
    fail(`TASK_SERVICE_URL must be an origin without a path or query (e.g. http://127.0.0.1:3001), got "${upstream.href}"`)
  }

  const publicRaw = str(env, 'PUBLIC_URL')
  let publicUrl: string | undefined
  if (publicRaw !== undefined) {
    const u = httpUrl('PUBLIC_URL', publicRaw)
    if ((u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '' || /[?#]/.test(publicRaw)) {
      fail(`PUBLIC_URL must be the gateway's public origin without a path, query or fragment (e.g. https://api.example.com), got "${publicRaw}"`)
    }
    publicUrl = u.origin
  }

  // HMAC secret: JWT_SECRET, else BETTER_AUTH_SECRET. Used as its UTF-8 bytes.
  const secretName = str(env, 'JWT_SECRET') !== undefined ? 'JWT_SECRET' : 'BETTER_AUTH_SECRET'
  const secretRaw = env[secretName] !== undefined && env[secretName] !== '' ? env[secretName] : undefined
  let secret: Buffer | undefined
  if (secretRaw !== undefined) {
    secret = Buffer.from(secretRaw, 'utf8')
    if (secret.length < 32) {
      fail(`${secretName} is ${secret.length} bytes; an HMAC secret must be at least 32 bytes (RFC 7518 §3.2). Generate one with: openssl rand -base64 48`)
    }
  }

  // Asymmetric keys: JWKS_URL, or derived from BETTER_AUTH_URL.
  const betterAuthRaw = str(env, 'BETTER_AUTH_URL')
  const betterAuth = betterAuthRaw !== undefined ? httpUrl('BETTER_AUTH_URL', betterAuthRaw) : undefined
  const jwksRaw = str(env, 'JWKS_URL')
  let jwksUrl: string | undefined
  if (jwksRaw !== undefined) jwksUrl = httpUrl('JWKS_URL', jwksRaw).href
  else if (betterAuth !== undefined) jwksUrl = betterAuth.href.replace(/\/+$/, '') + '/api/auth/jwks'

  if (secret === undefined && jwksUrl === undefined) {
    fail('No way to verify tokens: set JWT_SECRET (HS256 secret, ≥ 32 bytes), JWKS_URL, or BETTER_AUTH_URL (uses <url>/api/auth/jwks)')
  }

  const { issuer, audience } = expectedIssuerAndAudience(env)

  // Algorithm allow-list.
  const algRaw = str(env, 'JWT_ALGORITHMS')
  let hmacAlgorithms: HmacAlg[]
  let asymmetricAlgorithms: AsymmetricAlg[]
  if (algRaw === undefined) {
    hmacAlgorithms = secret !== undefined ? [...DEFAULT_HMAC_ALGS] : []
    asymmetricAlgorithms = jwksUrl !== undefined ? [...DEFAULT_ASYMMETRIC_ALGS] : []
  } else {
    hmacAlgorithms = []
    asymmetricAlgorithms = []
    for (const a of algRaw.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      if ((HMAC_ALGS as readonly string[]).includes(a)) {
        if (secret === undefined) fail(`JWT_ALGORITHMS lists ${a} but neither JWT_SECRET nor BETTER_AUTH_SECRET is set`)
        if (!hmacAlgorithms.includes(a as HmacAlg)) hmacAlgorithms.push(a as HmacAlg)
      } else if ((ASYMMETRIC_ALGS as readonly string[]).includes(a)) {
        if (jwksUrl === undefined) fail(`JWT_ALGORITHMS lists ${a} but neither JWKS_URL nor BETTER_AUTH_URL is set`)
        if (!asymmetricAlgorithms.includes(a as AsymmetricAlg)) asymmetricAlgorithms.push(a as AsymmetricAlg)
      } else {
        fail(`JWT_ALGORITHMS contains "${a}"; allowed values: ${[...HMAC_ALGS, ...ASYMMETRIC_ALGS].join(', ')}`)
      }
    }
    if (hmacAlgorithms.length === 0 && asymmetricAlgorithms.length === 0) fail('JWT_ALGORITHMS is empty; list at least one algorithm, e.g. HS256 or EdDSA')
  }

  const clockToleranceSec = int(env, 'JWT_CLOCK_TOLERANCE', 5, 0, 300)

  const jwks: JwksSettings | undefined = jwksUrl === undefined
    ? undefined
    : {
        url: jwksUrl,
        refreshMs: int(env, 'JWKS_REFRESH_MS', 300_000, 1_000, 86_400_000),
        cooldownMs: int(env, 'JWKS_COOLDOWN_MS', 2_000, 0, 600_000),
        staleMaxMs: int(env, 'JWKS_STALE_MAX_MS', 3_600_000, 0, 7 * 86_400_000),
        timeoutMs: int(env, 'JWKS_TIMEOUT_MS', 3_000, 100, 60_000)
      }

  const corsOrigins: string[] = []
  for (const o of (str(env, 'CORS_ORIGINS') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (o === '*') fail('CORS_ORIGINS cannot be "*" because credentials are allowed; list the frontend origins, e.g. http://localhost:3000')
    const u = httpUrl('CORS_ORIGINS', o)
    if (u.origin !== o.replace(/\/+$/, '')) fail(`CORS_ORIGINS entries must be bare origins like https://app.example.com, got "${o}"`)
    corsOrigins.push(u.origin)
  }

  const metricsPort = int(env, 'METRICS_PORT', DEFAULT_METRICS_PORT, 0, 65535)
  if (metricsPort !== 0 && metricsPort === port) fail(`METRICS_PORT must differ from PORT (${port}): metrics are never served on the public port; set METRICS_PORT=0 to turn them off`)
  const metricsHost = str(env, 'METRICS_HOST') ?? '127.0.0.1'
  if (/\s/.test(metricsHost)) fail(`METRICS_HOST must be a host name or IP address, got "${metricsHost}"`)

  const logLevel = (str(env, 'LOG_LEVEL') ?? 'info').toLowerCase()
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) fail(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`)

  return {
    port,
    host,
    taskServiceUrl: upstream.origin,
    publicUrl,
    jwt: { secret, jwks, issuer, audience, hmacAlgorithms, asymmetricAlgorithms, clockToleranceSec },
    verificationCacheMaxEntries: int(env, 'JWT_CACHE_MAX_ENTRIES', 10_000, 0, 1_000_000),
    corsOrigins,
    metricsPort,
    metricsHost,
    upstreamTimeoutMs: int(env, 'UPSTREAM_TIMEOUT_MS', 10_000, 1, 600_000),
    upstreamConnections: int(env, 'UPSTREAM_CONNECTIONS', 128, 1, 10_000),
    forwardAuthorization: bool(env, 'FORWARD_AUTHORIZATION', false),
    logLevel: logLevel as LogLevel,
    // At most 8 KiB: pino's destination refuses a buffer of its write size (16 KiB) or more.
    logBufferBytes: int(env, 'LOG_BUFFER_BYTES', 4096, 0, 8192),
    trustProxy: parseTrustProxy(str(env, 'TRUST_PROXY')),
    limits: loadLimitsConfig(env),
    assertionPrivateKey: assertionPrivateKey(env)
  }
}
