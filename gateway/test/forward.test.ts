// Forwarding failures and request smuggling: refused → 502, no answer in time → 504, reset/garbage →
// 502, all JSON without internals; recovery by itself; no retries; smuggling shapes → 400 + close.
// Response headers over HTTP: what is dropped, how references are made public (PUBLIC_URL included);
// the rules on their own are in response-rewrite.test.ts.
import t from 'tap'
import net from 'node:net'
import { request } from 'undici'
import { sendChunks, startUpstream, type StubUpstream } from './helpers/upstream.js'
import { eventually } from '../../support/wait.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import { bearer, signHs } from '../../support/tokens.js'
import { rawHttp, req } from './helpers/raw.js'

let up: StubUpstream
let gw: RunningGateway
let token: string

t.before(async () => {
  up = await startUpstream()
  gw = await startGateway({ TASK_SERVICE_URL: up.url, UPSTREAM_TIMEOUT_MS: '300' })
  token = await signHs()
})
t.teardown(async () => {
  await gw.close()
  await up.close()
})
t.beforeEach(() => {
  up.received.length = 0
  up.respond((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') })
})

async function call (method = 'GET', path = '/api/tasks', body?: string, g: RunningGateway = gw): Promise<{ status: number, text: string, json: { error?: { code?: string } } }> {
  const res = await request(g.url + path, { method: method as 'GET', headers: { ...bearer(token), 'content-type': 'application/json' }, body })
  const text = await res.body.text()
  let json = {}
  try { json = JSON.parse(text) } catch { /* not JSON */ }
  return { status: res.statusCode, text, json }
}

function noInternals (t: Parameters<Parameters<typeof import('tap').default.test>[0]>[0], text: string, origin: string): void {
  const port = new URL(origin).port
  t.notMatch(text, /127\.0\.0\.1|localhost|ECONN|stack|at .*\.js/, 'no host, error code or stack in the body')
  t.notOk(text.includes(port), 'no upstream port in the body')
}

t.test('task service refusing connections → 502 JSON upstream_unavailable', async (t) => {
  const spare = net.createServer()
  await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve))
  const port = (spare.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => spare.close(() => resolve()))
  const dead = await startGateway({ TASK_SERVICE_URL: `http://127.0.0.1:${port}` })
  t.teardown(() => dead.close())
  const r = await call('GET', '/api/tasks', undefined, dead)
  t.equal(r.status, 502)
  t.equal(r.json.error?.code, 'upstream_unavailable')
  noInternals(t, r.text, `http://127.0.0.1:${port}`)
  const ready = await request(dead.url + '/readyz')
  t.equal(ready.statusCode, 503, '/readyz reports the task service down')
  await ready.body.dump()
})

t.test('no answer within UPSTREAM_TIMEOUT_MS → 504 JSON upstream_timeout', async (t) => {
  up.respond((_req, res) => { setTimeout(() => { if (!res.destroyed) res.end('[]') }, 2_000).unref() })
  const r = await call()
  t.equal(r.status, 504)
  t.equal(r.json.error?.code, 'upstream_timeout')
  noInternals(t, r.text, up.origin)
})

t.test('connection reset by the task service → 502 JSON', async (t) => {
  up.respond((req) => { req.socket.destroy() })
  const r = await call('POST', '/api/tasks', '{"title":"x"}')
  t.equal(r.status, 502)
  t.equal(r.json.error?.code, 'upstream_unavailable')
  noInternals(t, r.text, up.origin)
  t.equal(up.tasks().length, 1, 'not retried')
})

t.test('garbage from the task service → 502 JSON', async (t) => {
  up.respond((req) => { req.socket.end('NOT HTTP AT ALL\r\n\r\n') })
  const r = await call()
  t.equal(r.status, 502)
  noInternals(t, r.text, up.origin)
})

t.test('a 503 from the task service passes through once (no silent retries)', async (t) => {
  up.respond((_req, res) => { res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":{"code":"database_unavailable"}}') })
  const r = await call()
  t.equal(r.status, 503)
  t.equal(r.json.error?.code, 'database_unavailable')
  t.equal(up.tasks().length, 1)
})

t.test('the gateway recovers by itself when the task service answers again', async (t) => {
  up.respond((req) => { req.socket.destroy() })
  t.equal((await call()).status, 502)
  up.respond((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('[{"id":"1"}]') })
  const r = await call()
  t.equal(r.status, 200)
  t.equal(r.text, '[{"id":"1"}]')
})

t.test('smuggling: Content-Length and Transfer-Encoding together → 400 and the connection closed', async (t) => {
  const smuggled = 'GET /api/tasks/smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
  const body = `0\r\n\r\n${smuggled}`
  const r = await rawHttp(gw.port, req('POST', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json'], ['Content-Length', String(body.length)], ['Transfer-Encoding', 'chunked']], body), { waitClose: true })
  t.equal(r.status, 400)
  t.ok(r.closed, 'connection closed')
  t.match(JSON.parse(r.body), { error: { code: 'bad_request' } })
  t.equal(up.received.length, 0, 'nothing forwarded')
})

t.test('smuggling: conflicting Content-Length headers → 400 and the connection closed', async (t) => {
  const r = await rawHttp(gw.port, req('POST', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Content-Length', '5'], ['Content-Length', '20']], '{"a":1}hello-world!!'), { waitClose: true })
  t.equal(r.status, 400)
  t.ok(r.closed, 'connection closed')
  const r2 = await rawHttp(gw.port, req('POST', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Content-Length', '5, 20']], '{"a":1}hello-world!!'), { waitClose: true })
  t.equal(r2.status, 400)
  t.ok(r2.closed)
  t.equal(up.received.length, 0)
})

t.test('smuggling: obfuscated Transfer-Encoding → 400 and the connection closed', async (t) => {
  for (const te of ['chunked, identity', 'xchunked', 'identity']) {
    const r = await rawHttp(gw.port, req('POST', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Transfer-Encoding', te]], '5\r\nhello\r\n0\r\n\r\n'), { waitClose: true })
    t.equal(r.status, 400, JSON.stringify(te))
    t.ok(r.closed)
  }
  t.equal(up.received.length, 0)
})

t.test('a chunked body (no Content-Length) streams through intact', async (t) => {
  const r = await rawHttp(gw.port, req('POST', '/api/tasks', [['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']], '6\r\n{"titl\r\n8\r\ne":"ab"}\r\n0\r\n\r\n'))
  t.equal(r.status, 200)
  t.equal(up.tasks()[0]?.body, '{"title":"ab"}')
})

t.test('UPSTREAM_TIMEOUT_MS is a deadline from forwarding, queue time included: small pool, hanging task service, more requests than connections → all 504 within the timeout; then recovery', async (t) => {
  const TIMEOUT = 1_000
  const hung = await startUpstream((_req, _res) => { /* never answers */ })
  const g = await startGateway({ TASK_SERVICE_URL: hung.url, UPSTREAM_CONNECTIONS: '2', UPSTREAM_TIMEOUT_MS: String(TIMEOUT) })
  t.teardown(async () => { await g.close(); await hung.close() })
  const N = 12 // 6× the pool: without a deadline the last would wait 6 × TIMEOUT
  const start = Date.now()
  const results = await Promise.all(Array.from({ length: N }, async (_, i) => {
    const r = await call(i === 0 ? 'POST' : 'GET', '/api/tasks', i === 0 ? '{"title":"queued"}' : undefined, g)
    return { ...r, ms: Date.now() - start }
  }))
  for (const r of results) {
    t.equal(r.status, 504)
    t.equal(r.json.error?.code, 'upstream_timeout')
  }
  const slowest = Math.max(...results.map((r) => r.ms))
  t.ok(slowest < 3 * TIMEOUT, `every request answered within 3 × UPSTREAM_TIMEOUT_MS (slowest ${slowest} ms; without a deadline ≈ ${N / 2} × ${TIMEOUT} ms)`)
  // Each request's deadline runs from when it was forwarded, so on a slow machine all N may reach the task
  // service; what must never happen is one sent after its deadline (without the queue deadline, the pairs
  // would arrive at 0, 1, 2 … 5 × TIMEOUT).
  const latestArrival = Math.max(...hung.tasks().map((r) => r.receivedAt - start))
  t.ok(latestArrival < 2 * TIMEOUT, `requests still queued at the deadline are dropped, not sent late (${hung.tasks().length} reached the task service, the last ${latestArrival} ms after the start)`)

  hung.respond((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') })
  const after = await Promise.all(Array.from({ length: 4 }, async () => await call('GET', '/api/tasks', undefined, g)))
  t.same(after.map((r) => r.status), [200, 200, 200, 200], 'the pool recovers when the task service answers again')
})

t.test('a request dropped while queued for a connection (its client went away) is never sent, and the pooled connection stays open', async (t) => {
  // One connection to the task service; the first request holds it for a while.
  let release: (() => void) | undefined
  const slow = await startUpstream((req, res) => {
    if (req.url === '/tasks?hold=1') { release = () => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') }; return }
    res.writeHead(200, { 'content-type': 'application/json' }).end('[]')
  })
  const g = await startGateway({ TASK_SERVICE_URL: slow.url, UPSTREAM_CONNECTIONS: '1', UPSTREAM_TIMEOUT_MS: '2000' })
  t.teardown(async () => { await g.close(); await slow.close() })
  const first = call('GET', '/api/tasks?hold=1', undefined, g)
  await eventually(() => release !== undefined)

  // Queued behind it: a client that goes away while it waits. (A request whose deadline passes in the
  // queue takes the same path; it cannot be set up here without the first request's deadline passing too.)
  const gone = net.connect(g.port, '127.0.0.1')
  gone.on('error', () => {})
  gone.write(`GET /api/tasks?queued=gone HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`)
  await new Promise((resolve) => setTimeout(resolve, 200))
  gone.destroy()
  await new Promise((resolve) => setTimeout(resolve, 100))

  release?.()
  t.equal((await first).status, 200)
  const after = await call('GET', '/api/tasks?after=1', undefined, g)
  t.equal(after.status, 200, 'the next request is served')
  t.notOk(slow.received.some((r) => r.url.includes('queued=gone')), 'the dropped request was never sent')
  t.equal(slow.connections(), 1, 'over the same connection: dropping a queued request does not destroy it')
})

t.test('a POST whose client leaves mid-body while it waits for a connection: the gateway keeps running, nothing is sent, the pooled connection stays open', async (t) => {
  let release: (() => void) | undefined
  const slow = await startUpstream((req, res) => {
    if (req.url === '/tasks?hold=1') { release = () => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') }; return }
    res.writeHead(200, { 'content-type': 'application/json' }).end('[]')
  })
  const g = await startGateway({ TASK_SERVICE_URL: slow.url, UPSTREAM_CONNECTIONS: '1', UPSTREAM_TIMEOUT_MS: '5000' })
  t.teardown(async () => { await g.close(); await slow.close() })
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown): void => { uncaught.push(err) }
  process.on('uncaughtException', onUncaught)
  t.teardown(() => { process.off('uncaughtException', onUncaught) })

  const first = call('GET', '/api/tasks?hold=1', undefined, g)
  await eventually(() => release !== undefined)
  // Queued behind it: a POST announcing 100 kB that sends 10 kB, then its client goes away.
  const uploader = net.connect(g.port, '127.0.0.1')
  uploader.on('error', () => {})
  uploader.write(`POST /api/tasks?queued=post HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n`)
  uploader.write(Buffer.alloc(10_000, 'a'))
  await new Promise((resolve) => setTimeout(resolve, 200))
  uploader.destroy()
  await new Promise((resolve) => setTimeout(resolve, 200))

  t.same(uncaught, [], 'no uncaught exception')
  release?.()
  t.equal((await first).status, 200)
  t.equal((await call('GET', '/api/tasks?after=1', undefined, g)).status, 200, 'the next request is served')
  t.notOk(slow.received.some((r) => r.url.includes('queued=post')), 'the abandoned POST was never sent')
  t.equal(slow.connections(), 1, 'over the same pooled connection')
  t.same(uncaught, [], 'still no uncaught exception')
})

t.test('pipelined requests on one connection are each answered, in order', async (t) => {
  const s = net.connect(gw.port, '127.0.0.1')
  s.on('error', () => {})
  let got = ''
  s.setEncoding('latin1')
  s.on('data', (c: string) => { got += c })
  const one = `GET /api/tasks?n=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`
  const two = `GET /api/tasks?n=2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`
  s.write(one + two)
  await new Promise<void>((resolve) => { s.on('close', () => { resolve() }); setTimeout(() => { s.destroy(); resolve() }, 10_000).unref() })
  t.equal(got.match(/HTTP\/1\.1 200/g)?.length, 2, `two answers (got ${JSON.stringify(got.slice(0, 200))})`)
  t.same(up.tasks().map((r) => r.url), ['/tasks?n=1', '/tasks?n=2'], 'both forwarded, in order')
})

t.test('a pipelined request whose client leaves while the answer before it is still out: its upstream request is aborted too', async (t) => {
  let bigClosed = false
  const stub = await startUpstream((req, res) => {
    if (req.url?.startsWith('/tasks?first')) { setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') }, 300); return }
    if (req.url?.startsWith('/tasks?big')) {
      req.socket.once('close', () => { bigClosed = true })
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      sendChunks(res, Buffer.alloc(64 * 1024, 'x'), Infinity)
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('[]')
  })
  // Default stall timeout (10 s): only noticing that the client left can free the connection in time.
  const g = await startGateway({ TASK_SERVICE_URL: stub.url, UPSTREAM_CONNECTIONS: '2', UPSTREAM_TIMEOUT_MS: '5000' })
  t.teardown(async () => { await g.close(); await stub.close() })
  const s = net.connect(g.port, '127.0.0.1')
  s.on('error', () => {})
  s.write(`GET /api/tasks?first=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\nGET /api/tasks?big=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`)
  await eventually(() => stub.tasks().length === 2)
  s.destroy()
  await eventually(() => bigClosed, 3_000)
  t.pass('the second request\'s upstream connection was closed')
  t.equal((await call('GET', '/api/tasks?after=1', undefined, g)).status, 200, 'and the gateway serves on')
})

t.test('/readyz is single-flight and cached briefly: 200 concurrent probes cost at most 2 upstream checks; still turns 503 when the task service goes down', async (t) => {
  let upstreamReady = true
  const counting = await startUpstream((req, res) => {
    if (req.url === '/readyz') {
      // A little latency so that concurrent probes overlap with the one in flight.
      setTimeout(() => { res.writeHead(upstreamReady ? 200 : 503, { 'content-type': 'application/json' }).end('{}') }, 50)
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('[]')
  })
  const g = await startGateway({ TASK_SERVICE_URL: counting.url })
  t.teardown(async () => { await g.close(); await counting.close() })
  const checks = (): number => counting.received.filter((r) => r.url === '/readyz').length

  const probe = async (): Promise<number> => {
    const r = await request(g.url + '/readyz')
    await r.body.dump()
    return r.statusCode
  }
  const statuses = await Promise.all(Array.from({ length: 200 }, probe))
  t.equal(statuses.filter((s) => s === 200).length, 200, 'all 200 while the task service is ready')
  t.ok(checks() <= 2, `at most 2 upstream /readyz calls for 200 probes (got ${checks()})`)

  upstreamReady = false
  await eventually(async () => await probe() === 503, 5_000)
  t.pass('/readyz turns 503 once the cached result expires')
  const before = checks()
  const down = await Promise.all(Array.from({ length: 50 }, probe))
  t.ok(down.every((s) => s === 503 || s === 200), 'no other status')
  t.ok(checks() - before <= 2, 'a flood while down is cheap too')
  upstreamReady = true
  await eventually(async () => await probe() === 200, 5_000)
  t.pass('and 200 again when the task service is back')
})

t.test('responses never name the task service: absolute Location in any loopback spelling rewritten; Content-Location and Refresh rewritten or dropped', async (t) => {
  const port = new URL(up.url).port
  up.respond((_req, res) => {
    res.writeHead(201, {
      'content-type': 'application/json',
      location: `http://localhost:${port}/tasks/1`,
      'content-location': `${up.url}/tasks/1`,
      refresh: `0; url=${up.url}/tasks`
    }).end('{}')
  })
  const res = await request(gw.url + '/api/user-1/tasks', { method: 'POST', headers: { ...bearer(await signHs({ sub: 'user-1' })), 'content-type': 'application/json' }, body: '{}' })
  await res.body.dump()
  t.equal(res.statusCode, 201)
  t.equal(res.headers.location, '/api/user-1/tasks/1', 'Location on localhost:<port> is the task service too')
  t.equal(res.headers['content-location'], '/api/user-1/tasks/1', 'Content-Location rewritten like Location')
  t.equal(res.headers.refresh, '0; url=/api/user-1/tasks', 'Refresh URL rewritten')
  t.notMatch(JSON.stringify(res.headers), new RegExp(`127\\.0\\.0\\.1|localhost|:${port}`), 'nothing names the task service')

  up.respond((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-location': `${up.url}/admin`, refresh: `5; url=http://[::1]:${port}/admin` }).end('[]')
  })
  const res2 = await request(gw.url + '/api/tasks', { headers: bearer(token) })
  await res2.body.dump()
  t.notOk('content-location' in res2.headers, 'a Content-Location that has no public path is dropped')
  t.notOk('refresh' in res2.headers, 'a Refresh that has no public path is dropped')
})

t.test('Expect: 100-continue is answered only after authentication and authorization', async (t) => {
  const exchange = async (headers: string, body: string): Promise<string> => await new Promise((resolve) => {
    const s = net.connect(gw.port, '127.0.0.1')
    let buf = ''
    let sentBody = false
    const finish = (): void => { s.destroy(); resolve(buf) }
    s.setEncoding('latin1')
    s.on('data', (c: string) => {
      buf += c
      if (!sentBody && buf.startsWith('HTTP/1.1 100')) { sentBody = true; s.write(body) }
      if (/\r\n\r\n[\s\S]*\}\s*$/.test(buf.replace(/^HTTP\/1\.1 100[^\r]*\r\n\r\n/, ''))) finish()
    })
    s.on('close', finish)
    s.on('error', () => {})
    setTimeout(finish, 10_000).unref()
    s.write(`POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n${headers}\r\n`)
  })
  up.respond((_req, res) => { res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"1"}') })

  const noToken = await exchange('', '{"title":"x"}')
  t.match(noToken, /^HTTP\/1\.1 401 /, 'no token → 401 first')
  t.notMatch(noToken, /100 Continue/, 'without a preceding 100 Continue')

  const wrongRoute = await new Promise<string>((resolve) => {
    const s = net.connect(gw.port, '127.0.0.1')
    let buf = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => { buf += c; if (buf.includes('}')) { s.destroy(); resolve(buf) } })
    s.on('error', () => {})
    setTimeout(() => { s.destroy(); resolve(buf) }, 10_000).unref()
    s.write(`POST /api/someone-else/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n`)
  })
  t.match(wrongRoute, /^HTTP\/1\.1 403 /, 'authorization failure → 403 first, no 100 Continue')

  up.received.length = 0
  const ok = await exchange(`Authorization: Bearer ${token}\r\n`, '{"title":"x"}')
  t.match(ok, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 /, 'valid token → 100 Continue, then the forwarded answer')
  t.equal(up.tasks()[0]?.body, '{"title":"x"}', 'the body sent after 100 Continue reached the task service')
  t.notOk('expect' in (up.tasks()[0]?.headers ?? {}), 'Expect is not forwarded')
})

t.test('a large response reaches a slow reader intact (backpressure from the client to the task service)', async (t) => {
  // 4 MiB in 64 KiB chunks, each written only when the gateway's socket to the task service drains.
  const chunk = Buffer.alloc(64 * 1024, 'x')
  const chunks = 64
  up.respond((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    sendChunks(res, chunk, chunks)
  })
  const res = await request(gw.url + '/api/tasks', { headers: bearer(token) })
  t.equal(res.statusCode, 200)
  let received = 0
  for await (const c of res.body) {
    received += (c as Buffer).length
    // Read slowly at first, so the gateway has to hold the task service back.
    if (received < 1024 * 1024) await new Promise((resolve) => setTimeout(resolve, 5))
  }
  t.equal(received, chunk.length * chunks, 'every byte arrived')
})

t.test('a client that stops reading is cut off after SERVER_RESPONSE_STALL_TIMEOUT_MS, and its upstream connection is freed', async (t) => {
  // Far more than the socket buffers between the task service, the gateway and the client hold.
  const chunk = Buffer.alloc(64 * 1024, 'x')
  const chunks = 512
  let upstreamClosed = false
  const big = await startUpstream((req, res) => {
    if (!req.url?.startsWith('/tasks?big')) { res.writeHead(200, { 'content-type': 'application/json' }).end('[]'); return }
    req.socket.once('close', () => { upstreamClosed = true })
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    sendChunks(res, chunk, chunks)
  })
  // One connection to the task service: while the stalled client holds it, nobody else is served.
  const g = await startGateway({ TASK_SERVICE_URL: big.url, UPSTREAM_CONNECTIONS: '1', UPSTREAM_TIMEOUT_MS: '5000', SERVER_RESPONSE_STALL_TIMEOUT_MS: '500' })
  t.teardown(async () => { await g.close(); await big.close() })
  const stalled = net.connect(g.port, '127.0.0.1')
  stalled.on('error', () => {})
  stalled.pause() // reads nothing, ever
  stalled.write(`GET /api/tasks?big=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`)
  t.teardown(() => { stalled.destroy() })
  await eventually(() => big.tasks().length === 1)

  const next = await call('GET', '/api/tasks?after=1', undefined, g)
  t.equal(next.status, 200, 'the next request is served over the freed connection')
  await eventually(() => upstreamClosed)
  t.pass('the stalled response\'s upstream request was aborted')
})

t.test('a client that goes away mid-response frees the upstream request (the task service sees its connection closed)', async (t) => {
  let upstreamClosed = false
  let heldRes: import('node:http').ServerResponse | undefined
  up.respond((req, res) => {
    heldRes = res
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('[')
    req.socket.once('close', () => { upstreamClosed = true })
    // Never ends the body on its own.
  })
  const s = net.connect(gw.port, '127.0.0.1')
  s.on('error', () => {})
  let got = ''
  s.setEncoding('latin1')
  s.on('data', (c: string) => { got += c })
  s.write(`GET /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`)
  await eventually(() => got.includes('\r\n\r\n'))
  t.match(got, /^HTTP\/1\.1 200 /, 'the head was forwarded before the body finished')
  s.destroy()
  await eventually(() => upstreamClosed)
  t.ok(upstreamClosed, 'the upstream connection was closed when the client left')
  heldRes?.destroy()
  up.respond((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') })
  const after = await call()
  t.equal(after.status, 200, 'the gateway keeps serving')
})

t.test('the task service failing mid-body → the client sees a truncated response, never a complete wrong one', async (t) => {
  up.respond((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
    res.write('[{"id":"1"')
    setTimeout(() => { res.socket?.destroy() }, 20)
  })
  const res = await request(gw.url + '/api/tasks', { headers: bearer(token) })
  t.equal(res.statusCode, 200, 'the head had already been forwarded')
  await t.rejects(res.body.text(), 'reading the body fails: the response is incomplete')
  up.respond((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') })
  const after = await call()
  t.equal(after.status, 200, 'the gateway keeps serving')
})

t.test('a response head Node cannot forward (invalid header value) → 502 JSON', async (t) => {
  const server = net.createServer((sock) => {
    sock.once('data', () => {
      sock.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Odd: a\u0001b\r\nContent-Length: 2\r\n\r\n[]')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const odd = await startGateway({ TASK_SERVICE_URL: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}` })
  t.teardown(() => odd.close())
  const r = await call('GET', '/api/tasks', undefined, odd)
  t.ok(r.status === 502, `502 (got ${r.status})`)
  t.equal(r.json.error?.code, 'upstream_unavailable')
})

async function rawUpstream (t: import('tap').Test, answer: (sock: net.Socket) => void): Promise<RunningGateway> {
  const server = net.createServer((sock) => {
    sock.on('error', () => {})
    sock.once('data', () => { answer(sock) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()) }))
  const g = await startGateway({ TASK_SERVICE_URL: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}` })
  t.teardown(() => g.close())
  return g
}

t.test('an interim 103 Early Hints from the task service is skipped; the final answer is forwarded', async (t) => {
  const g = await rawUpstream(t, (sock) => {
    sock.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n')
    setTimeout(() => { sock.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]') }, 20)
  })
  const r = await call('GET', '/api/tasks', undefined, g)
  t.equal(r.status, 200)
  t.equal(r.text, '[]')
})

t.test('headers the task service names in Connection are dropped, also when Connection comes twice', async (t) => {
  const g = await rawUpstream(t, (sock) => {
    sock.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: x-internal-a\r\nConnection: x-internal-b, close\r\nX-Internal-A: 1\r\nX-Internal-B: 2\r\nX-Kept: 3\r\nContent-Length: 2\r\n\r\n[]')
  })
  const res = await request(g.url + '/api/tasks', { headers: bearer(token) })
  await res.body.dump()
  t.equal(res.statusCode, 200)
  t.notOk('x-internal-a' in res.headers, 'listed in the first Connection line')
  t.notOk('x-internal-b' in res.headers, 'listed in the second')
  t.equal(res.headers['x-kept'], '3', 'other headers pass')
})

t.test('the task service answering before it read the body → the client\'s connection is closed after the answer', async (t) => {
  const g = await rawUpstream(t, (sock) => {
    sock.end('HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}')
  })
  const res = await request(g.url + '/api/tasks', { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: Buffer.alloc(2 * 1024 * 1024, 'a') }).catch((err: Error) => err)
  if (res instanceof Error) {
    // The gateway may close while the client is still sending; what must not happen is a hang.
    t.pass(`the connection ended (${res.message})`)
    return
  }
  await res.body.dump()
  t.equal(res.statusCode, 413, 'the task service\'s answer is forwarded')
  t.equal(res.headers.connection, 'close', 'with Connection: close: the unread rest of the body is not taken for a next request')
})

t.test('Vary from the task service is kept next to the gateway\'s own (CORS: Origin)', async (t) => {
  const g = await startGateway({ TASK_SERVICE_URL: up.url, CORS_ORIGINS: 'http://localhost:3000' })
  t.teardown(() => g.close())
  up.respond((_req, res) => { res.writeHead(200, { 'content-type': 'application/json', vary: 'Accept-Encoding' }).end('[]') })
  const res = await request(g.url + '/api/tasks', { headers: { ...bearer(token), origin: 'http://localhost:3000' } })
  await res.body.dump()
  const vary = [res.headers.vary].flat().join(',').toLowerCase()
  t.match(vary, /origin/, 'the gateway\'s Vary: Origin')
  t.match(vary, /accept-encoding/, 'the task service\'s Vary: Accept-Encoding')
  t.equal(res.headers['access-control-allow-origin'], 'http://localhost:3000')
})

t.test('headers out: Set-Cookie, CDN-Cache-Control, Surrogate-Control and every Access-Control-* from the task service never reach the client', async (t) => {
  const g = await startGateway({ TASK_SERVICE_URL: up.url, CORS_ORIGINS: 'http://localhost:3000' })
  t.teardown(() => g.close())
  up.respond((_req, res) => {
    res.writeHead(200, [
      'content-type', 'application/json',
      'set-cookie', 'session=upstream; Path=/', 'set-cookie', 'other=1', 'Set-Cookie2', 'old=1',
      'cdn-cache-control', 'max-age=3600', 'Cloudflare-CDN-Cache-Control', 'max-age=60', 'surrogate-control', 'max-age=3600',
      'access-control-allow-origin', '*', 'access-control-allow-credentials', 'true', 'access-control-expose-headers', 'x-secret',
      'access-control-allow-methods', 'DELETE', 'access-control-max-age', '86400', 'access-control-allow-private-network', 'true',
      'etag', '"v1"'
    ]).end('[]')
  })
  // Without CORS_ORIGINS the gateway sends no CORS headers at all: none may come from the task service.
  for (const origin of [undefined, 'http://evil.example']) {
    const res = await request(gw.url + '/api/tasks', { headers: { ...bearer(token), ...(origin !== undefined ? { origin } : {}) } })
    await res.body.dump()
    t.equal(res.statusCode, 200)
    for (const name of ['set-cookie', 'set-cookie2', 'cdn-cache-control', 'cloudflare-cdn-cache-control', 'surrogate-control']) t.notOk(name in res.headers, `${name} dropped`)
    t.same(Object.keys(res.headers).filter((n) => n.startsWith('access-control-')), [], `no Access-Control-* (origin ${origin ?? 'none'})`)
    t.equal(res.headers.etag, '"v1"', 'ordinary headers pass')
  }
  // With CORS_ORIGINS, the CORS headers are the gateway's own.
  for (const origin of [undefined, 'http://localhost:3000', 'http://evil.example']) {
    const res = await request(g.url + '/api/tasks', { headers: { ...bearer(token), ...(origin !== undefined ? { origin } : {}) } })
    await res.body.dump()
    t.equal(res.statusCode, 200)
    t.notOk('set-cookie' in res.headers)
    t.equal(res.headers['access-control-allow-origin'], origin === 'http://localhost:3000' ? origin : undefined, `only the gateway decides CORS (origin ${origin ?? 'none'})`)
    t.notMatch(String(res.headers['access-control-expose-headers'] ?? ''), /x-secret/)
    for (const name of ['access-control-allow-methods', 'access-control-max-age', 'access-control-allow-private-network']) t.notOk(name in res.headers, `${name} dropped`)
  }
})

t.test('headers out: instructions to a web server in front (X-Accel-*, X-Sendfile, …), Proxy-Authenticate and the internal identity headers never reach the client', async (t) => {
  up.respond((_req, res) => {
    res.writeHead(200, [
      'content-type', 'application/json',
      'X-Accel-Redirect', '/internal/secret', 'x-accel-buffering', 'no', 'X-Accel-Expires', '3600', 'X-Sendfile', '/etc/passwd',
      'X-Lighttpd-Send-File', '/etc/passwd', 'X-LiteSpeed-Location', '/internal', 'Proxy-Authenticate', 'Basic realm="x"',
      'X-User-Id', 'someone', 'X-Gateway-Assertion', 'eyJ.a.b', 'etag', '"v1"'
    ]).end('[]')
  })
  const res = await request(gw.url + '/api/tasks', { headers: bearer(token) })
  await res.body.dump()
  t.equal(res.statusCode, 200)
  for (const name of ['x-accel-redirect', 'x-accel-buffering', 'x-accel-expires', 'x-sendfile', 'x-lighttpd-send-file', 'x-litespeed-location', 'proxy-authenticate', 'x-user-id', 'x-gateway-assertion']) {
    t.notOk(name in res.headers, `${name} dropped`)
  }
  t.equal(res.headers.etag, '"v1"', 'ordinary headers pass')
})

t.test('headers out: a Location, Content-Location or Link that is not a clean path under /tasks is dropped, never passed through', async (t) => {
  const port = new URL(up.url).port
  const bad = [
    '/\\evil.example/tasks', '/\\/evil.example', '\\\\evil.example\\tasks', '//evil.example/tasks/1', 'https://evil.example/tasks/1',
    'http://evil.example', 'javascript:alert(1)', `http://10.0.0.5:${port}/tasks/1`, `http://127.0.0.1:${Number(port) + 1}/tasks/1`,
    `http://0x7f000001:${port}/admin`, '/tasks/../admin', '/tasks/%2e%2e/admin', '/tasks/.%2E/admin', '/tasks/%2fadmin', '/tasks/%5cevil',
    '/tasks//evil.example', '/tasks/a b', 'tasks/1', '../tasks/1', '?page=2', '/admin', '/tasksx', ''
  ]
  for (const value of bad) {
    up.respond((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json', location: value, 'content-location': value, link: `<${value}>; rel="next"` }).end('{}')
    })
    const res = await request(gw.url + '/api/tasks', { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: '{}' })
    await res.body.dump()
    t.equal(res.statusCode, 201)
    t.notOk('location' in res.headers, `Location ${JSON.stringify(value)} dropped`)
    t.notOk('content-location' in res.headers, `Content-Location ${JSON.stringify(value)} dropped`)
    t.notOk('link' in res.headers, `Link ${JSON.stringify(value)} dropped`)
  }
  up.respond((_req, res) => {
    res.writeHead(201, { 'content-type': 'application/json', location: '/tasks/1', link: '<https://evil.example/x>; rel="help", </tasks?cursor=abc>; rel="next", </tasks/2>; rel="up"; anchor="https://evil.example"' }).end('{}')
  })
  const res = await request(gw.url + '/api/tasks', { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: '{}' })
  await res.body.dump()
  t.equal(res.headers.location, '/api/tasks/1', 'a clean path is rewritten under the prefix the client used')
  t.equal(res.headers.link, '</api/tasks?cursor=abc>; rel="next"', 'only the clean Link entries are kept')
})

t.test('PUBLIC_URL: Location, Content-Location and Link are absolute URLs on the public origin', async (t) => {
  const g = await startGateway({ TASK_SERVICE_URL: up.url, PUBLIC_URL: 'https://api.example.com' })
  t.teardown(() => g.close())
  up.respond((_req, res) => {
    res.writeHead(201, { 'content-type': 'application/json', location: '/tasks/7', 'content-location': `${up.url}/tasks/7`, link: '</tasks?cursor=x>; rel="next"' }).end('{}')
  })
  const res = await request(g.url + '/api/user-1/tasks', { method: 'POST', headers: { ...bearer(await signHs({ sub: 'user-1' })), 'content-type': 'application/json' }, body: '{}' })
  await res.body.dump()
  t.equal(res.headers.location, 'https://api.example.com/api/user-1/tasks/7')
  t.equal(res.headers['content-location'], 'https://api.example.com/api/user-1/tasks/7')
  t.equal(res.headers.link, '<https://api.example.com/api/user-1/tasks?cursor=x>; rel="next"')
  up.respond((_req, res) => { res.writeHead(201, { 'content-type': 'application/json', location: '/\\evil.example/tasks' }).end('{}') })
  const bad = await request(g.url + '/api/tasks', { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: '{}' })
  await bad.body.dump()
  t.notOk('location' in bad.headers, 'an unclean reference is still dropped')
})
