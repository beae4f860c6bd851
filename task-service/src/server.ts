// Entry point: config → database → migrations → listen; graceful shutdown on SIGTERM/SIGINT.
// Any failure before listening prints one line on stderr and exits with code 1.
// First: starts tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set, before anything it instruments is loaded.
import './telemetry.js'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { shutdownTelemetry, type MetricsListener } from 'observability'
import { buildApp } from './app.js'
import { loadConfig, redactDatabaseUrl, type TaskServiceConfig } from './config.js'
import { runMigrations } from './migrate.js'

/** How long in-flight requests get to finish after SIGTERM/SIGINT before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10000

function fail (message: string): never {
  process.stderr.write(`task-service: ${message}\n`)
  process.exit(1)
}

function reason (err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return reason(err.errors[0])
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? err.cause : undefined
    const code = (cause as { code?: unknown } | undefined)?.code ?? (err as { code?: unknown }).code
    const message = cause?.message || err.message || err.name
    return typeof code === 'string' && !message.includes(code) ? `${code} ${message}` : message
  }
  return String(err)
}

function where (config: TaskServiceConfig): string {
  return config.databaseUrl !== undefined
    ? `PostgreSQL at ${redactDatabaseUrl(config.databaseUrl)} (DATABASE_URL)`
    : `the embedded database in ${config.dataDir} (DATA_DIR)`
}

async function main (): Promise<void> {
  let config: TaskServiceConfig
  try {
    config = loadConfig()
  } catch (err) {
    fail(`invalid configuration: ${reason(err)}`)
  }

  let app: FastifyInstance
  try {
    app = await buildApp(config)
  } catch (err) {
    fail(`cannot open ${where(config)}: ${reason(err)}`)
  }

  try {
    const applied = await runMigrations(app.db)
    app.log.info({ applied, database: app.db.kind }, applied.length > 0 ? 'migrations applied' : 'schema up to date')
  } catch (err) {
    await app.close().catch(() => undefined)
    fail(`cannot use ${where(config)}: ${reason(err)}`)
  }

  // Metrics first: a metrics port that cannot be bound stops the start before the API port is ever open.
  let metricsListener: MetricsListener | undefined
  if (app.metrics !== undefined) {
    try {
      metricsListener = await app.metrics.listen({ port: config.metricsPort, host: config.metricsHost })
    } catch (err) {
      await app.close().catch(() => undefined)
      fail((err as Error).message)
    }
  }

  closeWithGrace({ delay: SHUTDOWN_GRACE_MS, logger: false }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'closing after an unexpected error')
    else app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    await app.close()
    await metricsListener?.close()
    await shutdownTelemetry()
  })

  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    await app.close().catch(() => undefined)
    await metricsListener?.close()
    fail(`cannot listen on ${config.host}:${config.port}: ${reason(err)}`)
  }
  if (metricsListener !== undefined) {
    app.log.info({ metrics: `http://${config.metricsHost}:${metricsListener.port}/metrics` }, 'metrics listener started')
  }
}

await main()
