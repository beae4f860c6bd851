// Slow and greedy clients cannot hold the gateway: headers and whole requests must arrive within their
// timeouts (checked every second, not Node's default 30 s), bodies announced over MAX_BODY_BYTES are refused
// before anything is forwarded, and connections over SERVER_MAX_CONNECTIONS are closed at once.
import t from 'tap'
import net from 'node:net'
import { request } from 'undici'
import { loadConfig } from '../src/config.js'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { eventually } from '../../support/wait.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import { ASSERTION_ENV, AUDIENCE, bearer, SECRET, signHs } from '../../support/tokens.js'

let up: StubUpstream
let gw: RunningGateway
let token: string

t.before(async () => {
  up = await startUpstream()
  gw = await startGateway({ TASK_SERVICE_URL: up.url, SERVER_HEADERS_TIMEOUT_MS: '500', SERVER_REQUEST_TIMEOUT_MS: '1000', MAX_BODY_BYTES: '4096', RATE_LIMIT_IP_MAX: '0' })
  token = await signHs({ sub: 'user-1' })
})
t.teardown(async () => {
  await gw.close()
  await up.close()
})

interface Dripper { closed: Promise<string>, stop: () => void }

/** Opens a socket, writes `head` at once, then one more chunk of `drip` every `everyMs` until closed. */
function drip (port: number, head: string, dripChunk: string, everyMs: number): Dripper {
  const socket = net.connect(port, '127.0.0.1')
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  socket.on('error', () => {})
  socket.write(head)
  const timer = setInterval(() => { if (!socket.destroyed) socket.write(dripChunk) }, everyMs)
  const closed = new Promise<string>((resolve) => socket.on('close', () => { clearInterval(timer); resolve(received) }))
  return { closed, stop: () => { clearInterval(timer); socket.destroy() } }
}

/** Resolves with the value, or rejects when it takes longer than `ms` (an upper bound for "never hangs"). */
async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} still open after ${ms} ms`)), ms) })
  try { return await Promise.race([p, limit]) } finally { clearTimeout(timer) }
}

t.test('slowloris headers (one header line every 200 ms, forever) → 408 and the connection closed', async (t) => {
  const d = drip(gw.port, 'GET /api/tasks HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n', 200)
  t.teardown(d.stop)
  const got = await within(d.closed, 10_000, 'slow-header connection')
  t.match(got, /^HTTP\/1\.1 408 /, 'answered 408 Request Timeout')
  t.equal(up.tasks().length, 0, 'nothing forwarded')
})

t.test('a body trickled slower than the request timeout → the connection is closed', async (t) => {
  const head = `POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`
  const d = drip(gw.port, head, ' ', 200)
  t.teardown(d.stop)
  await within(d.closed, 10_000, 'slow-body connection')
  t.pass('closed by the gateway')
})

t.test('thirty slowloris sockets do not keep a normal client from being served', async (t) => {
  const slow = Array.from({ length: 30 }, () => drip(gw.port, 'GET /api/tasks HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n', 100))
  t.teardown(() => { for (const d of slow) d.stop() })
  const res = await request(gw.url + '/api/tasks', { headers: bearer(token) })
  await res.body.dump()
  t.equal(res.statusCode, 200, 'served while the slow sockets are open')
  await within(Promise.all(slow.map((d) => d.closed)), 10_000, 'slow sockets')
  t.pass('every slow socket was closed by the gateway')
})

t.test('Content-Length over MAX_BODY_BYTES → 413 JSON before authentication, nothing forwarded', async (t) => {
  up.received.length = 0
  for (const headers of [{ ...bearer(token), 'content-type': 'application/json' }, { 'content-type': 'application/json' }]) {
    const res = await request(gw.url + '/api/tasks', { method: 'POST', headers, body: 'x'.repeat(5000) })
    const body = await res.body.json() as { error: { code: string } }
    t.equal(res.statusCode, 413)
    t.equal(body.error.code, 'payload_too_large')
  }
  t.equal(up.tasks().length, 0)
})

t.test('connections over SERVER_MAX_CONNECTIONS are closed at once; capacity comes back when they go', async (t) => {
  const capped = await startGateway({ TASK_SERVICE_URL: up.url, SERVER_MAX_CONNECTIONS: '5' })
  t.teardown(() => capped.close())
  const idle: net.Socket[] = []
  for (let i = 0; i < 5; i++) {
    const s = net.connect(capped.port, '127.0.0.1')
    s.on('error', () => {})
    await new Promise((resolve) => s.on('connect', resolve))
    idle.push(s)
  }
  t.teardown(() => { for (const s of idle) s.destroy() })
  const extra = drip(capped.port, `GET /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`, '', 1_000)
  t.teardown(extra.stop)
  const got = await within(extra.closed, 10_000, 'sixth connection')
  t.equal(got, '', 'the sixth connection was closed without an answer')
  for (const s of idle) s.destroy()
  await eventually(async () => {
    try {
      const res = await request(capped.url + '/api/tasks', { headers: bearer(token) })
      await res.body.dump()
      return res.statusCode === 200
    } catch { return false }
  }, 10_000)
  t.pass('served again once connections were released')
})

t.test('defaults: headers 10 s, whole request 30 s, 10,000 connections, 1 MiB announced bodies, 10 s response stall', async (t) => {
  const s = loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE }).limits?.server
  t.same(s, { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, connectionsCheckingIntervalMs: 1_000, maxConnections: 10_000, maxConnectionsPerAddress: 256, maxBodyBytes: 1_048_576, shutdownDrainMs: 0, responseStallTimeoutMs: 10_000 })
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, SERVER_HEADERS_TIMEOUT_MS: '5000', SERVER_REQUEST_TIMEOUT_MS: '1000' }), /SERVER_REQUEST_TIMEOUT_MS/)
  t.equal(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, SERVER_RESPONSE_STALL_TIMEOUT_MS: '2500' }).limits?.server.responseStallTimeoutMs, 2_500)
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, SERVER_RESPONSE_STALL_TIMEOUT_MS: '0' }), /SERVER_RESPONSE_STALL_TIMEOUT_MS/)
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, SERVER_RESPONSE_STALL_TIMEOUT_MS: 'soon' }), /SERVER_RESPONSE_STALL_TIMEOUT_MS/)
})

/** Opens `n` idle connections from `localAddress`; counts how many the server has closed. */
async function idleFlood (port: number, n: number, localAddress = '127.0.0.1'): Promise<{ sockets: net.Socket[], closedByServer: () => number }> {
  let closed = 0
  const sockets = await Promise.all(Array.from({ length: n }, async () => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress })
    s.on('error', () => {})
    s.once('close', () => { closed++ })
    await new Promise((resolve) => { s.once('connect', resolve); s.once('close', resolve) })
    return s
  }))
  return { sockets, closedByServer: () => closed }
}

/** GET /api/tasks over a fresh connection from `localAddress` (node:http: it can bind one). */
async function getFrom (port: number, localAddress: string): Promise<number> {
  const http = await import('node:http')
  return await new Promise((resolve, reject) => {
    const r = http.get({ host: '127.0.0.1', port, path: '/api/tasks', localAddress, agent: false, headers: bearer(token) }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    r.on('error', reject)
  })
}

t.test('300 idle connections from one address: all but SERVER_MAX_CONNECTIONS_PER_ADDRESS are closed at once; other addresses are served; its capacity comes back', async (t) => {
  // The ratio of the default case (10,000 idle connections against SERVER_MAX_CONNECTIONS 10,000), scaled down.
  const capped = await startGateway({ TASK_SERVICE_URL: up.url, SERVER_MAX_CONNECTIONS: '100', SERVER_MAX_CONNECTIONS_PER_ADDRESS: '20' })
  t.teardown(() => capped.close())
  const flood = await idleFlood(capped.port, 300)
  t.teardown(() => { for (const s of flood.sockets) s.destroy() })
  await eventually(() => flood.closedByServer() === 280, 10_000)
  t.equal(await getFrom(capped.port, '127.0.0.2'), 200, 'another address is served')
  t.equal(await getFrom(capped.port, '127.0.0.3'), 200, 'and another')
  await t.rejects(getFrom(capped.port, '127.0.0.1'), 'the flooding address gets no further connection')
  t.equal(flood.closedByServer(), 280, 'the 20 allowed stay open')
  for (const s of flood.sockets) s.destroy()
  await eventually(async () => { try { return await getFrom(capped.port, '127.0.0.1') === 200 } catch { return false } }, 10_000)
  t.pass('served again once its connections closed')
})

t.test('a trusted proxy (TRUST_PROXY) is not capped per address', async (t) => {
  const proxied = await startGateway({ TASK_SERVICE_URL: up.url, SERVER_MAX_CONNECTIONS_PER_ADDRESS: '5', TRUST_PROXY: '127.0.0.1' })
  t.teardown(() => proxied.close())
  const flood = await idleFlood(proxied.port, 20)
  t.teardown(() => { for (const s of flood.sockets) s.destroy() })
  t.equal(await getFrom(proxied.port, '127.0.0.1'), 200)
  t.equal(flood.closedByServer(), 0, 'all 20 connections of the proxy stay open')
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, SERVER_MAX_CONNECTIONS_PER_ADDRESS: 'lots' }), /SERVER_MAX_CONNECTIONS_PER_ADDRESS/)
})
