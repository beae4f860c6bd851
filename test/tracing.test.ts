// Traces across both services, in one process with an in-memory exporter: one request through the gateway is
// one trace — the client's continued, or a new one — whose task-service span is a child of the gateway's
// request span (and, on PostgreSQL, whose queries are children of the task service's), and both services'
// access lines carry its trace id. The instrumentations are the ones each service's tracing.ts starts.
import http from 'node:http'
import t from 'tap'
import { registerInstrumentations } from '@opentelemetry/instrumentation'
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node'
import { gatewayInstrumentations } from '../gateway/src/tracing.js'
import { patchPg, pgInstrumentation } from '../task-service/src/tracing.js'
import { BACKEND } from '../task-service/test/helpers.js'
import { startStack } from '../support/stack.js'
import { mintDevToken, SECRET } from '../support/tokens.js'

const SERVER = 1 // SpanKind.SERVER

const exporter = new InMemorySpanExporter()
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
provider.register()
// @fastify/otel instruments every Fastify instance made from now on — both services here — so it is
// registered once (the gateway's list holds it); the task service adds its pg instrumentation.
registerInstrumentations({ instrumentations: [...gatewayInstrumentations(), pgInstrumentation()], tracerProvider: provider })
patchPg()
t.teardown(() => provider.shutdown())

const gatewayLines: Array<Record<string, unknown>> = []
const serviceLines: Array<Record<string, unknown>> = []
const collect = (into: Array<Record<string, unknown>>) => ({ write: (line: string) => { into.push(JSON.parse(line) as Record<string, unknown>) } })

const { gateway } = await startStack(t, {
  taskService: { config: { logLevel: 'info' }, logStream: collect(serviceLines) },
  gatewayEnv: { LOG_LEVEL: 'info', LOG_BUFFER_BYTES: '0' },
  gateway: { logStream: collect(gatewayLines) }
})
const token = await mintDevToken({ secret: SECRET, subject: 'tracer', ttlSeconds: 300 })

/** node:http on purpose: no instrumentation touches the test's own requests. */
async function get (path: string, headers: Record<string, string>): Promise<{ status: number, requestId: string }> {
  return await new Promise((resolve, reject) => {
    const req = http.get(gateway.url + path, { headers }, (res) => {
      res.resume()
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, requestId: String(res.headers['x-request-id']) }) })
    })
    req.on('error', reject)
  })
}

async function spansOf (traceId: string, count: number): Promise<ReadableSpan[]> {
  const end = Date.now() + 10_000
  for (;;) {
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId)
    if (spans.length >= count || Date.now() > end) return spans
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function requestSpan (spans: ReadableSpan[], path: string): ReadableSpan | undefined {
  return spans.find((s) => s.kind === SERVER && s.name === 'request' && String(s.attributes['url.path']).split('?')[0] === path)
}

function accessLine (lines: Array<Record<string, unknown>>, reqId: string): Record<string, unknown> | undefined {
  return lines.find((l) => l.msg === 'request completed' && l.reqId === reqId)
}

t.test(`a client's trace is continued through both services (${BACKEND})`, async (t) => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const clientSpan = '00f067aa0ba902b7'
  const res = await get('/api/tasks', { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${clientSpan}-01`, tracestate: 'vendor=opaque' })
  t.equal(res.status, 200)
  const spans = await spansOf(traceId, BACKEND === 'postgres' ? 5 : 4)
  const gw = requestSpan(spans, '/api/tasks')
  const ts = requestSpan(spans, '/tasks')
  t.ok(gw, 'the gateway\'s request span')
  t.ok(ts, 'the task service\'s request span')
  t.equal(gw?.parentSpanContext?.spanId, clientSpan, 'the gateway continues the client\'s span')
  t.equal(ts?.parentSpanContext?.spanId, gw?.spanContext().spanId, 'the task service continues the gateway\'s request span')
  t.equal(gw?.attributes['http.response.status_code'], 200)
  if (BACKEND === 'postgres') {
    const ids = new Set(spans.map((s) => s.spanContext().spanId))
    const queries = spans.filter((s) => s.name.startsWith('pg.query'))
    t.ok(queries.length >= 1, 'the list query has its span')
    t.ok(queries.every((q) => ids.has(q.parentSpanContext?.spanId ?? '')), 'inside the same trace')
    t.notOk(queries.some((q) => JSON.stringify(q.attributes).includes('tracer')), 'no query parameter (the user id) recorded')
  }
  t.equal(accessLine(gatewayLines, res.requestId)?.traceId, traceId, 'the gateway\'s access line')
  t.equal(accessLine(serviceLines, res.requestId)?.traceId, traceId, 'the task service\'s access line')
})

t.test('without a traceparent the gateway begins a trace, which the task service continues', async (t) => {
  exporter.reset()
  const res = await get('/api/tasks', { authorization: `Bearer ${token}`, traceparent: '00-not-a-valid-traceparent' })
  t.equal(res.status, 200)
  const traceId = accessLine(gatewayLines, res.requestId)?.traceId as string
  t.match(traceId, /^[0-9a-f]{32}$/)
  t.equal(accessLine(serviceLines, res.requestId)?.traceId, traceId, 'the same trace id in both access lines')
  const spans = await spansOf(traceId, 4)
  const gw = requestSpan(spans, '/api/tasks')
  const ts = requestSpan(spans, '/tasks')
  t.ok(gw && ts, 'both request spans in the one trace')
  t.equal(gw?.parentSpanContext, undefined, 'the gateway\'s span is the root')
  t.equal(ts?.parentSpanContext?.spanId, gw?.spanContext().spanId)
  t.same(new Set(exporter.getFinishedSpans().map((s) => s.spanContext().traceId)), new Set([traceId]), 'no other trace')
})

t.test('a refused request is one gateway span, and its access line has the trace id', async (t) => {
  exporter.reset()
  const res = await get('/api/tasks', {})
  t.equal(res.status, 401)
  const traceId = accessLine(gatewayLines, res.requestId)?.traceId as string
  t.match(traceId, /^[0-9a-f]{32}$/)
  const spans = await spansOf(traceId, 1)
  t.equal(requestSpan(spans, '/api/tasks')?.attributes['http.response.status_code'], 401)
  t.notOk(spans.some((s) => s.attributes['url.path'] === '/tasks'), 'nothing reached the task service')
})
