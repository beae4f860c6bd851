// TRUST_PROXY: off by default (client-sent X-Forwarded-* ignored, the socket's address is the client);
// `true`, a hop count or a list of addresses/CIDRs take the client from X-Forwarded-For by Fastify's
// trustProxy semantics, and that address is what the per-address limit counts, the access log shows and
// the task service receives. Bad values stop the gateway at start with a message naming TRUST_PROXY.
import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { loadConfig } from '../src/config.js'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { startGateway } from '../../support/gateway.js'
import { ASSERTION_ENV, AUDIENCE, bearer, SECRET, signHs } from '../../support/tokens.js'

let up: StubUpstream
let token: string
t.before(async () => {
  up = await startUpstream()
  token = await signHs({ sub: 'proxied-user' })
})
t.teardown(async () => { await up.close() })
t.beforeEach(() => { up.received.length = 0 })

async function forwardedHeaders (url: string, headers: Record<string, string>): Promise<Record<string, unknown>> {
  const res = await request(url + '/api/tasks', { headers: { ...bearer(token), ...headers } })
  await res.body.dump()
  if (res.statusCode !== 200) throw new Error(`expected 200, got ${res.statusCode}`)
  const got = up.tasks().at(-1)
  up.received.length = 0
  return got?.headers ?? {}
}

t.test('settings: off by default; true, hop counts and address lists accepted; anything else refused with a clear message', async (t) => {
  t.same(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE }).trustProxy, { kind: 'off' })
  t.same(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, TRUST_PROXY: 'false' }).trustProxy, { kind: 'off' })
  t.same(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, TRUST_PROXY: 'true' }).trustProxy, { kind: 'all' })
  t.same(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, TRUST_PROXY: '2' }).trustProxy, { kind: 'hops', hops: 2 })
  t.same(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, TRUST_PROXY: '10.0.0.0/8, 192.168.1.7 ,fd00::/8,loopback' }).trustProxy,
    { kind: 'addresses', addresses: ['10.0.0.0/8', '192.168.1.7', 'fd00::/8', 'loopback'] })
  for (const bad of ['yes please', '10.0.0.0/33', '1.2.3', '10.0.0.1,', 'example.com', '::g', '33', '-1', ',']) {
    t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, TRUST_PROXY: bad }), { name: 'ConfigError', message: /TRUST_PROXY/ }, `"${bad}"`)
  }
})

t.test('a bad TRUST_PROXY stops the process: exit 1, one line naming TRUST_PROXY', async (t) => {
  const serverPath = fileURLToPath(new URL('../src/server.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), serverPath], {
    env: { PATH: process.env.PATH ?? '', JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, PORT: '0', TRUST_PROXY: '10.0.0.0/99' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.equal(code, 1)
  t.match(stderr, /^gateway: invalid configuration: TRUST_PROXY .*"10\.0\.0\.0\/99"/m)
})

t.test('off (default): client-sent X-Forwarded-* are ignored; the socket address is the client', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url })
  t.teardown(() => gw.close())
  const h = await forwardedHeaders(gw.url, { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' })
  t.equal(h['x-forwarded-for'], '127.0.0.1')
  t.equal(h['x-forwarded-proto'], 'http')
  t.equal(h['x-forwarded-host'], `127.0.0.1:${gw.port}`)
})

t.test('a trusted peer: the client is the right-most untrusted X-Forwarded-For entry; its scheme is used', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, TRUST_PROXY: '127.0.0.1' })
  t.teardown(() => gw.close())
  let h = await forwardedHeaders(gw.url, { 'x-forwarded-for': '6.6.6.6, 203.0.113.9', 'x-forwarded-proto': 'https' })
  t.equal(h['x-forwarded-for'], '203.0.113.9', 'the address the trusted proxy saw; the client-written 6.6.6.6 is not taken')
  t.equal(h['x-forwarded-proto'], 'https')
  h = await forwardedHeaders(gw.url, {})
  t.equal(h['x-forwarded-for'], '127.0.0.1', 'no X-Forwarded-For: the peer is the client')

  const chain = await startGateway({ TASK_SERVICE_URL: up.url, TRUST_PROXY: '127.0.0.1,10.0.0.0/8' })
  t.teardown(() => chain.close())
  h = await forwardedHeaders(chain.url, { 'x-forwarded-for': '198.51.100.4, 10.1.2.3' })
  t.equal(h['x-forwarded-for'], '198.51.100.4', 'two trusted hops (the peer and 10.1.2.3): the client is the next one')
})

t.test('an untrusted peer: X-Forwarded-* ignored even with TRUST_PROXY set', async (t) => {
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, TRUST_PROXY: '10.0.0.0/8' })
  t.teardown(() => gw.close())
  const h = await forwardedHeaders(gw.url, { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' })
  t.equal(h['x-forwarded-for'], '127.0.0.1')
  t.equal(h['x-forwarded-proto'], 'http')
})

t.test('TRUST_PROXY=true takes the left-most entry; a hop count takes the n-th from the right', async (t) => {
  const all = await startGateway({ TASK_SERVICE_URL: up.url, TRUST_PROXY: 'true' })
  t.teardown(() => all.close())
  t.equal((await forwardedHeaders(all.url, { 'x-forwarded-for': '192.0.2.1, 192.0.2.2, 192.0.2.3' }))['x-forwarded-for'], '192.0.2.1')
  const one = await startGateway({ TASK_SERVICE_URL: up.url, TRUST_PROXY: '1' })
  t.teardown(() => one.close())
  t.equal((await forwardedHeaders(one.url, { 'x-forwarded-for': '192.0.2.1, 192.0.2.2, 192.0.2.3' }))['x-forwarded-for'], '192.0.2.3')
  const two = await startGateway({ TASK_SERVICE_URL: up.url, TRUST_PROXY: '2' })
  t.teardown(() => two.close())
  t.equal((await forwardedHeaders(two.url, { 'x-forwarded-for': '192.0.2.1, 192.0.2.2, 192.0.2.3' }))['x-forwarded-for'], '192.0.2.2')
})

t.test('behind a trusted proxy the per-address limit counts each client, not the proxy; the log shows the client', async (t) => {
  const lines: string[] = []
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, TRUST_PROXY: '127.0.0.1', RATE_LIMIT_IP_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000' }, { t, logStream: { write: (l) => { lines.push(l) } } })
  const url = `${gw.url}/api/tasks`
  const from = async (ip: string): Promise<number> => {
    const res = await request(url, { headers: { authorization: 'Bearer not.a.token', 'x-forwarded-for': ip } })
    await res.body.dump()
    return res.statusCode
  }
  const a = [await from('198.51.100.1'), await from('198.51.100.1'), await from('198.51.100.1')]
  t.same(a, [401, 401, 429], 'one client cut off')
  t.equal(await from('198.51.100.2'), 401, 'another client behind the same proxy is not')
  const done = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request completed')
  t.same(done.map((l) => l.clientIp), ['198.51.100.1', '198.51.100.1', '198.51.100.1', '198.51.100.2'])
})
