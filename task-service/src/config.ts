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
}

function read (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]
  if (value === undefined) return undefined
  const trimmed = value.trim()
  return trimmed === '' ? undefined : trimmed
}

function parsePort (raw: string | undefined): number {
  if (raw === undefined) return 3001
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
    throw new Error(`PORT must be an integer between 0 and 65535, got "${raw}"`)
  }
  return Number(raw)
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
  const host = read(env, 'HOST') ?? '127.0.0.1'
  if (/\s/.test(host)) throw new Error(`HOST must be a host name or IP address, got "${host}"`)
  return {
    port: parsePort(read(env, 'PORT')),
    host,
    databaseUrl: parseDatabaseUrl(read(env, 'DATABASE_URL')),
    dataDir: read(env, 'DATA_DIR') ?? './data',
    logLevel: parseLogLevel(read(env, 'LOG_LEVEL'))
  }
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
