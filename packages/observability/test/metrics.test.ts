// The shared request metrics and the metrics listener, on their own (each service's metrics test checks them
// again through its own routes): series names and labels, the 499 rule, in-flight bookkeeping, scrape-time
// series, and what the listener answers on the wire.
import { connect, createServer } from 'node:net'
import t from 'tap'
import { Registry } from 'prom-client'
import { parseMetrics } from '../../../support/prometheus.js'
import { CLIENT_CLOSED_REQUEST, createHttpMetrics, listenMetrics, methodLabel, scrapedCounter, scrapedGauge, statusOf, withProcessMetrics, type ReplyLike } from 'observability'

async function series (registry: Registry): Promise<Map<string, number>> {
  return parseMetrics(await registry.metrics())
}

function reply (statusCode: number, elapsedMs: number, headersSent = true): ReplyLike {
  return { statusCode, elapsedTime: elapsedMs, raw: { headersSent } }
}

t.test('methodLabel: the seven methods as they are, anything else "other"', async (t) => {
  for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) t.equal(methodLabel(m), m)
  for (const m of ['get', 'PROPFIND', 'TRACE', 'CONNECT', '']) t.equal(methodLabel(m), 'other', JSON.stringify(m))
})

t.test('statusOf: 499 only when the client left before the head was sent', async (t) => {
  t.equal(CLIENT_CLOSED_REQUEST, 499)
  t.equal(statusOf(reply(200, 1, false), true), 499, 'aborted, no head sent')
  t.equal(statusOf(reply(200, 1, true), true), 200, 'aborted mid-body: the status that was sent')
  t.equal(statusOf(reply(503, 1, true), false), 503)
  t.equal(statusOf(reply(200, 1, false), false), 200, 'not aborted: the reply\'s status')
})

t.test('request series: method, route and status labels; the count is the histogram\'s; in flight by start and finish', async (t) => {
  const registry = new Registry()
  const http = createHttpMetrics(registry, { buckets: [0.01, 0.1, 1] })
  http.requestStarted()
  http.requestStarted()
  http.requestStarted()
  let m = await series(registry)
  t.equal(m.get('http_requests_in_flight'), 3)
  t.notOk([...m.keys()].some((k) => k.startsWith('http_requests_total{')), 'nothing counted before a request completes')

  http.requestCompleted({ method: 'GET' }, reply(200, 5), '/things/:id', false, true)
  http.requestCompleted({ method: 'GET' }, reply(200, 50), '/things/:id', false, true)
  http.requestCompleted({ method: 'PROPFIND' }, reply(405, 2), 'unmatched', false, true)
  http.requestCompleted({ method: 'POST' }, reply(201, 3000, false), '/things', true, false)
  m = await series(registry)
  t.equal(m.get('http_requests_total{method="GET",route="/things/:id",status_code="200"}'), 2)
  t.equal(m.get('http_requests_total{method="other",route="unmatched",status_code="405"}'), 1)
  t.equal(m.get('http_requests_total{method="POST",route="/things",status_code="499"}'), 1, 'the client left before the head')
  t.equal(m.get('http_request_duration_seconds_count{method="GET",route="/things/:id",status_code="200"}'), 2)
  t.equal(m.get('http_request_duration_seconds_bucket{le="0.01",method="GET",route="/things/:id",status_code="200"}'), 1, '5 ms')
  t.equal(m.get('http_request_duration_seconds_bucket{le="0.1",method="GET",route="/things/:id",status_code="200"}'), 2, '50 ms')
  t.equal(m.get('http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/things",status_code="499"}'), 1)
  t.equal(m.get('http_request_duration_seconds_bucket{le="1",method="POST",route="/things",status_code="499"}'), 0, '3 s is over the last bucket')
  t.equal(m.get('http_request_duration_seconds_sum{method="GET",route="/things/:id",status_code="200"}'), 0.055)
  t.equal(m.get('http_requests_in_flight'), 0, 'three started, three of them finished; the fourth was never started')
  t.notOk([...m.keys()].some((k) => k.startsWith('process_')), 'an app registry holds no process metrics of its own')
})

t.test('scraped series: read at scrape time, left as they were when there is nothing to read', async (t) => {
  const registry = new Registry()
  let source: { fetches: number, failures: number, keys: number } | undefined
  scrapedCounter(registry, {
    name: 'thing_fetches_total',
    help: 'fetches by result',
    label: 'result',
    read: () => source === undefined ? undefined : { success: source.fetches - source.failures, failure: source.failures }
  })
  scrapedGauge(registry, { name: 'thing_keys', help: 'keys held', read: () => source?.keys })
  scrapedGauge(registry, { name: 'thing_pool', help: 'pool by state', label: 'state', read: () => source === undefined ? undefined : { idle: source.keys, active: 1 } })
  let m = await series(registry)
  t.equal(m.get('thing_keys'), 0, 'an unlabelled gauge starts at 0')
  t.notOk(m.has('thing_fetches_total{result="success"}'))
  source = { fetches: 5, failures: 2, keys: 3 }
  m = await series(registry)
  t.equal(m.get('thing_fetches_total{result="success"}'), 3)
  t.equal(m.get('thing_fetches_total{result="failure"}'), 2)
  t.equal(m.get('thing_keys'), 3)
  t.equal(m.get('thing_pool{state="idle"}'), 3)
  t.equal(m.get('thing_pool{state="active"}'), 1)
  source = { fetches: 6, failures: 2, keys: 2 }
  m = await series(registry)
  t.equal(m.get('thing_fetches_total{result="success"}'), 4, 'the source\'s total, not added to the last scrape\'s')
  t.equal(m.get('thing_keys'), 2)
  source = undefined
  m = await series(registry)
  t.equal(m.get('thing_keys'), 2, 'nothing to read: the last value stays')
})

t.test('withProcessMetrics: one set of process metrics per process, merged into each app\'s output', async (t) => {
  const a = new Registry()
  const b = new Registry()
  createHttpMetrics(a, { buckets: [1] }).requestStarted()
  createHttpMetrics(b, { buckets: [1] })
  const ma = await series(withProcessMetrics(a))
  const mb = await series(withProcessMetrics(b))
  for (const m of [ma, mb]) t.ok(m.has('process_cpu_user_seconds_total') && m.has('nodejs_eventloop_lag_seconds') && m.has('nodejs_heap_size_used_bytes'), 'default process metrics')
  t.equal(ma.get('http_requests_in_flight'), 1)
  t.equal(mb.get('http_requests_in_flight'), 0, 'each app its own series')
})

interface Answer { status: number, headers: Headers, text: string }
async function fetchText (url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init)
  return { status: res.status, headers: res.headers, text: await res.text() }
}

t.test('the listener serves GET and HEAD /metrics, and nothing else', async (t) => {
  const registry = new Registry()
  createHttpMetrics(registry, { buckets: [1] }).requestStarted()
  const listener = await listenMetrics(withProcessMetrics(registry), { port: 0, host: '127.0.0.1', notFoundCode: 'no_such_route' })
  t.teardown(() => listener.close())
  t.ok(listener.port > 0, 'the bound port is reported')
  const base = `http://127.0.0.1:${listener.port}`

  const get = await fetchText(`${base}/metrics`)
  t.equal(get.status, 200)
  t.match(get.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  t.equal(get.headers.get('cache-control'), 'no-store')
  t.match(get.text, /^http_requests_in_flight 1$/m)
  t.match(get.text, /^process_cpu_user_seconds_total /m)
  t.equal((await fetchText(`${base}/metrics?name[]=x`)).status, 200, 'a query string is ignored')

  const head = await fetchText(`${base}/metrics`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.match(head.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  t.equal(head.text, '', 'no body')

  for (const path of ['/', '/metrics/', '/api/tasks', '/Metrics', '/metrics.json']) {
    const other = await fetchText(base + path)
    t.equal(other.status, 404, path)
    t.match(other.headers.get('content-type'), /^application\/json/)
    const body = JSON.parse(other.text) as { error: { code: string, message: string, requestId: string } }
    t.equal(body.error.code, 'no_such_route', 'the service\'s own code for an unknown route')
    t.equal(body.error.message, 'only /metrics is served here')
    t.match(body.error.requestId, /^[0-9a-f-]{36}$/)
  }

  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const refused = await fetchText(`${base}/metrics`, { method })
    t.equal(refused.status, 405, method)
    t.equal(refused.headers.get('allow'), 'GET, HEAD')
    t.match(JSON.parse(refused.text), { error: { code: 'method_not_allowed', message: new RegExp(`^method ${method} not allowed`) } })
  }
})

t.test('a failing collection is a JSON 500, and the listener keeps serving', async (t) => {
  const registry = new Registry()
  let broken = true
  scrapedGauge(registry, { name: 'fragile', help: 'fails while broken', read: () => { if (broken) throw new Error('source gone'); return 1 } })
  const listener = await listenMetrics(registry, { port: 0, host: '127.0.0.1', notFoundCode: 'not_found' })
  t.teardown(() => listener.close())
  const url = `http://127.0.0.1:${listener.port}/metrics`
  const failed = await fetchText(url)
  t.equal(failed.status, 500)
  t.match(JSON.parse(failed.text), { error: { code: 'internal_error', message: 'metrics collection failed' } })
  t.notMatch(failed.text, /source gone/, 'the cause is not shown to the scraper')
  broken = false
  const ok = await fetchText(url)
  t.equal(ok.status, 200)
  t.match(ok.text, /^fragile 1$/m)
})

t.test('a port that cannot be bound rejects, naming the address and the settings', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const port = (taken.address() as { port: number }).port
  await t.rejects(listenMetrics(new Registry(), { port, host: '127.0.0.1', notFoundCode: 'not_found' }),
    { message: new RegExp(`^could not listen for metrics on 127\\.0\\.0\\.1:${port} \\(METRICS_PORT, METRICS_HOST; METRICS_PORT=0 turns metrics off\\): .*EADDRINUSE`) })
  await t.rejects(listenMetrics(new Registry(), { port: 0, host: 'no-such-host.invalid', notFoundCode: 'not_found' }), { message: /^could not listen for metrics on no-such-host\.invalid:0/ })
})

t.test('close() ends open connections, idle keep-alive ones included', async (t) => {
  const listener = await listenMetrics(new Registry(), { port: 0, host: '127.0.0.1', notFoundCode: 'not_found' })
  const socket = connect(listener.port, '127.0.0.1')
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { received += chunk })
  socket.write('GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: keep-alive\r\n\r\n')
  while (!received.includes('\r\n\r\n')) await new Promise((resolve) => setTimeout(resolve, 10))
  t.match(received, /^HTTP\/1\.1 200 /)
  await listener.close()
  await closed
  t.pass('the kept-alive connection was closed by the listener')
  await t.rejects(fetch(`http://127.0.0.1:${listener.port}/metrics`), 'no longer listening')
})
