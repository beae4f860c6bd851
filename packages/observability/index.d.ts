import type { Aggregator, MetricObjectWithValues, MetricValueWithName, OpenMetricsContentType, PrometheusContentType, Registry } from 'prom-client'

/** Status recorded for a request whose connection closed before its response head was sent (as nginx logs it). */
export declare const CLIENT_CLOSED_REQUEST: 499

/** The method label: one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, else "other". */
export declare function methodLabel (method: string): string

/** What the request metrics need of a request and its reply (a Fastify request and reply fit). */
export interface RequestLike { readonly method: string }
export interface ReplyLike {
  readonly statusCode: number
  /** Milliseconds since the request arrived. */
  readonly elapsedTime: number
  readonly raw: { readonly headersSent: boolean }
}

/** The status a finished request is recorded (and logged) with: 499 when the client left before the head was sent. */
export declare function statusOf (reply: ReplyLike, aborted: boolean): number

/** What /metrics serves: the app's own series with the process metrics (one set per process) merged in. */
export declare function withProcessMetrics (own: Registry): Registry

export interface HttpMetrics {
  /** onRequest: one more request in flight. */
  requestStarted: () => void
  /**
   * Once per request: counted under its method, `route` (a template, never a raw path) and status, its duration
   * observed; one fewer in flight when `started` (requestStarted was called for it).
   */
  requestCompleted: (request: RequestLike, reply: ReplyLike, route: string, aborted: boolean, started: boolean) => void
}

/** http_request_duration_seconds (histogram, `buckets` in seconds), http_requests_total, http_requests_in_flight in `registry`. */
export declare function createHttpMetrics (registry: Registry, options: { buckets: number[] }): HttpMetrics

export interface PositionalHistogramOptions {
  /** A Prometheus metric name. */
  name: string
  help: string
  /** At most 4; not `le`. Default: none. */
  labelNames?: readonly string[]
  /** Upper bounds, finite and increasing; +Inf is added. */
  buckets: readonly number[]
  /** The registries it is registered in (at least one). */
  registers: Array<Registry<PrometheusContentType> | Registry<OpenMetricsContentType>>
}

/**
 * A histogram exposed exactly as prom-client's Histogram is (same text, same get() rows), whose observe() takes
 * the label values positionally and allocates nothing for a series it has seen before.
 */
export declare class PositionalHistogram {
  constructor (options: PositionalHistogramOptions)
  readonly name: string
  readonly help: string
  readonly type: 'histogram'
  readonly aggregator: Aggregator
  readonly labelNames: readonly string[]
  readonly buckets: readonly number[]
  /**
   * Records `value` under the label values given in labelNames order, one per label name. Throws a TypeError when
   * `value` is not a finite number or a new series' label value is not a string, an Error for the wrong number of
   * label values.
   */
  observe (value: number, ...labelValues: string[]): void
  /** Forgets every series. */
  reset (): void
  get (): Promise<MetricObjectWithValues<MetricValueWithName<string>>>
}

/** A gauge read when scraped; `read` returning undefined leaves it as it was. */
export declare function scrapedGauge (registry: Registry, options: { name: string, help: string, read: () => number | undefined }): unknown
/** A labelled gauge read when scraped: one value per value of `label`. */
export declare function scrapedGauge (registry: Registry, options: { name: string, help: string, label: string, read: () => Record<string, number> | undefined }): unknown

/** A counter read when scraped from a source that keeps the totals itself: one total per value of `label`. */
export declare function scrapedCounter (registry: Registry, options: { name: string, help: string, label: string, read: () => Record<string, number> | undefined }): unknown

export interface MetricsListener {
  /** The bound port (useful with port 0). */
  readonly port: number
  close: () => Promise<void>
}

/**
 * Serves GET/HEAD /metrics from `registry` on its own port; any other path is a JSON 404 with `notFoundCode` (the
 * service's own code for an unknown route), any other method a 405. Rejects, with METRICS_PORT and METRICS_HOST
 * named in the message, when the port cannot be bound.
 */
export declare function listenMetrics (registry: Registry, options: { port: number, host: string, notFoundCode: string }): Promise<MetricsListener>

export interface TracingConfig {
  /** OTLP endpoint traces are exported to; undefined: tracing is off and nothing of OpenTelemetry is loaded. */
  otlpEndpoint: string | undefined
  /** service.name of the exported spans (OTEL_SERVICE_NAME, else the service's default). */
  serviceName: string
}

/** The tracing settings (OTEL_*) in `env`; throws an Error naming the variable when one is invalid. */
export declare function readTracingConfig (env: NodeJS.ProcessEnv, defaultServiceName: string): TracingConfig

/**
 * A service's tracing preload: invalid configuration → one line `<service>: invalid configuration: …` on stderr
 * and exit code 1; tracing configured → `start` runs once per process and service.
 */
export declare function preloadTracing (service: string, loadConfig: () => TracingConfig, start: (config: TracingConfig) => Promise<void>): Promise<void>

/** Where the request hook stores a request's span trace id. */
export declare const TRACE_ID: unique symbol
/** Where startTracing leaves the function that flushes and stops tracing. */
export declare const SHUTDOWN_TELEMETRY: unique symbol
/** Exports the spans still buffered and stops tracing; nothing to do when tracing is off. */
export declare function shutdownTelemetry (): Promise<void>
