// Prometheus metrics both services keep (prom-client): the HTTP request series, the process metrics, and
// series computed when scraped. Each app has a Registry of its own (tests build several apps in one process);
// the service adds its own series to it.
//
// Label values come from closed sets only, so the number of series is bounded by construction:
//   method      GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, or "other"
//   route       a route template the service names (never a raw path, an id or a user), or "unmatched"
//   status_code the three-digit status (499: the client left before any of its response was sent)
// Per request the cost is one histogram observation and two integer increments: the request counter is the
// histogram's count and the in-flight gauge the difference of the increments, both made at scrape time.
// The histogram is a PositionalHistogram (histogram.js): one Map lookup per label and no allocation per
// observation, where prom-client's Histogram validates and joins the labels of every observation; the Registry
// exposes it byte-for-byte as it would prom-client's.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import { PositionalHistogram } from './histogram.js'

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/** Status recorded for a request whose connection closed before its response head was sent (as nginx logs it). */
export const CLIENT_CLOSED_REQUEST = 499

export function methodLabel (method) {
  return METHODS.has(method) ? method : 'other'
}

/** The status a finished request is recorded with: 499 when the client left before the head was sent. */
export function statusOf (reply, aborted) {
  return aborted && !reply.raw.headersSent ? CLIENT_CLOSED_REQUEST : reply.statusCode
}

// Process metrics describe the process, not an app: one set per process, in a registry of their own that each
// app's output merges in (collectDefaultMetrics per app would start an event-loop monitor and a GC observer for
// every app a test builds).
let processRegistry
function processMetrics () {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/** What /metrics serves: the app's own series with the process metrics merged in. */
export function withProcessMetrics (own) {
  return Registry.merge([processMetrics(), own])
}

export function createHttpMetrics (registry, { buckets }) {
  const duration = new PositionalHistogram({
    name: 'http_request_duration_seconds',
    help: 'Time from the request arriving to its response being sent, by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets,
    registers: [registry]
  })
  // eslint-disable-next-line no-new
  new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'],
    registers: [registry],
    async collect () {
      const { values } = await duration.get()
      this.reset()
      for (const v of values) if (v.metricName === 'http_request_duration_seconds_count') this.inc(v.labels, v.value)
    }
  })
  let started = 0
  let finished = 0
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'http_requests_in_flight',
    help: 'Requests received whose response has not finished yet',
    registers: [registry],
    collect () { this.set(started - finished) }
  })
  return {
    requestStarted () { started++ },
    requestCompleted (request, reply, route, aborted, wasStarted) {
      if (wasStarted) finished++
      duration.observe(reply.elapsedTime / 1000, methodLabel(request.method), route, String(statusOf(reply, aborted)))
    }
  }
}

/** A gauge read when scraped: `read` gives the value, or one per `label` value; undefined leaves it as it was. */
export function scrapedGauge (registry, { name, help, label, read }) {
  return new Gauge({
    name,
    help,
    labelNames: label === undefined ? [] : [label],
    registers: [registry],
    collect () {
      const value = read()
      if (value === undefined) return
      if (typeof value === 'number') this.set(value)
      else for (const [v, n] of Object.entries(value)) this.set({ [label]: v }, n)
    }
  })
}

/** A counter whose totals, one per `label` value, are read when scraped from a source that counts them itself. */
export function scrapedCounter (registry, { name, help, label, read }) {
  return new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect () {
      const totals = read()
      if (totals === undefined) return
      this.reset()
      for (const [v, n] of Object.entries(totals)) this.inc({ [label]: v }, n)
    }
  })
}
