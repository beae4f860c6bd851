// Behaviour of the harness (no timing assertions: the benchmark measures, tests check logic): statistics,
// tables, HAProxy config, profiles, and the fixed-rate client process against a local stub.
// Run with `npx tap bench/test` (the root `npm test` covers the services only).
import t from 'tap'
import { hotSpots } from '../lib/cpu-profile.js'
import { haproxyConfig, isSupportedHaproxy } from '../lib/haproxy.js'
import { latencyPercentiles, median, percentile } from '../../support/stats.js'
import { formatRatio, markdownTable } from '../lib/table.js'

t.test('median of rounds ignores non-finite values and averages the middle pair', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.equal(median([Number.NaN, 5]), 5)
  t.ok(Number.isNaN(median([])))
})

t.test('nearest-rank percentiles', async (t) => {
  const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1)
  t.equal(percentile(sorted, 50), 50)
  t.equal(percentile(sorted, 99), 99)
  t.equal(percentile(sorted, 100), 100)
  t.same(latencyPercentiles([0.3, 0.1, 0.2]), { p50: 0.2, p99: 0.3 })
})

t.test('markdown table aligns columns and marks right-aligned ones', async (t) => {
  const table = markdownTable(['name', 'n'], [['a', 10], ['bbbb', 2]], [false, true])
  t.equal(table.split('\n')[1], '|------|----:|')
  t.ok(table.includes('| bbbb |   2 |'))
  t.equal(formatRatio(2.345), '2.35×')
  t.equal(formatRatio(Number.NaN), '–')
})

t.test('HAProxy reference config does the whole job', async (t) => {
  const config = haproxyConfig({ port: 1, upstreamPort: 2, alg: 'HS256', key: 'secret', issuer: 'http://127.0.0.1:3' })
  t.match(config, 'nbthread 1')
  t.match(config, 'jwt_verify(txn.jwt_alg,"secret") -m int 1')
  t.match(config, 'var(txn.jwt_alg) -m str HS256')
  t.match(config, 'set-header x-user-id %[var(txn.bearer),jwt_payload_query(\'$.sub\')]')
  t.match(config, 'del-header authorization')
  t.match(config, 'bind 127.0.0.1:1')
  t.match(config, 'server upstream 127.0.0.1:2')
  t.ok(isSupportedHaproxy('2.6.12'))
  t.ok(isSupportedHaproxy('3.0'))
  t.notOk(isSupportedHaproxy('2.4.22'))
  t.notOk(isSupportedHaproxy(undefined))
})

t.test('CPU profile hot spots: self time per function, idle excluded', async (t) => {
  const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 })
  const { totalMs, spots } = hotSpots({
    nodes: [
      { id: 1, callFrame: frame('(idle)') },
      { id: 2, callFrame: frame('verify', 'file:///x/node_modules/jose/dist/webapi/jws.js') },
      { id: 3, callFrame: frame('') }
    ],
    samples: [1, 2, 2, 3],
    timeDeltas: [5000, 3000, 1000, 1000]
  })
  t.equal(totalMs, 5)
  t.equal(spots[0]?.name, 'verify')
  t.equal(spots[0]?.location, 'jose/dist/webapi/jws.js:1')
  t.equal(spots[0]?.selfMs, 4)
  t.equal(spots[1]?.name, '(anonymous)')
})

t.test('fixed-rate client process: warm-up (one by one, then at the rate) not recorded, every window counted, windows pooled per target', async (t) => {
  const { createServer } = await import('node:http')
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { runOpenLoopProcess } = await import('../lib/open-loop-process.js')
  const seen: Array<{ url: string | undefined, auth: string | undefined }> = []
  const server = createServer((req, res) => {
    seen.push({ url: req.url, auth: req.headers.authorization })
    res.end('{}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const dir = mkdtempSync(join(tmpdir(), 'bench-test-'))
  t.teardown(() => { server.close(); rmSync(dir, { recursive: true, force: true }) })
  const base = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`
  const results = await runOpenLoopProcess({
    ratePerSecond: 200,
    windowSeconds: 0.25,
    passes: 2,
    warmupRequests: 3,
    warmupSeconds: 0.1,
    targets: [{ id: 'a', url: `${base}/a`, tokens: ['t1', 't2'] }, { id: 'b', url: `${base}/b`, tokens: [] }]
  }, dir, undefined)
  t.same(results.map((r) => r.id), ['a', 'b'])
  for (const r of results) {
    t.equal(r.windows.length, 2, `${r.id}: one result per window`)
    t.equal(r.pooled.requests, 100, `${r.id}: 2 windows × 50 requests recorded, warm-up excluded`)
    t.equal(r.pooled.errors, 0)
    t.ok(r.pooled.p99Ms >= r.pooled.p50Ms)
  }
  t.equal(seen.filter((s) => s.url === '/a').length, 123, 'target a: 3 one-by-one + 20 at the rate (warm-up) + 100 recorded requests sent')
  t.same([...new Set(seen.filter((s) => s.url === '/a').map((s) => s.auth))].sort(), ['Bearer t1', 'Bearer t2'], 'tokens used round-robin')
  t.same([...new Set(seen.filter((s) => s.url === '/b').map((s) => s.auth))], [undefined], 'no tokens: no Authorization header')
})
