// Behaviour of the harness's pure parts (no timing assertions: the benchmark measures, tests check logic).
// Run with `npx tap bench/test` (the root `npm test` covers the services only).
import t from 'tap'
import { hotSpots } from '../lib/cpu-profile.js'
import { haproxyConfig, isSupportedHaproxy } from '../lib/haproxy.js'
import { latencyPercentiles, median, percentileOfSorted } from '../lib/stats.js'
import { formatRatio, markdownTable } from '../lib/table.js'

t.test('median of rounds ignores non-finite values and averages the middle pair', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.equal(median([Number.NaN, 5]), 5)
  t.ok(Number.isNaN(median([])))
})

t.test('nearest-rank percentiles', async (t) => {
  const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1)
  t.equal(percentileOfSorted(sorted, 50), 50)
  t.equal(percentileOfSorted(sorted, 99), 99)
  t.equal(percentileOfSorted(sorted, 100), 100)
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
  t.match(config, `jwt_verify(txn.jwt_alg,"secret") -m int 1`)
  t.match(config, `var(txn.jwt_alg) -m str HS256`)
  t.match(config, `set-header x-user-id %[var(txn.bearer),jwt_payload_query('$.sub')]`)
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
