// Configuration: read from the environment once, validated, and handed to the rest of the service as a plain object.
// This is the only module that may read process.env.

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
}

/** Read by the tracing preload (telemetry.ts) before the app starts; see loadTracingConfig(). */
export interface TracingConfig {
  /** OTLP endpoint traces are exported to; undefined: tracing is off and nothing of OpenTelemetry is loaded. */
  otlpEndpoint: string | undefined
  /** service.name of the exported spans (OTEL_SERVICE_NAME, default task-service). */
  serviceName: string
}

export const DEFAULT_METRICS_PORT = 9465

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
    metricsHost: parseHost(read(env, 'METRICS_HOST'), 'METRICS_HOST')
  }
}

/**
 * Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set and
 * OTEL_SDK_DISABLED is not "true". The OpenTelemetry exporter reads the rest of its OTEL_* variables itself.
 */
export function loadTracingConfig (env: NodeJS.ProcessEnv = process.env): TracingConfig {
  const serviceName = read(env, 'OTEL_SERVICE_NAME') ?? 'task-service'
  if (read(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return { otlpEndpoint: undefined, serviceName }
  const name = read(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT'
  const raw = read(env, name)
  if (raw === undefined) return { otlpEndpoint: undefined, serviceName }
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new Error(`${name} must be an http(s) URL such as http://otel-collector:4318, got "${raw}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`${name} must use http or https (OTLP over HTTP), got "${url.protocol}"`)
  }
  return { otlpEndpoint: raw, serviceName }
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
