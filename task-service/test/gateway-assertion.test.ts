// The zero-trust contract of the task service: a request on /tasks… is served only with an identity assertion
// the gateway signed for its X-User-Id (EdDSA, typ gateway-assertion+jwt, iss gateway, aud task-service,
// exp ≤ iat + 300 s). Each way of failing that is a 401 in the one error shape, answered before any database
// access; /healthz, /readyz and /openapi.json stay open. Also: the Host allow-list (no DNS rebinding), and
// two trusted keys during a rotation.
import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { Database } from '../src/db.js'
import { buildTestApp, identityHeaders, openTestDatabase } from './helpers.js'
import { ASSERTION_KEYS, signAssertion } from '../../support/tokens.js'
import { runMigrations } from '../src/migrate.js'
import { hostMatcher } from '../src/plugins/allowed-hosts.js'
import { DEFAULT_ALLOWED_HOSTS } from '../src/config.js'

/** Counts every call that reaches the database. */
function counting (db: Database): { db: Database; calls: () => number } {
  let calls = 0
  const counted: Database = {
    kind: db.kind,
    query: (text, params) => { calls++; return db.query(text, params) },
    exec: (sql) => { calls++; return db.exec(sql) },
    transaction: (fn) => { calls++; return db.transaction(fn) },
    close: () => db.close()
  }
  return { db: counted, calls: () => calls }
}

const errorCode = (res: LightMyRequestResponse): unknown => {
  const body = res.json<{ code?: unknown; error?: { code?: unknown } | string }>()
  return typeof body.error === 'object' ? body.error.code : body.code
}

const now = (): number => Math.floor(Date.now() / 1000)
const other = generateKeyPairSync('ed25519')
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')

t.test('every way an assertion can fail is a 401 before any database access', async (t) => {
  const raw = await openTestDatabase(t)
  await runMigrations(raw)
  const { db, calls } = counting(raw)
  const app = await buildTestApp(t, { db, signRequests: false })
  const before = calls() // buildTestApp's own migration run
  const user = 'alice'
  const good = await signAssertion(user)
  const [headerB64, payloadB64, sigB64] = good.split('.') as [string, string, string]

  const cases: [string, Record<string, string | string[]>, string][] = [
    ['missing', { 'x-user-id': user }, 'missing_gateway_assertion'],
    ['empty', { 'x-user-id': user, 'x-gateway-assertion': '' }, 'missing_gateway_assertion'],
    ['not a JWS', { 'x-user-id': user, 'x-gateway-assertion': 'not-a-jws' }, 'invalid_gateway_assertion'],
    ['two parts', { 'x-user-id': user, 'x-gateway-assertion': `${headerB64}.${payloadB64}` }, 'invalid_gateway_assertion'],
    ['signature cut', { 'x-user-id': user, 'x-gateway-assertion': `${headerB64}.${payloadB64}.` }, 'invalid_gateway_assertion'],
    ['payload swapped', { 'x-user-id': 'bob', 'x-gateway-assertion': `${headerB64}.${b64({ iss: 'gateway', aud: 'task-service', sub: 'bob', iat: now(), exp: now() + 300 })}.${sigB64}` }, 'invalid_gateway_assertion'],
    ['alg none', { 'x-user-id': user, 'x-gateway-assertion': `${b64({ alg: 'none', typ: 'gateway-assertion+jwt' })}.${payloadB64}.` }, 'invalid_gateway_assertion'],
    ['signed by another key', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { key: other.privateKey }) }, 'invalid_gateway_assertion'],
    ['HS256 with the public key as secret', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { header: { alg: 'HS256' }, key: new TextEncoder().encode(ASSERTION_KEYS.publicKeyPem) }) }, 'invalid_gateway_assertion'],
    ['typ JWT', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { header: { typ: 'JWT' } }) }, 'invalid_gateway_assertion'],
    ['no typ', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { header: { typ: undefined } }) }, 'invalid_gateway_assertion'],
    ['aud other', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { claims: { aud: 'billing-service' } }) }, 'invalid_gateway_assertion'],
    ['no aud', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { claims: { aud: undefined } }) }, 'invalid_gateway_assertion'],
    ['iss other', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { claims: { iss: 'better-auth' } }) }, 'invalid_gateway_assertion'],
    ['expired beyond the tolerance', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { claims: { iat: now() - 306, exp: now() - 6 } }) }, 'invalid_gateway_assertion'],
    ['no exp', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { claims: { exp: undefined } }) }, 'invalid_gateway_assertion'],
    ['no iat', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { claims: { iat: undefined } }) }, 'invalid_gateway_assertion'],
    ['valid for longer than 300 s', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { claims: { exp: now() + 301 } }) }, 'invalid_gateway_assertion'],
    ['issued in the future', { 'x-user-id': user, 'x-gateway-assertion': await signAssertion(user, { claims: { iat: now() + 60, exp: now() + 300 } }) }, 'invalid_gateway_assertion'],
    ['too long', { 'x-user-id': user, 'x-gateway-assertion': 'a'.repeat(5000) }, 'invalid_gateway_assertion'],
    ['sent twice', { 'x-user-id': user, 'x-gateway-assertion': [good, good] }, 'invalid_gateway_assertion'],
    ['sub differs from X-User-Id', { 'x-user-id': 'bob', 'x-gateway-assertion': good }, 'gateway_assertion_mismatch'],
    ['sub differs only in case', { 'x-user-id': 'Alice', 'x-gateway-assertion': good }, 'gateway_assertion_mismatch'],
    ['no X-User-Id', { 'x-gateway-assertion': good }, 'missing_user_id']
  ]
  const routes = [['GET', '/tasks'], ['POST', '/tasks'], ['GET', '/tasks/0b92fa28-5c61-4168-9d4a-7b40079db995'], ['PATCH', '/tasks/0b92fa28-5c61-4168-9d4a-7b40079db995/complete'], ['DELETE', '/tasks/0b92fa28-5c61-4168-9d4a-7b40079db995'], ['GET', '/tasks/no/such/route']] as const
  for (const [label, headers, code] of cases) {
    for (const [method, url] of routes) {
      const res = await app.inject({ method, url, headers, ...(method === 'POST' ? { payload: { title: 'planted' } } : {}) })
      t.equal(res.statusCode, 401, `${label}: ${method} ${url} → 401`)
      t.equal(errorCode(res), code, `${label}: ${code}`)
      t.match(String(res.headers['content-type']), /^application\/json/)
    }
  }
  t.equal(calls(), before, 'no query, statement or transaction reached the database')

  const ok = await app.inject({ url: '/tasks', headers: { 'x-user-id': user, 'x-gateway-assertion': good } })
  t.equal(ok.statusCode, 200, 'the genuine assertion is served')
  t.ok(calls() > before, 'and that one does reach the database')
  const tolerated = await signAssertion(user, { claims: { iat: now() - 302, exp: now() - 2 } })
  t.equal((await app.inject({ url: '/tasks', headers: { 'x-user-id': user, 'x-gateway-assertion': tolerated } })).statusCode, 200, 'expired 2 s ago: within the clock tolerance')
  const utf8 = await signAssertion('josé-✓')
  const latin1 = Buffer.from('josé-✓', 'utf8').toString('latin1')
  t.equal((await app.inject({ url: '/tasks', headers: { 'x-user-id': latin1, 'x-gateway-assertion': utf8 } })).statusCode, 200, 'a UTF-8 X-User-Id matches its sub')
})

t.test('/healthz, /readyz and /openapi.json need no assertion; other unknown routes stay 404', async (t) => {
  const app = await buildTestApp(t, { signRequests: false })
  for (const url of ['/healthz', '/readyz', '/openapi.json']) t.equal((await app.inject({ url })).statusCode, 200, url)
  t.equal((await app.inject({ url: '/nope' })).statusCode, 404)
  const doc = (await app.inject({ url: '/openapi.json' })).json<{ info: { description: string } }>()
  t.match(doc.info.description, /X-Gateway-Assertion/)
})

t.test('rotation: with two public keys, assertions signed by either are accepted', async (t) => {
  const next = generateKeyPairSync('ed25519')
  const nextPublic = next.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const app = await buildTestApp(t, { signRequests: false, config: { assertionPublicKeys: [ASSERTION_KEYS.publicKeyPem, nextPublic] } })
  const byOld = await signAssertion('u', {})
  const byNew = await signAssertion('u', { key: next.privateKey })
  t.equal((await app.inject({ url: '/tasks', headers: { 'x-user-id': 'u', 'x-gateway-assertion': byOld } })).statusCode, 200, 'old key')
  t.equal((await app.inject({ url: '/tasks', headers: { 'x-user-id': 'u', 'x-gateway-assertion': byNew } })).statusCode, 200, 'new key')
  const byNeither = await signAssertion('u', { key: other.privateKey })
  t.equal((await app.inject({ url: '/tasks', headers: { 'x-user-id': 'u', 'x-gateway-assertion': byNeither } })).statusCode, 401, 'any other key')
  const expiredByNew = await signAssertion('u', { key: next.privateKey, claims: { iat: now() - 400, exp: now() - 100 } })
  const res = await app.inject({ url: '/tasks', headers: { 'x-user-id': 'u', 'x-gateway-assertion': expiredByNew } })
  t.equal(res.statusCode, 401)
  t.match(res.body, /expired/, 'the second key’s verdict is the one reported')

  const after = await buildTestApp(t, { signRequests: false, config: { assertionPublicKeys: [nextPublic] } })
  t.equal((await after.inject({ url: '/tasks', headers: { 'x-user-id': 'u', 'x-gateway-assertion': byOld } })).statusCode, 401, 'the retired key, once removed, is refused')
})

t.test('Host allow-list: 421 for names the service is not reached by (DNS rebinding)', async (t) => {
  const app = await buildTestApp(t, { config: { allowedHosts: [...DEFAULT_ALLOWED_HOSTS] } })
  const user = 'h'
  const headers = await identityHeaders(user)
  for (const host of ['127.0.0.1:3001', 'localhost:3001', 'localhost', '[::1]:3001', 'task-service:3001', 'task-service.todo:3001', 'task-service.todo.svc', 'task-service.todo.svc.cluster.local:3001', 'LOCALHOST.:3001']) {
    t.equal((await app.inject({ url: '/tasks', headers: { ...headers, host } })).statusCode, 200, host)
  }
  for (const host of ['attacker.example', 'attacker.example:3001', '127.0.0.1.nip.io:3001', 'task-service.evil.example.com', 'task-service.a.b.svc', 'localhost:3001:1', '[::2]:3001', 'task-service.todo.svc.cluster.local.evil']) {
    const res = await app.inject({ url: '/tasks', headers: { ...headers, host } })
    t.equal(res.statusCode, 421, host)
    t.equal(errorCode(res), 'misdirected_request')
  }
  t.equal((await app.inject({ url: '/healthz', headers: { host: '10.1.2.3:3001' } })).statusCode, 200, 'probes by pod IP reach /healthz')
  t.equal((await app.inject({ url: '/readyz', headers: { host: '10.1.2.3:3001' } })).statusCode, 200, 'and /readyz')

  const match = hostMatcher(['tasks.internal:8443', 'svc-*.example'])
  t.ok(match('tasks.internal:8443'))
  t.notOk(match('tasks.internal:3001'), 'an entry with a port allows only that port')
  t.notOk(match('svc-a.example'), '* is a whole label, not a glob')
  t.notOk(match(undefined))
})
