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

t.test('reference servers run as plain node on their compiled JavaScript: the upstream answers, the floor verifies and forwards', async (t) => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { createHmac } = await import('node:crypto')
  const { startNodeFloorProxy, startUpstream } = await import('../lib/upstream.js')
  const { stopProcess } = await import('../../support/processes.js')
  const { UPSTREAM_BODY } = await import('../servers/upstream-body.js')
  const dir = mkdtempSync(join(tmpdir(), 'bench-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const upstream = await startUpstream('upstream', dir, undefined)
  t.teardown(() => stopProcess(upstream.managed))
  const secret = 'x'.repeat(64)
  const floor = await startNodeFloorProxy('floor', { upstreamUrl: upstream.baseUrl, hmacSecret: secret, issuer: 'https://issuer.test' }, dir, undefined)
  t.teardown(() => stopProcess(floor.managed))

  for (const server of [upstream, floor]) {
    // The process itself (nice and taskset exec it): node, the compiled script, nothing else.
    const [command, ...args] = readFileSync(`/proc/${server.managed.pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '')
    t.equal(command, process.execPath)
    t.equal(args.length, 1, `${server.managed.name}: node gets the script and no loader flags`)
    t.match(args[0], /\.cjs$/)
    t.notMatch(readFileSync(`/proc/${server.managed.pid}/environ`, 'utf8'), /NODE_OPTIONS=[^\0]*tsx/, `${server.managed.name}: no loader through NODE_OPTIONS either`)
  }
  const direct = await fetch(`${upstream.baseUrl}/tasks`)
  t.equal(await direct.text(), UPSTREAM_BODY, 'the upstream answers with the benchmark body')

  const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'user-7', iss: 'https://issuer.test', exp: Math.floor(Date.now() / 1000) + 60 })}`
  const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
  const proxied = await fetch(`${floor.baseUrl}/api/tasks`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(proxied.status, 200)
  t.equal(proxied.headers.get('x-upstream-saw-user'), 'user-7', 'the floor verified the token and forwarded its sub')
  t.equal((await fetch(`${floor.baseUrl}/api/tasks`, { headers: { authorization: `Bearer ${token}x` } })).status, 401, 'a bad signature is refused')
})

t.test('wrk output: requests, duration, errors and percentiles in any unit', async (t) => {
  const { parseWrkOutput, wrkArgs } = await import('../lib/wrk.js')
  const output = `Running 2s test @ http://127.0.0.1:4000/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.92ms  502.11us  12.01ms   91.00%
    Req/Sec    26.11k     1.02k   27.50k    80.00%
  Latency Distribution
     50%  850.00us
     75%    1.95ms
     90%    2.20ms
     99%    3.50ms
  52010 requests in 2.01s, 20.08MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  25875.62
Transfer/sec:      9.99MB
`
  const result = parseWrkOutput(output)
  t.equal(result.requests, 52010)
  t.equal(result.seconds, 2.01)
  t.equal(result.errors, 7, 'non-2xx + socket errors')
  t.equal(result.p50Ms, 0.85)
  t.equal(result.p99Ms, 3.5)
  const clean = parseWrkOutput('  100 requests in 1.00m, 1.00KB read\n')
  t.equal(clean.seconds, 60)
  t.equal(clean.errors, 0)
  t.ok(Number.isNaN(clean.p99Ms), 'no --latency section: no p99 rather than a made-up one')
  t.throws(() => parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused'), /no summary/)
  const args = wrkArgs({ url: 'http://127.0.0.1:5/api/tasks?x=1', connections: 50, seconds: 8, scriptFile: 's.lua', tokensFile: 't.txt' })
  t.same(args.slice(0, 3), ['-t1', '-c50', '-d8s'])
  t.same(args.slice(-4), ['http://127.0.0.1:5/', '--', '/api/tasks?x=1', 't.txt'], 'the path and the token file go to the Lua script')
})

t.test('autocannon fallback splits connections over its workers', async (t) => {
  const { splitConnections } = await import('../lib/load-generator.js')
  t.same(splitConnections(50, 3), [17, 17, 16])
  t.same(splitConnections(2, 3), [1, 1], 'never a worker without a connection')
  t.same(splitConnections(10, 1), [10])
})

t.test('proxy rows: medians of rounds, saturation flagged, ratios against HAProxy HS256 and the floor', async (t) => {
  const { coreUse, isSaturated, ratio, summarizeRounds, renderProxyTable, checkTargets, renderFixedRateTable } = await import('../lib/proxy-report.js')
  t.equal(coreUse(1.8e6, 2), 0.9)
  t.ok(isSaturated(0.9))
  t.notOk(isSaturated(0.89))
  t.notOk(isSaturated(Number.NaN))
  t.equal(ratio(30, 15), 2)
  t.ok(Number.isNaN(ratio(30, undefined)))
  t.ok(Number.isNaN(ratio(30, 0)))

  const round = (requests: number, cpuSeconds: number, errors = 0) => ({ requests, seconds: 1, cpuMicros: cpuSeconds * 1e6, p99Ms: 2, peakRssBytes: 100 * 2 ** 20, errors })
  const hs = summarizeRounds('haproxy-hs256', 'HAProxy HS256', false, [round(60_000, 0.96), round(50_000, 0.97), round(64_000, 0.96)])
  t.equal(hs.cpuMicrosPerRequest, 16, 'median of 16, 19.4 and 15 µs')
  t.equal(hs.rounds, 3)
  t.ok(hs.saturated)
  const es = summarizeRounds('haproxy-es256', 'HAProxy ES256', false, [round(10_000, 0.95)])
  const floor = summarizeRounds('node-floor-proxy', 'floor', false, [round(20_000, 0.98)])
  const gateway = summarizeRounds('gateway-hs256', 'gateway HS256', true, [round(18_000, 0.99, 1), round(18_000, 0.972, 2)])
  t.equal(gateway.errors, 3, 'errors summed over rounds')
  t.equal(gateway.cpuMicrosPerRequest, 54.5)
  t.equal(gateway.minCoreUse, 0.972)
  const idle = summarizeRounds('gateway-eddsa-repeated', 'gateway EdDSA', true, [round(10_000, 0.5)])
  t.notOk(idle.saturated)

  const table = renderProxyTable([hs, es, floor, gateway, idle])
  const line = (label: string) => table.split('\n').find((l) => l.includes(label)) ?? ''
  t.match(line('**gateway HS256**'), /\|\s+54\.5\s+\|\s+3\.41×\s+\|\s+1\.11×\s+\|/, 'gateway rows bold, ratios vs HAProxy HS256 and vs the floor')
  t.match(line('| HAProxy HS256 '), /1\.00×/)
  t.match(line('gateway EdDSA'), /50 % ⚠ not saturated/)
  t.notMatch(line('| HAProxy HS256 '), /not saturated/)

  const fixed = [
    { id: 'direct', label: 'direct', requestsPerSecond: 1000, p50Ms: 0.2, p99Ms: 0.5, errors: 0 },
    { id: 'node-floor-proxy', label: 'floor', requestsPerSecond: 1000, p50Ms: 0.3, p99Ms: 0.8, errors: 0 },
    { id: 'gateway-hs256', label: 'gateway HS256', requestsPerSecond: 1000, p50Ms: 0.4, p99Ms: 1.75, errors: 0 }
  ]
  const fixedTable = renderFixedRateTable(fixed)
  t.match(fixedTable.split('\n').find((l) => l.startsWith('| gateway HS256')) ?? '', /\|\s+1\.250\s+\|\s+0\.950\s+\|/, 'p99 added vs direct and vs the floor')

  const checks = checkTargets([hs, es, floor, gateway, idle], fixed)
  t.same(checks.map((c) => c.target), [
    'gateway HS256 CPU / request vs the bare Node proxy floor',
    'gateway repeated-EdDSA CPU / request vs HAProxy ES256',
    'p99 added at 1,000 req/s, gateway HS256',
    'gateway peak RSS under load'
  ])
  t.equal(checks[0]?.measured, '1.11×')
  t.equal(checks[0]?.verdict, 'pass', '1.11× ≤ 1.15×, both rows saturated')
  t.equal(checks[1]?.measured, '0.53×')
  t.equal(checks[1]?.verdict, 'pass (⚠ not saturated: gateway EdDSA)', 'a verdict resting on an unsaturated row says so')
  t.equal(checks[2]?.verdict, 'FAIL', '1.25 ms added > 1 ms')
  t.equal(checks[3]?.verdict, 'pass')
  t.same(checkTargets([gateway], []).map((c) => c.target), ['gateway peak RSS under load'], 'no reference, no ratio target')
})

t.test('nginx configs: a one-process upstream echoing X-User-Id, and a keep-alive plain proxy', async (t) => {
  const { nginxConfig } = await import('../lib/nginx.js')
  const upstream = nginxConfig(8001, { kind: 'upstream' }, '/tmp/x')
  t.match(upstream, 'master_process off;')
  t.match(upstream, 'worker_processes 1;')
  t.match(upstream, 'listen 127.0.0.1:8001;')
  t.match(upstream, 'add_header x-upstream-saw-user $http_x_user_id;')
  t.match(upstream, /return 200 '\[\{"id":/)
  t.notMatch(upstream, 'proxy_pass')
  const proxy = nginxConfig(8002, { kind: 'proxy', upstreamPort: 8001 }, '/tmp/x')
  t.match(proxy, 'server 127.0.0.1:8001;')
  t.match(proxy, 'keepalive 128;')
  t.match(proxy, 'proxy_set_header Connection "";')
})

t.test('e2e rows: CPU per request of each process, total and the gateway share', async (t) => {
  const { gatewayShare, renderE2eTable, totalMicros } = await import('../lib/e2e-report.js')
  const base = { database: 'PostgreSQL', operation: 'list (GET /tasks)', requests: 3000, requestsPerSecond: 1000, p50Ms: 5, p99Ms: 20, errors: 0 }
  const through = { ...base, path: 'gateway' as const, gatewayMicros: 100, taskServiceMicros: 250, postgresMicros: 50 }
  const direct = { ...base, path: 'direct' as const, gatewayMicros: undefined, taskServiceMicros: 240, postgresMicros: 50 }
  const pglite = { ...base, database: 'PGlite', path: 'gateway' as const, gatewayMicros: 100, taskServiceMicros: 300, postgresMicros: undefined }
  t.equal(totalMicros(through), 400)
  t.equal(gatewayShare(through), 0.25)
  t.equal(totalMicros(direct), 290)
  t.ok(Number.isNaN(gatewayShare(direct)), 'no gateway on the direct path')
  t.equal(gatewayShare(pglite), 0.25, 'PGlite runs inside the task service')
  const table = renderE2eTable([through, direct, pglite]).split('\n')
  t.match(table[2], /through the gateway .*\|\s+100\.0 \|\s+250\.0 \|\s+50\.0 \|\s+400\.0 \|\s+25 % \|/)
  t.match(table[3], /task service directly .*\|\s+– \|\s+240\.0 \|\s+50\.0 \|\s+290\.0 \|\s+– \|/)
  t.match(table[4], /PGlite .*\|\s+100\.0 \|\s+300\.0 \|\s+– \|\s+400\.0 \|/)
})

t.test('CPU of a changing set of processes: new ones count whole, vanished ones drop out', async (t) => {
  const { cpuDelta, cpuOfPids } = await import('../lib/proc-stats.js')
  t.equal(cpuDelta(new Map([[1, 100], [2, 50]]), new Map([[1, 130], [3, 20]])), 50)
  const own = cpuOfPids([process.pid, 2 ** 30])
  t.same([...own.keys()], [process.pid], 'a pid that does not exist is left out')
})

t.test('options: full runs are bounded and write the docs, --quick is short and does not', async (t) => {
  const { parseBenchArgs } = await import('../lib/args.js')
  const full = parseBenchArgs([])
  t.equal(full.rounds, 3)
  t.equal(full.connections, 50)
  t.equal(full.timeLimitMinutes, 15)
  t.ok(full.write)
  t.ok(full.nginx)
  t.notOk(full.autocannon)
  t.ok(full.rounds * full.durationSeconds * 8 < full.timeLimitMinutes * 60, 'eight rows of rounds fit well inside the time limit')
  const quick = parseBenchArgs(['--quick', '--autocannon', '--no-nginx', '--time-limit', '2'])
  t.same([quick.rounds, quick.durationSeconds, quick.timeLimitMinutes, quick.write, quick.autocannon, quick.nginx], [1, 2, 2, false, true, false])
  t.equal(quick.command, 'npm run bench -- --quick --autocannon --no-nginx --time-limit 2')
  t.throws(() => parseBenchArgs(['--rounds', '0']), /--rounds must be a positive integer/)
  t.throws(() => parseBenchArgs(['--connections', '1.5']), /--connections must be a positive integer/)
  t.throws(() => parseBenchArgs(['--bogus']), /Unknown option/)
})

t.test('--costs: a mode of its own, quick or full, and not mixed with --e2e or the profiles', async (t) => {
  const { parseBenchArgs } = await import('../lib/args.js')
  const { COST_LOADS, COST_VARIANTS } = await import('../lib/costs-report.js')
  const full = parseBenchArgs(['--costs'])
  t.equal(full.mode, 'costs')
  t.ok(full.write, 'a full run writes its section of docs/performance.md')
  const rows = COST_VARIANTS.length * COST_LOADS.length + 1
  t.ok(rows * full.rounds * full.durationSeconds + rows * full.warmupSeconds < full.timeLimitMinutes * 60 * 0.75, 'every variant under both loads, plus the floor, fits well inside the time limit')
  const quick = parseBenchArgs(['--costs', '--quick'])
  t.same([quick.mode, quick.rounds, quick.durationSeconds, quick.write], ['costs', 1, 2, false])
  t.equal(parseBenchArgs([]).mode, 'proxy')
  t.throws(() => parseBenchArgs(['--costs', '--e2e']), /--costs and --e2e/)
  t.throws(() => parseBenchArgs(['--costs', '--profile']), /--costs takes no profiles/)
})

t.test('cost variants: each switches exactly its feature off through the gateway\'s own configuration, the fixed core all of them', async (t) => {
  const { COST_VARIANTS, DEPLOYED, FIXED_CORE, SINGLE_FEATURE_VARIANTS, costScenarioId, describeSwitches, COST_LOADS } = await import('../lib/costs-report.js')
  const { benchGatewayEnv } = await import('../lib/gateway.js')
  const { loadConfig } = await import('../../gateway/src/config.js')
  const { ASSERTION_ENV } = await import('../../support/tokens.js')
  const deployedEnv = benchGatewayEnv({
    name: 'gateway',
    upstreamUrl: 'http://127.0.0.1:1',
    hmacSecret: 'x'.repeat(64),
    jwksUrl: 'http://127.0.0.1:2/jwks.json',
    issuer: 'http://127.0.0.1:2',
    audience: 'http://127.0.0.1:2',
    logDir: '.',
    logLevel: 'info'
  }, 9464)
  // What the gateway does per request with a configuration, read the way its plugins read it.
  const featuresOf = (env: Record<string, string>) => {
    const config = loadConfig({ ...ASSERTION_ENV, ...deployedEnv, ...env })
    const { rateLimit, concurrency, server, loadShedding } = config.limits
    return {
      'access-log-off': ['info', 'debug', 'trace'].includes(config.logLevel),
      'metrics-off': config.metricsPort !== 0,
      'rate-limits-off': rateLimit.userMax !== 0 || rateLimit.ipMax !== 0,
      'in-flight-cap-off': concurrency.perUserMax !== 0,
      'connection-caps-off': server.maxConnections !== 0 || server.maxConnectionsPerAddress !== 0,
      'load-shedding-off': loadShedding.maxEventLoopDelayMs !== 0 || loadShedding.maxEventLoopUtilization !== 0 || loadShedding.maxHeapUsedBytes !== 0
    }
  }
  const allOn = featuresOf(DEPLOYED.env)
  t.same(Object.values(allOn), Object.values(allOn).map(() => true), 'the deployed gateway has every feature on')
  t.same(SINGLE_FEATURE_VARIANTS.map((v) => v.id).sort(), Object.keys(allOn).sort(), 'one variant per feature')
  for (const variant of SINGLE_FEATURE_VARIANTS) {
    t.same(featuresOf(variant.env), { ...allOn, [variant.id]: false }, `${variant.label}: that feature off, every other one on`)
  }
  t.same(Object.values(featuresOf(FIXED_CORE.env)), Object.values(allOn).map(() => false), 'the fixed core: every feature off')
  t.equal(new Set(COST_VARIANTS.map((v) => v.id)).size, COST_VARIANTS.length, 'variant ids are unique')
  t.same([COST_VARIANTS[0], COST_VARIANTS.at(-1)], [DEPLOYED, FIXED_CORE], 'deployed first, fixed core last')
  t.equal(describeSwitches(DEPLOYED), '–')
  t.equal(describeSwitches(SINGLE_FEATURE_VARIANTS.find((v) => v.id === 'rate-limits-off')!), 'RATE_LIMIT_USER_MAX=0, RATE_LIMIT_IP_MAX=0')
  t.equal(describeSwitches(FIXED_CORE), 'all of the above')
  t.same(COST_LOADS.map((load) => load.alg), ['HS256', 'EdDSA'])
  t.equal(costScenarioId(FIXED_CORE, COST_LOADS[0]!), 'fixed-core/hs256')
})

t.test('costs table: saved vs deployed in µs and %, ratio to the floor, the floor\'s saving is the whole gap', async (t) => {
  const { summarizeRounds } = await import('../lib/proxy-report.js')
  const { COST_VARIANTS, DEPLOYED, FIXED_CORE, SINGLE_FEATURE_VARIANTS, renderCostsTable, renderCostSummary, summarizeCosts } = await import('../lib/costs-report.js')
  // `cpuMicros` µs of CPU per request over 10,000 requests, 95 % of a core.
  const row = (id: string, cpuMicros: number) => summarizeRounds(id, id, true, [{ requests: 10_000, seconds: (cpuMicros * 10_000) / 1e6 / 0.95, cpuMicros: cpuMicros * 10_000, p99Ms: 1, peakRssBytes: 0, errors: 0 }])
  const floor = summarizeRounds('node-floor-proxy', 'floor', false, [{ requests: 10_000, seconds: 0.8, cpuMicros: 0.76e6, p99Ms: 1, peakRssBytes: 0, errors: 0 }])
  t.equal(floor.cpuMicrosPerRequest, 76)
  const cpu: Record<string, number> = { deployed: 120, 'access-log-off': 100, 'metrics-off': 115, 'rate-limits-off': 118, 'in-flight-cap-off': 119, 'connection-caps-off': 120, 'load-shedding-off': 117, 'fixed-core': 90 }
  const rows = COST_VARIANTS.map((variant) => ({ variant, row: row(variant.id, cpu[variant.id]!) }))
  // One unsaturated row, flagged like everywhere else.
  rows[2] = { variant: rows[2]!.variant, row: summarizeRounds('metrics-off', 'metrics-off', true, [{ requests: 10_000, seconds: 2.3, cpuMicros: 1.15e6, p99Ms: 1, peakRssBytes: 0, errors: 3 }]) }
  const table = renderCostsTable(rows, floor).split('\n')
  const line = (start: string) => table.find((l) => l.startsWith(`| ${start} `)) ?? ''
  t.same(table[0]!.split('|').map((cell) => cell.trim()).slice(1, -1), ['variant', 'switched off by', 'CPU µs / request', 'saved vs deployed, µs', 'saved vs deployed, %', 'vs Node floor', 'core use', 'errors'])
  t.match(line('**gateway as deployed**'), /\| – +\| +120\.0 \| +– \| +– \| +1\.58× \|/, 'the deployed row: no saving, ratio to the floor')
  t.match(line('access log off'), /\| LOG_LEVEL=warn +\| +100\.0 \| +20\.0 \| +16\.7 % \| +1\.32× \|/)
  t.match(line('metrics off'), /\| +115\.0 \| +5\.0 \| +4\.2 % \| +1\.51× \| +50 % ⚠ not saturated \| +3 \|/)
  t.match(line('connection caps off'), /\| +120\.0 \| +0\.0 \| +0\.0 % \|/)
  t.match(line('fixed core'), /\| all of the above +\| +90\.0 \| +30\.0 \| +25\.0 % \| +1\.18× \|/)
  t.match(line('floor'), /\| \(not the gateway\) +\| +76\.0 \| +44\.0 \| +36\.7 % \| +1\.00× \|/, 'the floor\'s saving is the whole gap')
  t.equal(table.length, 2 + COST_VARIANTS.length + 1)
  t.notOk(renderCostsTable(rows, undefined).includes('(not the gateway)'), 'no floor row without a floor')
  t.match(renderCostsTable(rows, undefined), /\| +120\.0 \| +– \| +– \| +– \|/, 'no ratio without a floor')

  const summary = summarizeCosts(rows, floor)
  t.same(summary, { gapToFloorMicros: 44, sumOfSingleSavingsMicros: 20 + 5 + 2 + 1 + 0 + 3, fixedCoreSavingMicros: 30, fixedCoreOverFloorMicros: 14 })
  t.match(renderCostSummary(summary), /Gap from the floor to the deployed gateway: 44\.0 µs\. The single switches save 31\.0 µs added up, all of them at once 30\.0 µs .*the fixed core stays 14\.0 µs above the floor\./)
  const partial = summarizeCosts(rows.filter((entry) => entry.variant.id !== SINGLE_FEATURE_VARIANTS[0]!.id && entry.variant !== FIXED_CORE), floor)
  t.ok(Number.isNaN(partial.sumOfSingleSavingsMicros), 'a missing variant makes no partial sum')
  t.ok(Number.isNaN(partial.fixedCoreSavingMicros))
  t.ok(Number.isNaN(summarizeCosts(rows.filter((entry) => entry.variant !== DEPLOYED), floor).gapToFloorMicros), 'no deployed row, no gap')
})

t.test('measured sections: the text between a section\'s markers is replaced, other sections and the prose kept; a missing section is appended', async (t) => {
  const { withMeasuredSection } = await import('../lib/report.js')
  const doc = [
    '# Performance', '', 'prose', '',
    '<!-- bench:proxy:start -->', 'old proxy', '<!-- bench:proxy:end -->', '',
    '<!-- bench:costs:start -->', 'Filled by `npm run bench -- --costs`.', '<!-- bench:costs:end -->', '',
    'after'
  ].join('\n')
  const next = withMeasuredSection(doc, 'costs', '\n| table |\n')
  t.equal(next, doc.replace('Filled by `npm run bench -- --costs`.', '| table |'))
  t.equal(withMeasuredSection(next, 'costs', 'again'), doc.replace('Filled by `npm run bench -- --costs`.', 'again'), 'a second run replaces the first')
  t.equal(
    withMeasuredSection('# Performance\n\nprose\n\n', 'e2e', 'e2e table'),
    '# Performance\n\nprose\n\n<!-- bench:e2e:start -->\ne2e table\n<!-- bench:e2e:end -->\n'
  )
})
