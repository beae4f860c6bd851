// Concurrency fairness: a cap on each user's in-flight requests (429 too_many_concurrent_requests with
// Retry-After), and request bodies read whole before a pooled connection to the task service is taken, so
// one user trickling uploads cannot hold the pool: everyone else is served, the abuser gets 429s.
import t from 'tap'
import net from 'node:net'
import type { ServerResponse } from 'node:http'
import { request } from 'undici'
import { loadConfig } from '../src/config.js'
import { defaultResponder, startUpstream, type StubUpstream } from './helpers/upstream.js'
import { eventually } from '../../support/wait.js'
import { startGateway } from '../../support/gateway.js'
import { ASSERTION_ENV, AUDIENCE, bearer, SECRET, signHs } from '../../support/tokens.js'

let up: StubUpstream
t.before(async () => { up = await startUpstream() })
t.teardown(async () => { await up.close() })
t.beforeEach(() => { up.received.length = 0 })

interface Trickle { received: () => string, closed: () => boolean, write: (s: string) => void, destroy: () => void }

/** A chunked POST whose body comes one byte per `everyMs`, until told otherwise. */
function trickle (port: number, token: string, everyMs: number): Trickle {
  const socket = net.connect(port, '127.0.0.1')
  let received = ''
  let closed = false
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  socket.on('error', () => {})
  socket.on('close', () => { closed = true })
  socket.write(`POST /api/tasks HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`)
  // The first byte at once, then one every everyMs: the body has begun whatever the test does next.
  socket.write('1\r\n \r\n')
  const timer = setInterval(() => { if (!socket.destroyed) socket.write('1\r\n \r\n') }, everyMs)
  socket.on('close', () => { clearInterval(timer) })
  return {
    received: () => received,
    closed: () => closed,
    write: (s) => { clearInterval(timer); socket.write(s) },
    destroy: () => { clearInterval(timer); socket.destroy() }
  }
}

async function get (url: string, token: string): Promise<{ status: number, headers: Record<string, unknown>, code?: string }> {
  const res = await request(url + '/api/tasks', { headers: bearer(token) })
  const text = await res.body.text()
  let code: string | undefined
  try { code = (JSON.parse(text) as { error?: { code?: string } }).error?.code } catch { code = undefined }
  return { status: res.statusCode, headers: res.headers, code }
}

t.test('default cap 32, configurable, 0 turns it off; bad values refuse to start', async (t) => {
  t.equal(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE }).limits.concurrency.perUserMax, 32)
  t.equal(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, MAX_CONCURRENT_REQUESTS_PER_USER: '0' }).limits.concurrency.perUserMax, 0)
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, MAX_CONCURRENT_REQUESTS_PER_USER: 'many' }), /MAX_CONCURRENT_REQUESTS_PER_USER/)
  t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, MAX_CONCURRENT_REQUESTS_PER_USER: '-1' }), /MAX_CONCURRENT_REQUESTS_PER_USER/)
})

t.test('one user trickling 10 uploads through a pool of 2: the cap answers 429 to all but 4, nothing holds the pool, other users are served', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, UPSTREAM_CONNECTIONS: '2', UPSTREAM_TIMEOUT_MS: '3000', MAX_CONCURRENT_REQUESTS_PER_USER: '4' })
  t.teardown(() => gw.close())
  const alice = await signHs({ sub: 'alice-trickles' })
  const bob = await signHs({ sub: 'bob-reads' })
  const trickles = Array.from({ length: 10 }, () => trickle(gw.port, alice, 100))
  t.teardown(() => { for (const tr of trickles) tr.destroy() })

  const refused = (): Trickle[] => trickles.filter((tr) => tr.received().startsWith('HTTP/1.1 429 '))
  await eventually(() => refused().length === 6, 10_000)
  const answer = refused()[0]?.received() ?? ''
  t.match(answer, /\r\nretry-after: 1\r\n/i, 'Retry-After: 1')
  t.match(answer, /"code":"too_many_concurrent_requests"/)
  t.match(answer, /"requestId":"/, "the gateway's JSON error shape")
  const held = trickles.filter((tr) => tr.received() === '')
  t.equal(held.length, 4, 'four uploads in flight, still being read')

  // While the four trickle on, another user (4 at a time: his own cap) gets every answer, from the pool of two.
  const statuses: number[] = []
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let i = 0; i < 5; i++) statuses.push((await get(gw.url, bob)).status)
  }))
  t.same(statuses, Array(20).fill(200), 'bob: 20 of 20 answered 200')
  t.equal(up.tasks().filter((r) => r.method === 'POST').length, 0, "none of alice's uploads reached the task service yet")
  t.equal((await get(gw.url, alice)).code, 'too_many_concurrent_requests', 'alice herself is still at her cap')

  // An upload that completes is forwarded whole.
  const done = held[0] as Trickle
  done.write('1\r\n}\r\n0\r\n\r\n')
  await eventually(() => done.received().includes('\r\n\r\n'), 10_000)
  t.match(done.received(), /^HTTP\/1\.1 200 /)
  const post = up.tasks().find((r) => r.method === 'POST')
  t.ok(post !== undefined && /^ +\}$/.test(post.body), 'the task service received the whole body at once')

  // Slots come back when requests finish or their clients leave.
  for (const tr of held) tr.destroy()
  await eventually(async () => (await get(gw.url, alice)).status === 200, 10_000)
  t.pass('alice is served again once her requests are gone')
})

t.test('a chunked body over MAX_BODY_BYTES → 413 payload_too_large, connection closed, nothing forwarded', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, MAX_BODY_BYTES: '1000' })
  t.teardown(() => gw.close())
  const token = await signHs({ sub: 'big-body' })
  const socket = net.connect(gw.port, '127.0.0.1')
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.on('close', () => { resolve() }))
  socket.write(`POST /api/tasks HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`)
  for (let i = 0; i < 3; i++) socket.write(`1f4\r\n${'x'.repeat(500)}\r\n`)
  await closed
  t.match(received, /^HTTP\/1\.1 413 /)
  t.match(received, /"code":"payload_too_large"/)
  t.equal(up.tasks().length, 0, 'nothing forwarded')
})

t.test('a client that leaves mid-body: nothing is sent to the task service, its slot is freed', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, MAX_CONCURRENT_REQUESTS_PER_USER: '1' })
  t.teardown(() => gw.close())
  const token = await signHs({ sub: 'leaver' })
  const tr = trickle(gw.port, token, 50)
  await eventually(async () => (await get(gw.url, token)).code === 'too_many_concurrent_requests', 10_000)
  tr.destroy()
  await eventually(async () => (await get(gw.url, token)).status === 200, 10_000)
  t.equal(up.tasks().filter((r) => r.method === 'POST').length, 0)
})

t.test('pipelined requests whose client leaves before their answers give their slots back', async (t) => {
  // The task service holds every request marked hold=1 (until the test ends) and answers the rest at once.
  const held: ServerResponse[] = []
  const slow = await startUpstream((req, res, body) => {
    if ((req.url ?? '').includes('hold=1')) held.push(res)
    else defaultResponder(req, res, body)
  })
  t.teardown(async () => { for (const res of held) res.destroy(); await slow.close() })
  const gw = await startGateway({ TASK_SERVICE_URL: slow.url, MAX_CONCURRENT_REQUESTS_PER_USER: '3' })
  t.teardown(() => gw.close())
  const token = await signHs({ sub: 'pipeliner' })
  const socket = net.connect(gw.port, '127.0.0.1')
  socket.on('error', () => {})
  // Three requests on one connection: the first answer has the socket, the other two wait for their turn.
  const one = `GET /api/tasks?hold=1 HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer ${token}\r\n\r\n`
  socket.write(one + one + one)
  await eventually(() => held.length === 3, 10_000)
  t.equal((await get(gw.url, token)).code, 'too_many_concurrent_requests', 'three in flight: the user is at the cap')
  socket.destroy()
  await eventually(async () => (await get(gw.url, token)).status === 200, 10_000)
  t.pass('all three slots are free once the connection is gone')
})
