// The identity assertion the gateway signs for the task service: the exact contract (header, claims,
// lifetime), verified with jose and the public key; one assertion per user reused until shortly before expiry;
// a bounded cache; and a client can never send its own X-Gateway-Assertion through the gateway.
import t from 'tap'
import { decodeProtectedHeader, jwtVerify } from 'jose'
import { ASSERTION_LIFETIME_SEC, IdentityAssertionSigner, REFRESH_BEFORE_EXPIRY_SEC } from '../src/pipeline/identity-assertion.js'
import { loadConfig } from '../src/config.js'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import { ASSERTION_KEYS, AUDIENCE, SECRET, signHs } from '../../support/tokens.js'
import { rawHttp, req } from './helpers/raw.js'

const verify = (token: string, currentDate?: Date): ReturnType<typeof jwtVerify> => jwtVerify(token, ASSERTION_KEYS.publicKey, {
  algorithms: ['EdDSA'], typ: 'gateway-assertion+jwt', issuer: 'gateway', audience: 'task-service', ...(currentDate ? { currentDate } : {})
})

t.test('the contract: EdDSA, typ gateway-assertion+jwt, iss/aud/sub, exp = iat + 300', async (t) => {
  const signer = await IdentityAssertionSigner.create(ASSERTION_KEYS.privateKeyPem)
  const token = await signer.assertionFor('alice ✓')
  t.same(decodeProtectedHeader(token), { alg: 'EdDSA', typ: 'gateway-assertion+jwt' })
  const { payload } = await verify(token)
  t.same(Object.keys(payload).sort(), ['aud', 'exp', 'iat', 'iss', 'sub'])
  t.equal(payload.sub, 'alice ✓')
  t.equal(payload.iss, 'gateway')
  t.equal(payload.aud, 'task-service')
  t.equal((payload.exp as number) - (payload.iat as number), ASSERTION_LIFETIME_SEC)
  t.ok(ASSERTION_LIFETIME_SEC <= 300)
})

t.test('one assertion per user, reused (synchronously) until shortly before it expires', async (t) => {
  let now = Date.UTC(2026, 0, 1, 12, 0, 0)
  const signer = await IdentityAssertionSigner.create(ASSERTION_KEYS.privateKeyPem, { now: () => now })
  const first = signer.assertionFor('u1')
  const concurrent = signer.assertionFor('u1')
  t.equal(concurrent, first, 'concurrent first requests share one signature')
  const a = await first
  t.equal(signer.assertionFor('u1'), a, 'a cached assertion is returned as a string, no promise')
  t.not(await signer.assertionFor('u2'), a, 'another user gets their own')
  now += (ASSERTION_LIFETIME_SEC - REFRESH_BEFORE_EXPIRY_SEC) * 1000 - 1000
  t.equal(signer.assertionFor('u1'), a, 'still reused a second before the refresh point')
  await verify(a, new Date(now)).then(() => t.pass('and still valid then'))
  now += 2000
  const renewed = signer.assertionFor('u1')
  t.type(renewed, Promise, 'replaced once fewer than REFRESH_BEFORE_EXPIRY_SEC remain')
  const b = await renewed
  t.not(b, a)
  const { payload } = await verify(b, new Date(now))
  t.equal(payload.iat, Math.floor(now / 1000))
})

t.test('the cache is bounded (least recently used goes first)', async (t) => {
  const signer = await IdentityAssertionSigner.create(ASSERTION_KEYS.privateKeyPem, { maxEntries: 3 })
  for (const u of ['a', 'b', 'c']) await signer.assertionFor(u)
  t.type(signer.assertionFor('a'), 'string', 'a used again: most recent')
  await signer.assertionFor('d')
  t.equal(signer.size, 3)
  t.type(signer.assertionFor('a'), 'string', 'a kept')
  t.type(signer.assertionFor('b'), Promise, 'b, the least recently used, was dropped')
})

t.test('a hit moves its entry to the recent end only from the older half of the order', async (t) => {
  const signer = await IdentityAssertionSigner.create(ASSERTION_KEYS.privateKeyPem, { maxEntries: 4 })
  for (const u of ['a', 'b', 'c', 'd']) await signer.assertionFor(u)
  t.type(signer.assertionFor('d'), 'string', 'd, the newest, is in the younger half: it stays where it is')
  t.type(signer.assertionFor('a'), 'string', 'a, the oldest, is in the older half: moved')
  for (const u of ['e', 'f', 'g']) await signer.assertionFor(u)
  t.equal(signer.size, 4)
  t.type(signer.assertionFor('a'), 'string', 'a kept: its hit moved it')
  t.type(signer.assertionFor('d'), Promise, 'd dropped: its hit in the younger half did not move it (LRU to within half the capacity)')
})

t.test('GATEWAY_ASSERTION_PRIVATE_KEY: required, Ed25519 PKCS#8, real newlines or \\n escapes', async (t) => {
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE }), { message: /GATEWAY_ASSERTION_PRIVATE_KEY is not set: .*npm run keys.*openssl genpkey -algorithm ed25519/ })
  const escaped = ASSERTION_KEYS.privateKeyPem.replace(/\n/g, '\\n')
  t.equal(loadConfig({ JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, GATEWAY_ASSERTION_PRIVATE_KEY: escaped }).assertionPrivateKey, ASSERTION_KEYS.privateKeyPem)
  t.equal(loadConfig({ JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, GATEWAY_ASSERTION_PRIVATE_KEY: ASSERTION_KEYS.privateKeyPem.replace(/\n/g, '\r\n') }).assertionPrivateKey, ASSERTION_KEYS.privateKeyPem)
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, GATEWAY_ASSERTION_PRIVATE_KEY: ASSERTION_KEYS.publicKeyPem }), { message: /must be one PKCS#8 PEM block/ }, 'the public key is refused')
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, GATEWAY_ASSERTION_PRIVATE_KEY: 'not a key' }), { message: /must be one PKCS#8 PEM block/ })
  const { generateKeyPairSync } = await import('node:crypto')
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, GATEWAY_ASSERTION_PRIVATE_KEY: ec }), { message: /must be an Ed25519 key, got ec/ })
  const corrupt = ASSERTION_KEYS.privateKeyPem.replace(/\n[A-Za-z0-9+/]{8}/, '\nAAAAAAAA')
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, JWT_AUDIENCE: AUDIENCE, GATEWAY_ASSERTION_PRIVATE_KEY: corrupt }), { message: /GATEWAY_ASSERTION_PRIVATE_KEY/ })
})

t.test('through the gateway', async (t) => {
  let up: StubUpstream
  let gw: RunningGateway
  t.before(async () => {
    up = await startUpstream()
    gw = await startGateway({ TASK_SERVICE_URL: up.url })
  })
  t.teardown(async () => {
    await gw.close()
    await up.close()
  })

  t.test('every forwarded request carries a valid assertion for the X-User-Id it forwards', async (t) => {
    const token = await signHs({ sub: 'carol' })
    const r1 = await rawHttp(gw.port, req('GET', '/api/tasks', [['Authorization', `Bearer ${token}`]]))
    const r2 = await rawHttp(gw.port, req('GET', '/api/carol/tasks', [['Authorization', `Bearer ${token}`]]))
    t.equal(r1.status, 200)
    t.equal(r2.status, 200)
    const [h1, h2] = up.tasks().slice(-2).map((x) => x.headers)
    t.equal(h1?.['x-user-id'], 'carol')
    const { payload } = await verify(String(h1?.['x-gateway-assertion']))
    t.equal(payload.sub, 'carol')
    t.equal(h2?.['x-gateway-assertion'], h1?.['x-gateway-assertion'], 'reused for the same user')
  })

  t.test('a client-sent X-Gateway-Assertion, in any spelling, never passes: the gateway sets its own', async (t) => {
    const token = await signHs({ sub: 'mallory' })
    const forged = await (await IdentityAssertionSigner.create(ASSERTION_KEYS.privateKeyPem)).assertionFor('victim')
    const r = await rawHttp(gw.port, req('GET', '/api/tasks', [
      ['Authorization', `Bearer ${token}`],
      ['X-Gateway-Assertion', forged],
      ['x_gateway_assertion', forged],
      ['X.Gateway.Assertion', forged],
      ['X-GATEWAY-ASSERTION', forged]
    ]))
    t.equal(r.status, 200)
    const h = up.tasks().at(-1)?.headers ?? {}
    const values = Object.entries(h).filter(([n]) => n.toLowerCase().replace(/[-_.]/g, '') === 'xgatewayassertion')
    t.equal(values.length, 1, 'exactly one assertion header reaches the task service')
    t.not(values[0]?.[1], forged, 'not the client’s')
    const { payload } = await verify(String(values[0]?.[1]))
    t.equal(payload.sub, 'mallory', 'the gateway’s, for the authenticated user')
  })

  t.test('unauthenticated requests are not forwarded, so no assertion is ever made for them', async (t) => {
    const before = up.tasks().length
    const r = await rawHttp(gw.port, req('GET', '/api/tasks', [['X-User-Id', 'victim'], ['X-Gateway-Assertion', 'x.y.z']]))
    t.equal(r.status, 401)
    t.equal(up.tasks().length, before)
  })
})
