// Configuration: read from the environment once, validated, and handed to the rest of the service as a plain object.
// This is the only module that may read process.env.
import { createPublicKey } from 'node:crypto'
import { readTracingConfig, type TracingConfig } from 'observability'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export interface TaskServiceConfig {
  /** TCP port to listen on (PORT, default 3001). */
  port: number
  /** Interface to bind (HOST, default 127.0.0.1). */
  host: string
  /** PostgreSQL connection string (DATABASE_URL). Unset → embedded PGlite under dataDir. */
  databaseUrl: string | undefined
  /** Directory for the embedded database (DATA_DIR, default ./data). Used only without databaseUrl. */
  dataDir: string
  /** pino log level (LOG_LEVEL, default info). */
  logLevel: LogLevel
  /** Port of the separate Prometheus listener (METRICS_PORT, default 9465); 0: no listener, no metrics. */
  metricsPort: number
  /** Interface the metrics listener binds (METRICS_HOST, default 127.0.0.1). */
  metricsHost: string
  /**
   * The gateway's Ed25519 public key(s), SPKI PEM (GATEWAY_ASSERTION_PUBLIC_KEY, required). One, or two while
   * the key pair is rotated: an identity assertion signed by either is accepted.
   */
  assertionPublicKeys: string[]
  /** Host header patterns this service answers (ALLOWED_HOSTS, default DEFAULT_ALLOWED_HOSTS). */
  allowedHosts: string[]
}

export const DEFAULT_METRICS_PORT = 9465

/**
 * Host names the task service answers by default, on any port: `npm start` and tests (loopback), docker compose
 * (service `task-service`) and a Kubernetes Service named `task-service` in any namespace (`*` is one DNS label).
 */
export const DEFAULT_ALLOWED_HOSTS: readonly string[] = [
  '127.0.0.1', 'localhost', '[::1]',
  'task-service', 'task-service.*', 'task-service.*.svc', 'task-service.*.svc.cluster.local'
]

const KEYS_HINT = 'make a key pair with `npm run keys` (or: openssl genpkey -algorithm ed25519 -out assertion.pem && ' +
  'openssl pkey -in assertion.pem -pubout), give the private key to the gateway as GATEWAY_ASSERTION_PRIVATE_KEY ' +
  'and the public key to the task service as GATEWAY_ASSERTION_PUBLIC_KEY'

function read (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]
  if (value === undefined) return undefined
  const trimmed = value.trim()
  return trimmed === '' ? undefined : trimmed
}

function parsePort (raw: string | undefined, name = 'PORT', def = 3001): number {
  if (raw === undefined) return def
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
    throw new Error(`${name} must be an integer between 0 and 65535, got "${raw}"`)
  }
  return Number(raw)
}

function parseHost (raw: string | undefined, name: string): string {
  const host = raw ?? '127.0.0.1'
  if (/\s/.test(host)) throw new Error(`${name} must be a host name or IP address, got "${host}"`)
  return host
}

function parseDatabaseUrl (raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new Error('DATABASE_URL must be a URL such as postgres://user:password@host:5432/dbname (or unset it to use the embedded database)')
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(`DATABASE_URL must use the postgres:// or postgresql:// scheme, got "${url.protocol}"`)
  }
  if (url.hostname === '') {
    throw new Error('DATABASE_URL must name a host, e.g. postgres://user@127.0.0.1:5432/dbname')
  }
  return raw
}

function parseLogLevel (raw: string | undefined): LogLevel {
  if (raw === undefined) return 'info'
  const level = raw.toLowerCase()
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${raw}"`)
  }
  return level as LogLevel
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[^-]*-----END \1-----/g

/**
 * The PEM blocks of an environment value. Docker env files and Kubernetes manifests often carry a PEM on one line
 * with `\n` escapes instead of newlines: both forms are accepted. Anything besides PEM blocks is an error.
 */
export function pemBlocks (name: string, raw: string): { label: string; pem: string }[] {
  const text = raw.replace(/\\r/g, '').replace(/\\n/g, '\n').replace(/\r\n/g, '\n')
  const blocks = [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1] as string, pem: m[0] }))
  if (blocks.length === 0 || text.replace(PEM_BLOCK, '').trim() !== '') {
    throw new Error(`${name} must hold PEM text (-----BEGIN … KEY----- … -----END … KEY-----, with real newlines or \\n escapes): ${KEYS_HINT}`)
  }
  return blocks
}

function parseAssertionPublicKeys (raw: string | undefined): string[] {
  const name = 'GATEWAY_ASSERTION_PUBLIC_KEY'
  if (raw === undefined) {
    throw new Error(`${name} is not set: the task service only accepts requests that carry an identity assertion signed by the gateway; ${KEYS_HINT}`)
  }
  const blocks = pemBlocks(name, raw)
  if (blocks.length > 2) throw new Error(`${name} holds ${blocks.length} keys; it takes one, or two while the gateway's key pair is rotated`)
  return blocks.map(({ label, pem }, i) => {
    const which = blocks.length > 1 ? ` (key ${i + 1})` : ''
    if (label !== 'PUBLIC KEY') {
      throw new Error(`${name}${which} must be a public key (-----BEGIN PUBLIC KEY-----), got a ${label}; the private key belongs to the gateway only`)
    }
    let type: string | undefined
    let normalized: string
    try {
      const key = createPublicKey(pem)
      type = key.asymmetricKeyType
      normalized = key.export({ type: 'spki', format: 'pem' }).toString()
    } catch {
      throw new Error(`${name}${which} is not a readable SPKI public key; ${KEYS_HINT}`)
    }
    if (type !== 'ed25519') throw new Error(`${name}${which} must be an Ed25519 key, got ${type ?? 'an unknown type'}; ${KEYS_HINT}`)
    return normalized
  })
}

const HOST_PATTERN = /^(?:\[[0-9a-f:.]+\]|(?:\*|[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)(?:\.(?:\*|[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?))*)(?::\d{1,5})?$/

function parseAllowedHosts (raw: string | undefined): string[] {
  if (raw === undefined) return [...DEFAULT_ALLOWED_HOSTS]
  const entries = raw.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '')
  if (entries.length === 0) throw new Error('ALLOWED_HOSTS is empty; list the host names this service is reached by, e.g. task-service,127.0.0.1')
  for (const entry of entries) {
    const port = /:(\d+)$/.exec(entry)?.[1]
    if (!HOST_PATTERN.test(entry) || (port !== undefined && Number(port) > 65535)) {
      throw new Error(`ALLOWED_HOSTS entries must be host names or IP addresses with an optional :port ("*" stands for one DNS label, e.g. task-service.*.svc), got "${entry}"`)
    }
  }
  return entries
}

/** Reads and validates the configuration. Throws an Error whose message says which variable to fix and how. */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): TaskServiceConfig {
  const port = parsePort(read(env, 'PORT'))
  const metricsPort = parsePort(read(env, 'METRICS_PORT'), 'METRICS_PORT', DEFAULT_METRICS_PORT)
  if (metricsPort !== 0 && metricsPort === port) {
    throw new Error(`METRICS_PORT must differ from PORT (${port}): metrics are never served on the service's own port; set METRICS_PORT=0 to turn them off`)
  }
  return {
    port,
    host: parseHost(read(env, 'HOST'), 'HOST'),
    databaseUrl: parseDatabaseUrl(read(env, 'DATABASE_URL')),
    dataDir: read(env, 'DATA_DIR') ?? './data',
    logLevel: parseLogLevel(read(env, 'LOG_LEVEL')),
    metricsPort,
    metricsHost: parseHost(read(env, 'METRICS_HOST'), 'METRICS_HOST'),
    allowedHosts: parseAllowedHosts(read(env, 'ALLOWED_HOSTS')),
    assertionPublicKeys: parseAssertionPublicKeys(read(env, 'GATEWAY_ASSERTION_PUBLIC_KEY'))
  }
}

/** Read by the tracing preload (telemetry.ts) before the app starts: the OTEL_* settings (packages/observability). */
export function loadTracingConfig (env: NodeJS.ProcessEnv = process.env): TracingConfig {
  return readTracingConfig(env, 'task-service')
}

/** A connection string fit for logs and error messages: the password is never shown. */
export function redactDatabaseUrl (databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl)
    if (url.password !== '') url.password = '***'
    url.search = ''
    return url.toString()
  } catch {
    return '(unparseable DATABASE_URL)'
  }
}
