// W3C trace context without OpenTelemetry: which traceparent values are continued, what is sent on, and the
// configuration of metrics and tracing (METRICS_*, OTEL_*).
import t from 'tap'
import { continueTrace, newSpanId, newTraceId, parseTraceparent } from '../src/trace-context.js'
import { loadConfig, loadTracingConfig } from '../src/config.js'
import { routeTemplate } from '../src/metrics.js'
import { request } from 'undici'
import { ASSERTION_ENV, AUDIENCE, bearer, SECRET, signHs } from '../../support/tokens.js'
import { startGateway } from '../../support/gateway.js'
import { startUpstream } from './helpers/upstream.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'
const OUT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/

t.test('parseTraceparent follows the specification', async (t) => {
  t.same(parseTraceparent(`00-${TRACE}-${PARENT}-01`), { traceId: TRACE, parentId: PARENT, sampled: true })
  t.same(parseTraceparent(`00-${TRACE}-${PARENT}-00`), { traceId: TRACE, parentId: PARENT, sampled: false })
  t.same(parseTraceparent(`00-${TRACE}-${PARENT}-03`), { traceId: TRACE, parentId: PARENT, sampled: true }, 'unknown flags: only the sampled bit is read')
  t.same(parseTraceparent(`cc-${TRACE}-${PARENT}-01-what-the-future-adds`), { traceId: TRACE, parentId: PARENT, sampled: true }, 'a later version may append fields')
  const invalid = [
    undefined, '', 'garbage', [`00-${TRACE}-${PARENT}-01`, `00-${TRACE}-${PARENT}-01`],
    `00-${TRACE}-${PARENT}-01, 00-${TRACE}-${PARENT}-01`, // two headers, joined by Node
    `00-${TRACE}-${PARENT}-01-extra`, // version 00 has exactly four fields
    `ff-${TRACE}-${PARENT}-01`, // version ff is invalid
    `00-${TRACE.toUpperCase()}-${PARENT}-01`, // upper-case hex
    `00-${'0'.repeat(32)}-${PARENT}-01`, `00-${TRACE}-${'0'.repeat(16)}-01`, // all-zero ids
    `00-${TRACE.slice(1)}-${PARENT}-01`, `00-${TRACE}-${PARENT}-1`, `00-${TRACE}-${PARENT}-0g`,
    ` 00-${TRACE}-${PARENT}-01`
  ]
  for (const v of invalid) t.equal(parseTraceparent(v), undefined, JSON.stringify(v))
})

t.test('continueTrace: the client\'s trace with a new parent id, or a new sampled trace', async (t) => {
  const c = continueTrace(`00-${TRACE}-${PARENT}-01`, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7')
  t.equal(c.traceId, TRACE)
  const m = OUT.exec(c.traceparent)
  t.ok(m, c.traceparent)
  t.equal(m?.[1], TRACE, 'same trace')
  t.not(m?.[2], PARENT, 'a new parent id: the gateway\'s hop')
  t.equal(m?.[3], '01', 'sampled stays sampled')
  t.equal(c.tracestate, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7', 'tracestate passed on')
  t.equal(OUT.exec(continueTrace(`00-${TRACE}-${PARENT}-00`, undefined).traceparent)?.[3], '00', 'not sampled stays not sampled')
  t.equal(continueTrace(`01-${TRACE}-${PARENT}-01-x`, undefined).traceparent.slice(0, 3), '00-', 'sent as version 00, the version this gateway speaks')

  const fresh = continueTrace('garbage', 'congo=t61rcWkgMzE')
  t.match(fresh.traceparent, OUT)
  t.equal(fresh.traceparent.slice(3, 35), fresh.traceId)
  t.not(fresh.traceId, TRACE)
  t.equal(fresh.traceparent.slice(-2), '01', 'a new trace is sampled')
  t.equal(fresh.tracestate, undefined, 'tracestate without a valid traceparent is dropped')
  t.equal(continueTrace(`00-${TRACE}-${PARENT}-01`, 'a=1\u0000').tracestate, undefined, 'a tracestate with control characters is dropped')
  t.equal(continueTrace(`00-${TRACE}-${PARENT}-01`, 'a=' + 'x'.repeat(600)).tracestate, undefined, 'an over-long tracestate is dropped')
})

t.test('generated ids are well-formed and distinct', async (t) => {
  const traces = new Set<string>()
  const spans = new Set<string>()
  for (let i = 0; i < 10_000; i++) {
    const tr = newTraceId()
    const sp = newSpanId()
    if (!/^[0-9a-f]{32}$/.test(tr) || !/^[0-9a-f]{16}$/.test(sp)) t.fail(`malformed: ${tr} ${sp}`)
    traces.add(tr)
    spans.add(sp)
  }
  t.equal(traces.size, 10_000)
  t.equal(spans.size, 10_000)
})

t.test('routeTemplate: the route table\'s template, by the same normalization as authorization', async (t) => {
  const cases: Array<[string, string]> = [
    ['/api/tasks', '/api/tasks'],
    ['/api/tasks?limit=5', '/api/tasks'],
    ['/api/tasks/3f1c0000-0000-4000-8000-000000000000', '/api/tasks/:id'],
    ['/api/tasks/abc/complete', '/api/tasks/:id/complete'],
    ['/api/alice/tasks', '/api/:user_id/tasks'],
    ['/api/alice/tasks/abc', '/api/:user_id/tasks/:id'],
    ['/api/alice/tasks/abc/complete?x=1', '/api/:user_id/tasks/:id/complete'],
    ['//api//tasks/./abc/', '/api/tasks/:id'],
    ['/api/x/../tasks/abc', '/api/tasks/:id'],
    ['/api/tasks/abc/other', 'unmatched'],
    ['/api/tasks/..abc', 'unmatched'],
    ['/api/tasks/%2f', 'unmatched'],
    ['/api/tasks/%zz', 'unmatched'],
    ['/api', 'unmatched'],
    ['/', 'unmatched'],
    ['/admin/secret', 'unmatched'],
    ['*', 'unmatched'],
    ['http://evil/api/tasks', 'unmatched']
  ]
  for (const [url, template] of cases) t.equal(routeTemplate(url), template, url)
})

t.test('METRICS_PORT / METRICS_HOST', async (t) => {
  const d = loadConfig({ ...ASSERTION_ENV, JWT_AUDIENCE: AUDIENCE, JWT_SECRET: SECRET })
  t.equal(d.metricsPort, 9464)
  t.equal(d.metricsHost, '127.0.0.1')
  const c = loadConfig({ ...ASSERTION_ENV, JWT_AUDIENCE: AUDIENCE, JWT_SECRET: SECRET, METRICS_PORT: '9100', METRICS_HOST: '0.0.0.0' })
  t.equal(c.metricsPort, 9100)
  t.equal(c.metricsHost, '0.0.0.0')
  t.equal(loadConfig({ ...ASSERTION_ENV, JWT_AUDIENCE: AUDIENCE, JWT_SECRET: SECRET, METRICS_PORT: '0' }).metricsPort, 0, '0 turns metrics off')
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_AUDIENCE: AUDIENCE, JWT_SECRET: SECRET, METRICS_PORT: 'ninety' }), /^METRICS_PORT must be a whole number between 0 and 65535, got "ninety"$/)
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_AUDIENCE: AUDIENCE, JWT_SECRET: SECRET, METRICS_PORT: '70000' }), /^METRICS_PORT must be a whole number/)
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_AUDIENCE: AUDIENCE, JWT_SECRET: SECRET, PORT: '9000', METRICS_PORT: '9000' }), /^METRICS_PORT must differ from PORT \(9000\)/)
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_AUDIENCE: AUDIENCE, JWT_SECRET: SECRET, METRICS_HOST: 'a host' }), /^METRICS_HOST must be a host name or IP address/)
})

t.test('tracing: on only with an OTLP endpoint over HTTP/protobuf', async (t) => {
  t.same(loadTracingConfig({}), { otlpEndpoint: undefined, serviceName: 'gateway' })
  t.same(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SERVICE_NAME: 'edge' }), { otlpEndpoint: 'http://collector:4318', serviceName: 'edge' })
  t.equal(loadTracingConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://c/v1/traces' }).otlpEndpoint, 'https://c/v1/traces')
  t.equal(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' }).otlpEndpoint, undefined)
  t.throws(() => loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), /^OTEL_EXPORTER_OTLP_ENDPOINT must use http or https/)
  t.throws(() => loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), /^OTEL_EXPORTER_OTLP_PROTOCOL must be http\/protobuf/)
})

t.test('the task service receives the gateway\'s trace context, never the client\'s as sent', async (t) => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway({ TASK_SERVICE_URL: up.url })
  t.teardown(() => gw.close())
  const auth = bearer(await signHs({ sub: 'alice' }))
  const sent = async (headers: Record<string, string | string[]>): Promise<Record<string, string | string[] | undefined>> => {
    const before = up.tasks().length
    const res = await request(gw.url + '/api/tasks', { headers: { ...auth, ...headers } })
    t.equal(res.statusCode, 200)
    await res.body.dump()
    return up.tasks()[before]?.headers ?? {}
  }
  let h = await sent({ traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'congo=t61rcWkgMzE' })
  t.equal(String(h.traceparent).slice(3, 35), TRACE, 'same trace')
  t.not(String(h.traceparent).slice(36, 52), PARENT, 'the gateway\'s hop as the parent')
  t.match(h.traceparent, OUT)
  t.equal(h.tracestate, 'congo=t61rcWkgMzE')
  h = await sent({})
  t.match(h.traceparent, OUT, 'a new trace')
  t.equal(h.tracestate, undefined)
  h = await sent({ traceparent: [`00-${TRACE}-${PARENT}-01`, `00-${TRACE}-${PARENT}-01`], tracestate: 'a=1' })
  t.match(h.traceparent, OUT)
  t.not(String(h.traceparent).slice(3, 35), TRACE, 'two traceparent headers: a new trace')
  t.equal(h.tracestate, undefined, 'and no tracestate')
})
