// Integration with the real better-auth package: its jwt plugin (EdDSA keys, /api/auth/jwks) and an
// in-memory adapter. Proves compatibility instead of assuming it: a Better Auth token is accepted,
// X-User-Id is the user's id (sub), never the email, and after key rotation a token signed by the
// second key is accepted.
import t from 'tap'
import { request } from 'undici'
import { betterAuth } from 'better-auth'
import { jwt } from 'better-auth/plugins'
import { memoryAdapter } from 'better-auth/adapters/memory'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { bearer } from '../../support/tokens.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import { startJwks, type JwksServer } from '../../support/jwks-server.js'

const BASE = 'http://localhost:3000'
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const db: Record<string, any[]> = { user: [], session: [], account: [], verification: [], jwks: [] }
const auth = betterAuth({
  baseURL: BASE,
  secret: 'better-auth-test-secret-0123456789abcdefghijkl',
  database: memoryAdapter(db),
  emailAndPassword: { enabled: true },
  plugins: [jwt()],
  logger: { disabled: true }
})

let up: StubUpstream
let jwks: JwksServer
let gw: RunningGateway
let cookie: string
let userId: string

async function authCall (method: string, path: string, init: { body?: unknown, cookie?: string } = {}): Promise<Response> {
  const headers = new Headers({ origin: BASE })
  if (init.body !== undefined) headers.set('content-type', 'application/json')
  if (init.cookie !== undefined) headers.set('cookie', init.cookie)
  return await auth.handler(new Request(BASE + path, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) }))
}

async function fetchToken (): Promise<string> {
  const res = await authCall('GET', '/api/auth/token', { cookie })
  if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}`)
  return ((await res.json()) as { token: string }).token
}

async function publishJwks (): Promise<string> {
  const res = await authCall('GET', '/api/auth/jwks')
  const body = await res.text()
  jwks.body = body
  return body
}

t.before(async () => {
  const signUp = await authCall('POST', '/api/auth/sign-up/email', { body: { email: 'alice@example.com', password: 'correct-horse-battery-staple', name: 'Alice' } })
  if (signUp.status !== 200) throw new Error(`sign-up answered ${signUp.status}: ${await signUp.text()}`)
  userId = ((await signUp.json()) as { user: { id: string } }).user.id
  cookie = signUp.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ')
  up = await startUpstream()
  jwks = await startJwks()
  await fetchToken() // creates the first key pair
  await publishJwks()
  gw = await startGateway({
    TASK_SERVICE_URL: up.url,
    JWT_SECRET: '',
    BETTER_AUTH_URL: BASE, // issuer and audience = http://localhost:3000, as Better Auth signs them
    JWKS_URL: jwks.url, // the same JWKS, served locally
    JWKS_COOLDOWN_MS: '100'
  })
})
t.teardown(async () => {
  await gw.close()
  await jwks.close()
  await up.close()
})

t.test('Better Auth publishes an Ed25519 key with kid and alg EdDSA', async (t) => {
  const doc = JSON.parse(jwks.body ?? '{}') as { keys: Array<Record<string, string>> }
  t.equal(doc.keys.length, 1)
  t.match(doc.keys[0], { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', kid: String })
})

t.test('a Better Auth token is accepted and X-User-Id is sub (the user id), not the email', async (t) => {
  const token = await fetchToken()
  const [h, p] = token.split('.') as [string, string]
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg: string }
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
  t.equal(header.alg, 'EdDSA')
  t.equal(claims.sub, userId)
  t.equal(claims.email, 'alice@example.com', 'the token carries the email too')
  t.equal(claims.iss, BASE)
  t.equal(claims.aud, BASE)

  up.received.length = 0
  const res = await request(gw.url + '/api/tasks', { headers: bearer(token) })
  await res.body.dump()
  t.equal(res.statusCode, 200)
  const got = up.tasks()[0]
  t.equal(got?.headers['x-user-id'], userId)
  t.notMatch(JSON.stringify(got?.rawHeaders), /alice@example\.com|Alice/, 'neither email nor name is forwarded')

  const compat = await request(`${gw.url}/api/${encodeURIComponent(userId)}/tasks`, { headers: bearer(token) })
  await compat.body.dump()
  t.equal(compat.statusCode, 200, 'the /api/{user_id}/tasks contract works with the Better Auth user id')
  const byEmail = await request(`${gw.url}/api/alice%40example.com/tasks`, { headers: bearer(token) })
  await byEmail.body.dump()
  t.equal(byEmail.statusCode, 403, 'the email is not the identity')
})

t.test('after key rotation, a token signed by the second key is accepted', async (t) => {
  const first = await fetchToken()
  const firstKid = (JSON.parse(Buffer.from(first.split('.')[0] as string, 'base64url').toString()) as { kid: string }).kid
  // Rotate: expire the current key; Better Auth mints a new one on the next signing.
  for (const k of db.jwks ?? []) k.expiresAt = new Date(Date.now() - 1_000)
  const second = await fetchToken()
  const secondKid = (JSON.parse(Buffer.from(second.split('.')[0] as string, 'base64url').toString()) as { kid: string }).kid
  t.not(secondKid, firstKid, 'signed by a different key')
  const published = JSON.parse(await publishJwks()) as { keys: Array<{ kid: string }> }
  t.ok(published.keys.some((k) => k.kid === secondKid), 'the JWKS now lists the second key')
  await new Promise((resolve) => setTimeout(resolve, 150)) // past the 100 ms cooldown
  up.received.length = 0
  const res = await request(gw.url + '/api/tasks', { headers: bearer(second) })
  await res.body.dump()
  t.equal(res.statusCode, 200)
  t.equal(up.tasks()[0]?.headers['x-user-id'], userId)
})

t.test('a Better Auth token for another deployment (wrong issuer) is rejected', async (t) => {
  const other = betterAuth({
    baseURL: 'http://other.example:4000',
    secret: 'another-better-auth-secret-0123456789abcdefgh',
    database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
    emailAndPassword: { enabled: true },
    plugins: [jwt()],
    logger: { disabled: true }
  })
  const signUp = await other.handler(new Request('http://other.example:4000/api/auth/sign-up/email', {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: 'http://other.example:4000' },
    body: JSON.stringify({ email: 'mallory@example.com', password: 'correct-horse-battery-staple', name: 'M' })
  }))
  const c = signUp.headers.getSetCookie().map((x) => x.split(';')[0]).join('; ')
  const tokRes = await other.handler(new Request('http://other.example:4000/api/auth/token', { headers: { cookie: c, origin: 'http://other.example:4000' } }))
  const token = ((await tokRes.json()) as { token: string }).token
  const res = await request(gw.url + '/api/tasks', { headers: bearer(token) })
  await res.body.dump()
  t.equal(res.statusCode, 401, 'unknown key / issuer → 401')
})
