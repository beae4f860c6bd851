// PositionalHistogram against prom-client's Histogram: fed the same observations, a Registry must expose the
// same text and get() must give the same rows; bad values and label values are refused; the request counter
// built on its _count rows still counts.
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { Histogram, Registry, type OpenMetricsContentType, type PrometheusContentType } from 'prom-client'
import { parseMetrics } from '../../../support/prometheus.js'
import { createHttpMetrics, PositionalHistogram, type ReplyLike } from 'observability'

const LABEL_NAMES = ['method', 'route', 'status_code', 'zone']

type AnyRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>
interface Pair<R extends AnyRegistry = AnyRegistry> { prom: Histogram, positional: PositionalHistogram, promRegistry: R, positionalRegistry: R }

function pair<R extends AnyRegistry> (labelCount: number, buckets: number[], newRegistry: () => R): Pair<R> {
  const options = { name: 'thing_duration_seconds', help: 'How long "things" take\\\nby label', labelNames: LABEL_NAMES.slice(0, labelCount), buckets }
  const promRegistry = newRegistry()
  const positionalRegistry = newRegistry()
  return {
    prom: new Histogram({ ...options, registers: [promRegistry] }),
    positional: new PositionalHistogram({ ...options, registers: [positionalRegistry] }),
    promRegistry,
    positionalRegistry
  }
}

const prometheusRegistry = (): Registry => new Registry()
function openMetricsRegistry (): Registry<OpenMetricsContentType> {
  const registry = new Registry<OpenMetricsContentType>()
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  return registry
}

function observeBoth ({ prom, positional }: Pair, labelValues: string[], value: number): void {
  prom.observe(Object.fromEntries(labelValues.map((v, i) => [LABEL_NAMES[i], v])), value)
  positional.observe(value, ...labelValues)
}

async function sameExposition (t: Test, p: Pair, what: string): Promise<void> {
  t.equal(await p.positionalRegistry.metrics(), await p.promRegistry.metrics(), `${what}: exposition text`)
  t.strictSame(await p.positional.get(), await p.prom.get(), `${what}: get()`)
}

// Label values with what the exposition must escape (quote, backslash, newline). No comma: prom-client keys a
// series by "name:value," joined, so values with commas and colons can make two tuples one series there.
const labelValue = fc.string({ unit: fc.constantFrom('a', 'Z', '0', '/', ':', '"', '\\', '\n', ' ', 'é', '{', '}', '='), maxLength: 6 })
const buckets = fc.uniqueArray(fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 8 })
  .map((bs) => bs.map((b) => Object.is(b, -0) ? 0 : b).sort((a, b) => a - b))
  .filter((bs) => bs.every((b, i) => i === 0 || b > (bs[i - 1] as number)))

function valueFor (bounds: number[]): fc.Arbitrary<number> {
  const last = bounds[bounds.length - 1] as number
  return fc.oneof(
    fc.constant(0),
    fc.constantFrom(...bounds),
    fc.constantFrom(last * 2 + 1, Number.MAX_VALUE, 1e300, Number.MIN_VALUE, -Number.MIN_VALUE, 1e-300, -1e300),
    fc.double({ noNaN: true, noDefaultInfinity: true })
  )
}

t.test('random observations over random label tuples: the same text and rows as prom-client\'s Histogram', async (t) => {
  const scenario = fc.record({ labelCount: fc.integer({ min: 0, max: 4 }), buckets, openMetrics: fc.boolean() }).chain(({ labelCount, buckets, openMetrics }) => fc.record({
    labelCount: fc.constant(labelCount),
    buckets: fc.constant(buckets),
    openMetrics: fc.constant(openMetrics),
    // A few tuples observed many times over, so that series repeat as they do in a service.
    tuples: fc.array(fc.array(labelValue, { minLength: labelCount, maxLength: labelCount }), { minLength: 1, maxLength: 6 }),
    observations: fc.array(fc.tuple(fc.nat(), valueFor(buckets)), { maxLength: 60 })
  }))
  await fc.assert(fc.asyncProperty(scenario, async ({ labelCount, buckets, openMetrics, tuples, observations }) => {
    const p = pair<AnyRegistry>(labelCount, buckets, openMetrics ? openMetricsRegistry : prometheusRegistry)
    const half = Math.floor(observations.length / 2)
    for (const [i, [pick, value]] of observations.entries()) {
      if (i === half) {
        const [a, b] = [await p.positionalRegistry.metrics(), await p.promRegistry.metrics()]
        if (a !== b) throw new Error(`text differs after ${i} observations:\n${a}\n---\n${b}`)
      }
      observeBoth(p, tuples[pick % tuples.length] as string[], value)
    }
    const [a, b] = [await p.positionalRegistry.metrics(), await p.promRegistry.metrics()]
    if (a !== b) throw new Error(`text differs:\n${a}\n---\n${b}`)
    t.strictSame(await p.positional.get(), await p.prom.get())
  }), { numRuns: 300 })
})

t.test('the gateway\'s buckets, values on every bound and past the last, merged with another registry', async (t) => {
  const bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  const p = pair(3, bounds, prometheusRegistry)
  for (const v of [0, ...bounds, 10.000001, 3600, 1e-9]) {
    observeBoth(p, ['GET', '/api/tasks/:id', '200'], v)
    observeBoth(p, ['POST', '/api/tasks', '201'], v / 3)
  }
  await sameExposition(t, p, 'observed')
  const other = new Registry()
  const text = await Registry.merge([other, p.positionalRegistry]).metrics()
  t.equal(text, await Registry.merge([new Registry(), p.promRegistry]).metrics(), 'merged: the same text')
  t.equal(parseMetrics(text).get('thing_duration_seconds_bucket{le="0.001",method="GET",route="/api/tasks/:id",status_code="200"}'), 4, '0, 1e-9, 0.0005 and 0.001 (on the bound) are ≤ 0.001')
  t.equal(parseMetrics(text).get('thing_duration_seconds_count{method="GET",route="/api/tasks/:id",status_code="200"}'), 18)
})

t.test('values that are not finite numbers: the TypeError prom-client throws, nothing recorded', async (t) => {
  const p = pair(1, [1, 2], prometheusRegistry)
  observeBoth(p, ['a'], 1.5)
  for (const bad of [Number.NaN, Infinity, -Infinity, '1', undefined, null]) {
    const promError = (() => { try { p.prom.observe({ method: 'a' }, bad as number) } catch (err) { return err } })()
    t.type(promError, TypeError, `prom-client refuses ${String(bad)}`)
    t.throws(() => p.positional.observe(bad as number, 'a'), promError as Error, `the same error for ${String(bad)}`)
    t.throws(() => p.positional.observe(bad as number, 'new'), TypeError, `and no series for ${String(bad)}`)
  }
  await sameExposition(t, p, 'after the refusals')
})

t.test('label values: one string per label name', async (t) => {
  const p = pair(2, [1], prometheusRegistry)
  t.throws(() => p.positional.observe(1, 'GET'), { message: /1 label values given for the 2 label names/ })
  t.throws(() => p.positional.observe(1, 'GET', '/x', 'extra'), { message: /3 label values given for the 2 label names/ })
  t.throws(() => p.positional.observe(1, 'GET', 200 as unknown as string), { name: 'TypeError', message: /label route must be a string, got 200/ })
  p.positional.observe(1, 'GET', '200')
  t.throws(() => p.positional.observe(1, 'GET', 200 as unknown as string), TypeError, 'a number is not the string series')
  t.equal((await p.positional.get()).values.filter((v) => v.metricName === 'thing_duration_seconds_count').length, 1, 'one series')
})

t.test('reset forgets every series, as prom-client\'s does; an unlabelled histogram shows its empty series until then', async (t) => {
  for (const labelCount of [0, 2]) {
    const p = pair(labelCount, [0.1, 1], prometheusRegistry)
    await sameExposition(t, p, `${labelCount} labels, new`)
    observeBoth(p, ['x', 'y'].slice(0, labelCount), 0.5)
    observeBoth(p, ['x', 'z'].slice(0, labelCount), 5)
    await sameExposition(t, p, `${labelCount} labels, observed`)
    p.prom.reset()
    p.positional.reset()
    await sameExposition(t, p, `${labelCount} labels, reset`)
    observeBoth(p, ['x', 'z'].slice(0, labelCount), 0.05)
    await sameExposition(t, p, `${labelCount} labels, observed after reset`)
  }
})

t.test('bad options are refused when the histogram is made', async (t) => {
  const registers = [new Registry()]
  const ok = { name: 'x_seconds', help: 'x', buckets: [1], registers }
  t.throws(() => new PositionalHistogram({ ...ok, name: 'x-seconds' }), { message: /Invalid metric name/ })
  t.throws(() => new PositionalHistogram({ ...ok, help: '' }), { message: /help/ })
  t.throws(() => new PositionalHistogram({ ...ok, labelNames: ['le'] }), { message: /le is a reserved/ })
  t.throws(() => new PositionalHistogram({ ...ok, labelNames: ['a-b'] }), { message: /invalid label names/ })
  t.throws(() => new PositionalHistogram({ ...ok, labelNames: ['a', 'a'] }), { message: /duplicate label names/ })
  t.throws(() => new PositionalHistogram({ ...ok, labelNames: ['a', 'b', 'c', 'd', 'e'] }), { message: /at most 4 label names/ })
  for (const b of [[], [2, 1], [1, 1], [1, Infinity], [Number.NaN]]) {
    t.throws(() => new PositionalHistogram({ ...ok, buckets: b }), { message: /buckets must be finite numbers in increasing order/ }, JSON.stringify(b))
  }
  t.throws(() => new PositionalHistogram({ ...ok, registers: [] }), { message: /registers/ })
  // eslint-disable-next-line no-new
  new PositionalHistogram(ok)
  t.throws(() => new PositionalHistogram(ok), { message: /already been registered/ }, 'a name twice in one registry, as prom-client refuses')
})

function reply (statusCode: number, elapsedMs: number): ReplyLike {
  return { statusCode, elapsedTime: elapsedMs, raw: { headersSent: true } }
}

t.test('http_requests_total: each series\' count of requests, over scrapes that never reset the histogram', async (t) => {
  const request = fc.record({ method: fc.constantFrom('GET', 'POST', 'PROPFIND'), route: fc.constantFrom('/a', '/a/:id', 'unmatched'), status: fc.constantFrom(200, 404, 503), ms: fc.double({ min: 0, max: 20_000, noNaN: true }) })
  await fc.assert(fc.asyncProperty(fc.array(fc.array(request, { maxLength: 20 }), { minLength: 1, maxLength: 4 }), async (batches) => {
    const registry = new Registry()
    const http = createHttpMetrics(registry, { buckets: [0.01, 0.1, 1] })
    const expected = new Map<string, number>()
    for (const batch of batches) {
      for (const r of batch) {
        http.requestCompleted({ method: r.method }, reply(r.status, r.ms), r.route, false, false)
        const key = `{method="${r.method === 'PROPFIND' ? 'other' : r.method}",route="${r.route}",status_code="${r.status}"}`
        expected.set(key, (expected.get(key) ?? 0) + 1)
      }
      const m = parseMetrics(await registry.metrics())
      for (const [labels, n] of expected) {
        if (m.get(`http_requests_total${labels}`) !== n) throw new Error(`http_requests_total${labels}: ${m.get(`http_requests_total${labels}`)}, expected ${n}`)
        if (m.get(`http_request_duration_seconds_count${labels}`) !== n) throw new Error(`count${labels} is not ${n}`)
      }
      const counted = [...m.keys()].filter((k) => k.startsWith('http_requests_total{')).length
      if (counted !== expected.size) throw new Error(`${counted} request series, expected ${expected.size}`)
    }
  }), { numRuns: 100 })
  t.pass('every scrape of 100 random request sequences counted each series\' requests')
})
