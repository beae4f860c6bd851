// The tracing bootstrap both services share: the OTEL_* settings, the preload (on only when configured, once,
// and a clean exit on bad settings), the SDK start with the shared request instrumentation, and the flush.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import Fastify from 'fastify'
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node'
import { preloadTracing, readTracingConfig, shutdownTelemetry, TRACE_ID, type TracingConfig } from 'observability'
import { fastifyInstrumentation, startTracing } from 'observability/tracing'

t.test('readTracingConfig: off unless an endpoint is set; OTLP over HTTP with protobuf only', async (t) => {
  t.same(readTracingConfig({}, 'svc'), { otlpEndpoint: undefined, serviceName: 'svc' })
  t.same(readTracingConfig({ OTEL_SERVICE_NAME: ' edge ', OTEL_EXPORTER_OTLP_ENDPOINT: ' http://collector:4318 ' }, 'svc'), { otlpEndpoint: 'http://collector:4318', serviceName: 'edge' }, 'trimmed')
  t.same(readTracingConfig({ OTEL_SERVICE_NAME: '', OTEL_EXPORTER_OTLP_ENDPOINT: '' }, 'svc'), { otlpEndpoint: undefined, serviceName: 'svc' }, 'empty is unset (as compose passes an unset variable)')
  t.equal(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b/v1/traces' }, 'svc').otlpEndpoint, 'https://b/v1/traces', 'the traces endpoint wins')
  t.equal(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' }, 'svc').otlpEndpoint, undefined, 'OTEL_SDK_DISABLED wins')
  t.equal(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'false' }, 'svc').otlpEndpoint, 'http://c:4318')
  t.equal(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }, 'svc').otlpEndpoint, 'http://c:4318')
  t.equal(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url', OTEL_SDK_DISABLED: 'true' }, 'svc').otlpEndpoint, undefined, 'nothing else is read when disabled')

  const refused: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }, /^OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL such as http:\/\/otel-collector:4318, got "not a url"$/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /^OTEL_EXPORTER_OTLP_ENDPOINT must use http or https \(OTLP over HTTP\), got "collector:"$/],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://c:4317' }, /^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must use http or https/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:secret@c:4318' }, /^OTEL_EXPORTER_OTLP_ENDPOINT must not contain credentials/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /^OTEL_EXPORTER_OTLP_PROTOCOL must be http\/protobuf \(the protocol this service exports with\), got "grpc"$/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }, /^OTEL_EXPORTER_OTLP_TRACES_PROTOCOL must be http\/protobuf/]
  ]
  for (const [env, message] of refused) t.throws(() => readTracingConfig(env, 'svc'), { message }, JSON.stringify(env))
  t.notMatch(String((() => { try { readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:secret@c:4318' }, 'svc') } catch (err) { return (err as Error).message } })()), /secret/, 'the credentials are not repeated')
})

t.test('preloadTracing: starts once when configured, never when not', async (t) => {
  const starts: TracingConfig[] = []
  const start = async (config: TracingConfig): Promise<void> => { starts.push(config) }
  await preloadTracing('preload-off', () => ({ otlpEndpoint: undefined, serviceName: 'off' }), start)
  t.same(starts, [], 'no endpoint: nothing started')
  const on = { otlpEndpoint: 'http://collector:4318', serviceName: 'on' }
  await preloadTracing('preload-on', () => on, start)
  await preloadTracing('preload-on', () => on, start)
  t.same(starts, [on], 'loaded twice, started once')
  await preloadTracing('preload-other', () => on, start)
  t.equal(starts.length, 2, 'once per service')
})

t.test('preloadTracing: invalid settings are one line on stderr and exit code 1', async (t) => {
  // A process of its own: the preload exits it. The package is plain JavaScript, so node runs this without tsx.
  const script = "import { preloadTracing, readTracingConfig } from 'observability'\n" +
    "await preloadTracing('my-service', () => readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://c' }, 'my-service'), async () => { process.stdout.write('started') })\n" +
    "process.stdout.write('went on')\n"
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('.', import.meta.url)), encoding: 'utf8', timeout: 60_000 })
  t.equal(run.status, 1)
  t.equal(run.stderr, 'my-service: invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT must use http or https (OTLP over HTTP), got "ftp:"\n')
  t.equal(run.stdout, '', 'neither started nor went on')
})

t.test('startTracing: a request span per request, its trace id on the request, flushed by shutdownTelemetry', async (t) => {
  const exporter = new InMemorySpanExporter()
  let shutDown = 0
  class Processor extends SimpleSpanProcessor {
    override async shutdown (): Promise<void> { shutDown++; await super.shutdown() }
  }
  startTracing({ otlpEndpoint: 'http://unused:4318', serviceName: 'span-test' }, [fastifyInstrumentation()], new Processor(exporter))
  const app = Fastify()
  let seen: string | undefined
  app.addHook('onRequest', async () => {})
  app.get('/things/:id', async (request) => {
    seen = (request as unknown as Record<symbol, string | undefined>)[TRACE_ID]
    return { ok: true }
  })
  t.teardown(() => app.close())
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const res = await app.inject({ method: 'GET', url: '/things/42', headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })
  t.equal(res.statusCode, 200)
  t.equal(seen, traceId, 'the span\'s trace id is on the request (the access line reads it)')
  const spans = exporter.getFinishedSpans()
  const request = spans.find((s) => s.name === 'request')
  t.ok(request, 'a request span')
  t.equal(request?.spanContext().traceId, traceId, 'the caller\'s trace continued')
  t.equal(request?.parentSpanContext?.spanId, '00f067aa0ba902b7')
  t.equal(request?.resource.attributes['service.name'], 'span-test')
  t.same(spans.filter((s) => s !== request).map((s) => s.attributes['fastify.type']), ['request-handler'], 'one span for the handler, none for the onRequest hook')
  t.equal(shutDown, 0)
  await shutdownTelemetry()
  t.equal(shutDown, 1, 'the provider and its span processor were shut down (spans still buffered are exported then)')
})
