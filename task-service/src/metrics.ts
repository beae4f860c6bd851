// Prometheus metrics (prom-client): one Registry per app, so tests that build several apps in one process never
// share or collide on series. Served only by the separate metrics listener, never on the API port. The HTTP
// request series, the process metrics and the listener are the ones both services share (packages/observability);
// the task service adds its database's.
//
// Every label value comes from a closed set, so the number of series is bounded by construction:
//   route       the matched route's template ("/tasks/:id"), or "unmatched" — never the raw path or an id
//   operation   the SQL statement's verb (select, insert, update, delete, …, "other"), or "transaction"
//   outcome     ok, error (a statement the database refused), unavailable (the database is not there)
// The user id is never a label.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { createHttpMetrics, listenMetrics, PositionalHistogram, scrapedGauge, withProcessMetrics, type HttpMetrics, type MetricsListener } from 'observability'
import { Registry } from 'prom-client'
import { isUnavailableError, PostgresDatabase, type Database, type Queryable, type QueryResult } from './db.js'

const OPERATIONS = new Set(['select', 'insert', 'update', 'delete', 'with', 'begin', 'commit', 'rollback', 'create', 'alter', 'drop', 'set'])

/** Seconds; the task service answers in milliseconds, a slow database in seconds. */
export const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
export const DB_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export function operationLabel (sql: string): string {
  const m = /^\s*([A-Za-z]+)/.exec(sql)
  const verb = m?.[1]?.toLowerCase()
  return verb !== undefined && OPERATIONS.has(verb) ? verb : 'other'
}

export interface TaskServiceMetrics {
  /** This app's series, with the process metrics merged in: what /metrics serves. */
  readonly registry: Registry
  /** Starts the metrics listener for this registry (rejects when the port cannot be bound). */
  listen: (at: { port: number, host: string }) => Promise<MetricsListener>
  /** The database wrapped so that every statement is timed (the routes get this one). */
  instrument: (db: Database) => Database
}

export function createMetrics (db: Database): TaskServiceMetrics & { http: HttpMetrics } {
  const own = new Registry()
  const http = createHttpMetrics(own, { buckets: HTTP_BUCKETS })
  const queryDuration = new PositionalHistogram({
    name: 'task_service_db_query_duration_seconds',
    help: 'Database statement time (queue for a connection included), by SQL verb and outcome; "transaction" is a whole transaction',
    labelNames: ['operation', 'outcome'],
    buckets: DB_BUCKETS,
    registers: [own]
  })
  scrapedGauge(own, {
    name: 'task_service_db_info',
    help: 'The database this service uses: backend="postgres" (pg pool) or "pglite" (embedded, one connection)',
    label: 'backend',
    read: () => ({ [db.kind]: 1 })
  })
  if (db instanceof PostgresDatabase) {
    const pool = db.pool
    scrapedGauge(own, {
      name: 'task_service_db_pool_connections',
      help: 'pg pool connections: state="total" (open), "idle" (open and free), "active" (checked out)',
      label: 'state',
      read: () => ({ total: pool.totalCount, idle: pool.idleCount, active: pool.totalCount - pool.idleCount })
    })
    scrapedGauge(own, {
      name: 'task_service_db_pool_waiting_requests',
      help: 'Queries waiting for a free pg pool connection',
      read: () => pool.waitingCount
    })
    scrapedGauge(own, {
      name: 'task_service_db_pool_max_connections',
      help: 'The pg pool\'s connection limit',
      read: () => pool.options.max ?? 10
    })
  }

  const timed = async <T>(operation: string, run: () => Promise<T>): Promise<T> => {
    const start = process.hrtime.bigint()
    let outcome = 'ok'
    try {
      return await run()
    } catch (err) {
      outcome = isUnavailableError(err) ? 'unavailable' : 'error'
      throw err
    } finally {
      queryDuration.observe(Number(process.hrtime.bigint() - start) / 1e9, operation, outcome)
    }
  }
  const timedQueryable = (target: Queryable): Queryable => ({
    query: <R>(text: string, params?: unknown[]): Promise<QueryResult<R>> => timed(operationLabel(text), () => target.query<R>(text, params)),
    exec: (sql: string) => timed(operationLabel(sql), () => target.exec(sql))
  })

  const registry = withProcessMetrics(own)
  return {
    registry,
    // Any path but /metrics is answered with the task service's own code for an unknown route.
    listen: (at) => listenMetrics(registry, { ...at, notFoundCode: 'route_not_found' }),
    http,
    instrument (target) {
      const q = timedQueryable(target)
      return {
        kind: target.kind,
        query: q.query,
        exec: q.exec,
        transaction: (fn) => timed('transaction', () => target.transaction((tx) => fn(timedQueryable(tx)))),
        close: () => target.close()
      }
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Prometheus metrics of this app; undefined when METRICS_PORT=0. */
    metrics: TaskServiceMetrics | undefined
  }
}

/**
 * Request metrics for every route of `app` (registered at the root, before the routes). Each request is counted
 * once, when its response has finished or its connection closed, whichever comes first.
 */
export const metricsPlugin = fp(async (app: FastifyInstance, opts: { metrics: ReturnType<typeof createMetrics> }) => {
  const { metrics } = opts
  app.decorate('metrics', metrics)
  app.addHook('onRequest', (request, reply, done) => {
    metrics.http.requestStarted()
    let counted = false
    const count = (): void => {
      if (counted) return
      counted = true
      // writableEnded: the whole response was handed to the connection; false when the client left before.
      // routeOptions.url is the template the router matched; undefined for the not-found handler.
      metrics.http.requestCompleted(request, reply, request.routeOptions.url ?? 'unmatched', !reply.raw.writableEnded, true)
    }
    reply.raw.once('finish', count)
    reply.raw.once('close', count)
    done()
  })
}, { name: 'task-service-metrics' })
