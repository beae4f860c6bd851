// Prometheus metrics (prom-client): one Registry per app, so tests that build several apps in one process never
// share or collide on series. Served only by the separate listener in metrics-server.ts, never on the API port.
//
// Every label value comes from a closed set, so the number of series is bounded by construction:
//   method      GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, or "other"
//   route       the matched route's template ("/tasks/:id"), or "unmatched" — never the raw path or an id
//   status_code the three-digit status
//   operation   the SQL statement's verb (select, insert, update, delete, …, "other"), or "transaction"
//   outcome     ok, error (a statement the database refused), unavailable (the database is not there)
// The user id is never a label.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { isUnavailableError, PostgresDatabase, type Database, type Queryable, type QueryResult } from './db.js'

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
const OPERATIONS = new Set(['select', 'insert', 'update', 'delete', 'with', 'begin', 'commit', 'rollback', 'create', 'alter', 'drop', 'set'])

/** Seconds; the task service answers in milliseconds, a slow database in seconds. */
export const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
export const DB_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

// Process metrics (CPU, memory, event loop, GC, handles) describe the process, not an app: one set per
// process, in a registry of their own that each app's /metrics merges in. (collectDefaultMetrics per app
// would start an event-loop monitor and a GC observer for every app a test builds.)
let processRegistry: Registry | undefined
function processMetrics (): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

export function methodLabel (method: string): string {
  return METHODS.has(method) ? method : 'other'
}

export function operationLabel (sql: string): string {
  const m = /^\s*([A-Za-z]+)/.exec(sql)
  const verb = m?.[1]?.toLowerCase()
  return verb !== undefined && OPERATIONS.has(verb) ? verb : 'other'
}

export interface TaskServiceMetrics {
  /** This app's series, with the process metrics merged in: what /metrics serves. */
  readonly registry: Registry
  /** The database wrapped so that every statement is timed (the routes get this one). */
  instrument: (db: Database) => Database
}

/** Status recorded for a request whose connection closed before its response was finished (as nginx logs it). */
export const CLIENT_CLOSED_REQUEST = 499

export function createMetrics (db: Database): TaskServiceMetrics & { observeRequest: (request: FastifyRequest, reply: FastifyReply, aborted: boolean) => void, inFlight: Gauge } {
  const own = new Registry()
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [own]
  })
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from the request arriving to the response being sent, by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: HTTP_BUCKETS,
    registers: [own]
  })
  const inFlight = new Gauge({
    name: 'http_requests_in_flight',
    help: 'Requests received whose response has not finished yet',
    registers: [own]
  })
  const queryDuration = new Histogram({
    name: 'task_service_db_query_duration_seconds',
    help: 'Database statement time (queue for a connection included), by SQL verb and outcome; "transaction" is a whole transaction',
    labelNames: ['operation', 'outcome'] as const,
    buckets: DB_BUCKETS,
    registers: [own]
  })
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'task_service_db_info',
    help: 'The database this service uses: backend="postgres" (pg pool) or "pglite" (embedded, one connection)',
    labelNames: ['backend'] as const,
    registers: [own],
    collect () { this.set({ backend: db.kind }, 1) }
  })
  if (db instanceof PostgresDatabase) {
    const pool = db.pool
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'task_service_db_pool_connections',
      help: 'pg pool connections: state="total" (open), "idle" (open and free), "active" (checked out)',
      labelNames: ['state'] as const,
      registers: [own],
      collect () {
        this.set({ state: 'total' }, pool.totalCount)
        this.set({ state: 'idle' }, pool.idleCount)
        this.set({ state: 'active' }, pool.totalCount - pool.idleCount)
      }
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'task_service_db_pool_waiting_requests',
      help: 'Queries waiting for a free pg pool connection',
      registers: [own],
      collect () { this.set(pool.waitingCount) }
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'task_service_db_pool_max_connections',
      help: 'The pg pool\'s connection limit',
      registers: [own],
      collect () { this.set(pool.options.max ?? 10) }
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
      queryDuration.observe({ operation, outcome }, Number(process.hrtime.bigint() - start) / 1e9)
    }
  }
  const timedQueryable = (target: Queryable): Queryable => ({
    query: <R>(text: string, params?: unknown[]): Promise<QueryResult<R>> => timed(operationLabel(text), () => target.query<R>(text, params)),
    exec: (sql: string) => timed(operationLabel(sql), () => target.exec(sql))
  })

  return {
    registry: Registry.merge([processMetrics(), own]),
    inFlight,
    instrument (target) {
      const q = timedQueryable(target)
      return {
        kind: target.kind,
        query: q.query,
        exec: q.exec,
        transaction: (fn) => timed('transaction', () => target.transaction((tx) => fn(timedQueryable(tx)))),
        close: () => target.close()
      }
    },
    observeRequest (request, reply, aborted) {
      const labels = {
        method: methodLabel(request.method),
        // routeOptions.url is the template the router matched; undefined for the not-found handler.
        route: request.routeOptions.url ?? 'unmatched',
        status_code: String(aborted ? CLIENT_CLOSED_REQUEST : reply.statusCode)
      }
      requests.inc(labels)
      duration.observe(labels, reply.elapsedTime / 1000)
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
    metrics.inFlight.inc()
    let counted = false
    const count = (): void => {
      if (counted) return
      counted = true
      metrics.inFlight.dec()
      // writableEnded: the whole response was handed to the connection; false when the client left before.
      metrics.observeRequest(request, reply, !reply.raw.writableEnded)
    }
    reply.raw.once('finish', count)
    reply.raw.once('close', count)
    done()
  })
}, { name: 'task-service-metrics' })
