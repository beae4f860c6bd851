// Every token rejection, each as its own named test, through HTTP. Each asserts the 401 shape
// (RFC 6750 WWW-Authenticate, JSON body with a stable code) and that the task service received nothing.
import t from 'tap'
import { request } from 'undici'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import type { TapTest } from '../../support/test-context.js'
import { sign as nodeSign } from 'node:crypto'
import { AUDIENCE, b64, bearer, makeKey, rawHmac, rawSigned, SECRET, signHs, signWith, type TestKey, unsigned } from '../../support/tokens.js'
import { startJwks, type JwksServer } from '../../support/jwks-server.js'

let up: StubUpstream
let hs: RunningGateway // HS256 secret, issuer + audience enforced
let jw: RunningGateway // JWKS only
let both: RunningGateway // secret and JWKS
let jwks: JwksServer
let ed: TestKey, es: TestKey, rsa: TestKey, ps: TestKey, attacker: TestKey
const ISS = 'https://auth.example.com'
const AUD = 'https://auth.example.com'
const now = (): number => Math.floor(Date.now() / 1000)

t.before(async () => {
  up = await startUpstream()
  ed = await makeKey('EdDSA', 'ed-1')
  es = await makeKey('ES256', 'es-1')
  rsa = await makeKey('RS256', 'rsa-1')
  ps = await makeKey('PS256', 'ps-1')
  attacker = await makeKey('EdDSA', 'attacker')
  jwks = await startJwks([ed.jwk, es.jwk, rsa.jwk, ps.jwk])
  hs = await startGateway({ TASK_SERVICE_URL: up.url, JWT_ISSUER: ISS, JWT_AUDIENCE: AUD })
  jw = await startGateway({ TASK_SERVICE_URL: up.url, JWT_SECRET: '', JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: '60000' })
  both = await startGateway({ TASK_SERVICE_URL: up.url, JWKS_URL: jwks.url, JWT_ALGORITHMS: 'HS256,EdDSA,RS256', JWKS_COOLDOWN_MS: '60000' })
})
t.teardown(async () => {
  await Promise.all([hs.close(), jw.close(), both.close()])
  await jwks.close()
  await up.close()
})
t.beforeEach(() => { up.received.length = 0 })

interface Res { status: number, headers: Record<string, unknown>, body: { error?: { code?: string, message?: string } }, text: string }
async function get (gw: RunningGateway, headers: Record<string, string | string[]> = {}, path = '/api/tasks'): Promise<Res> {
  const res = await request(gw.url + path, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body: JSON.parse(text), text }
}

/** Asserts a 401 invalid_token with the given code, and that nothing was forwarded. */
async function rejects (t: TapTest, gw: RunningGateway, token: string, code: string, description?: string): Promise<void> {
  const r = await get(gw, bearer(token))
  t.equal(r.status, 401, 'status 401')
  t.equal(r.body.error?.code, code, `code ${code}`)
  t.match(r.headers['www-authenticate'], /^Bearer realm="api", error="invalid_token", error_description="[^"]+"$/)
  if (description !== undefined) t.match(r.headers['www-authenticate'], `error_description="${description}"`)
  t.notOk(r.text.includes(token), 'the body never echoes the token')
  t.equal(up.received.length, 0, 'the task service received nothing')
}

t.test('valid HS256 token is accepted', async (t) => {
  const r = await get(hs, bearer(await signHs({ iss: ISS, aud: AUD })))
  t.equal(r.status, 200)
  t.equal(up.tasks()[0]?.headers['x-user-id'], 'user-1')
})

t.test('valid EdDSA, ES256, RS256 and PS256 tokens from the JWKS are accepted', async (t) => {
  for (const k of [ed, es, rsa, ps]) {
    const r = await get(jw, bearer(await signWith(k, { sub: `sub-${k.alg}` })))
    t.equal(r.status, 200, k.alg)
  }
  t.same(up.tasks().map((r) => r.headers['x-user-id']), ['sub-EdDSA', 'sub-ES256', 'sub-RS256', 'sub-PS256'])
})

t.test('Ed25519 (RFC 9864) and ES512 tokens from the JWKS are accepted', async (t) => {
  const ed25519 = await makeKey('Ed25519', 'ed25519-1')
  const es512 = await makeKey('ES512', 'es512-1')
  const keys = await startJwks([ed.jwk, es.jwk, ed25519.jwk, es512.jwk])
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, JWT_SECRET: '', JWKS_URL: keys.url })
  const edOnly = await startGateway({ TASK_SERVICE_URL: up.url, JWT_SECRET: '', JWKS_URL: keys.url, JWT_ALGORITHMS: 'EdDSA' })
  t.teardown(async () => { await gw.close(); await edOnly.close(); await keys.close() })
  t.equal((await get(gw, bearer(await signWith(ed25519, { sub: 'sub-Ed25519' })))).status, 200, 'alg Ed25519 with a JWK whose alg is Ed25519')
  t.equal((await get(gw, bearer(await signWith({ ...ed, alg: 'Ed25519' }, { sub: 'sub-Ed25519-on-EdDSA-key' })))).status, 200, 'alg Ed25519 with a JWK whose alg is EdDSA: the same algorithm on the same key')
  t.equal((await get(gw, bearer(await signWith({ ...ed25519, alg: 'EdDSA' }, { sub: 'sub-EdDSA-on-Ed25519-key' })))).status, 200, 'and the other way round')
  t.equal((await get(gw, bearer(await signWith(es512, { sub: 'sub-ES512' })))).status, 200, 'ES512 (P-521)')
  t.same(up.tasks().map((r) => r.headers['x-user-id']), ['sub-Ed25519', 'sub-Ed25519-on-EdDSA-key', 'sub-EdDSA-on-Ed25519-key', 'sub-ES512'])
  up.received.length = 0
  await rejects(t, gw, await signWith({ ...es512, kid: es.kid }), 'unknown_key') // an ES512 signature against the ES256 key's kid
  await rejects(t, gw, await signWith({ ...es, kid: es512.kid }), 'unknown_key') // and an ES256 one against the ES512 key
  await rejects(t, edOnly, await signWith(ed25519), 'unsupported_algorithm') // the allow-list names each spelling
  t.equal((await get(edOnly, bearer(await signWith(ed)))).status, 200)
})

t.test('missing token → 401 without an error attribute', async (t) => {
  const r = await get(hs)
  t.equal(r.status, 401)
  t.equal(r.headers['www-authenticate'], 'Bearer realm="api"')
  t.equal(r.body.error?.code, 'missing_token')
  t.equal(up.received.length, 0)
})

t.test('another scheme (Basic) is not a bearer token → 401 missing_token', async (t) => {
  const r = await get(hs, { authorization: 'Basic dXNlcjpwYXNz' })
  t.equal(r.status, 401)
  t.equal(r.headers['www-authenticate'], 'Bearer realm="api"')
  t.equal(up.received.length, 0)
})

t.test('the scheme is case-insensitive', async (t) => {
  const token = await signHs({ iss: ISS, aud: AUD })
  t.equal((await get(hs, { authorization: `bEaReR ${token}` })).status, 200)
})

t.test('token in the query string is never read', async (t) => {
  const token = await signHs({ iss: ISS, aud: AUD })
  const r = await get(hs, {}, `/api/tasks?access_token=${token}`)
  t.equal(r.status, 401)
  t.equal(r.body.error?.code, 'missing_token')
  t.equal(up.received.length, 0)
})

t.test('malformed tokens → 401 malformed_token', async (t) => {
  for (const bad of ['Bearer', 'Bearer ', 'Bearer abc', 'Bearer a.b', 'Bearer a.b.c.d', 'Bearer !!!.###.$$$', `Bearer ${b64('not json')}.${b64({ sub: 'x' })}.sig`, `Bearer ${b64([1, 2])}.${b64({ sub: 'x' })}.sig`, 'Bearer a b c']) {
    const r = await get(hs, { authorization: bad })
    t.equal(r.status, 401, JSON.stringify(bad))
    t.not(r.headers['www-authenticate'], undefined)
  }
  t.equal(up.received.length, 0)
})

t.test('two Authorization headers → 401 malformed_token', async (t) => {
  const token = await signHs({ iss: ISS, aud: AUD })
  const r = await get(hs, { authorization: [`Bearer ${token}`, `Bearer ${token}`] })
  t.equal(r.status, 401)
  t.equal(r.body.error?.code, 'malformed_token')
  t.equal(up.received.length, 0)
})

t.test('tampered payload → 401 invalid_signature', async (t) => {
  const token = await signHs({ iss: ISS, aud: AUD, sub: 'user-1' })
  const [h, , s] = token.split('.')
  const forged = `${h}.${b64({ sub: 'admin', exp: now() + 600, iss: ISS, aud: AUD })}.${s}`
  await rejects(t, hs, forged, 'invalid_signature', 'invalid signature')
})

t.test('tampered signature → 401 invalid_signature', async (t) => {
  const token = await signWith(ed)
  const [h, p, s] = token.split('.') as [string, string, string]
  const sig = Buffer.from(s, 'base64url')
  sig[0] = (sig[0] as number) ^ 0xff
  await rejects(t, jw, `${h}.${p}.${sig.toString('base64url')}`, 'invalid_signature')
  await rejects(t, jw, `${h}.${p}.`, 'invalid_signature')
})

t.test('HS256 token signed with another secret → 401 invalid_signature', async (t) => {
  await rejects(t, hs, await signHs({ iss: ISS, aud: AUD }, 'another-secret-that-is-also-long-enough-xyz'), 'invalid_signature')
})

t.test('expired token → 401 token_expired with error_description "token expired"', async (t) => {
  await rejects(t, hs, await signHs({ iss: ISS, aud: AUD, exp: now() - 60 }), 'token_expired', 'token expired')
  await rejects(t, jw, await signWith(ed, { exp: now() - 60 }), 'token_expired', 'token expired')
})

t.test('exp within the clock tolerance (5 s) is still accepted', async (t) => {
  t.equal((await get(hs, bearer(await signHs({ iss: ISS, aud: AUD, exp: now() - 2 })))).status, 200)
})

t.test('token without exp → 401 invalid_claims', async (t) => {
  await rejects(t, hs, await signHs({ iss: ISS, aud: AUD, exp: undefined }), 'invalid_claims')
  await rejects(t, hs, rawHmac({ alg: 'HS256' }, { iss: ISS, aud: AUD, exp: 'tomorrow' }, SECRET), 'invalid_claims')
})

t.test('not-yet-valid token (nbf in the future) → 401 token_not_yet_valid', async (t) => {
  await rejects(t, hs, await signHs({ iss: ISS, aud: AUD, nbf: now() + 120 }), 'token_not_yet_valid', 'token not yet valid')
})

t.test('wrong issuer → 401 invalid_issuer', async (t) => {
  await rejects(t, hs, await signHs({ iss: 'https://evil.example.com', aud: AUD }), 'invalid_issuer')
  await rejects(t, hs, await signHs({ iss: undefined, aud: AUD }), 'invalid_issuer')
})

t.test('wrong audience → 401 invalid_audience', async (t) => {
  await rejects(t, hs, await signHs({ iss: ISS, aud: 'https://other.example.com' }), 'invalid_audience')
  await rejects(t, hs, await signHs({ iss: ISS, aud: undefined }), 'invalid_audience')
  t.equal((await get(hs, bearer(await signHs({ iss: ISS, aud: ['x', AUD] })))).status, 200, 'an aud array containing the audience is accepted')
})

t.test('alg "none" → 401 unsupported_algorithm', async (t) => {
  await rejects(t, hs, unsigned({ iss: ISS, aud: AUD }), 'unsupported_algorithm')
  await rejects(t, jw, unsigned(), 'unsupported_algorithm')
  await rejects(t, hs, `${b64({ alg: 'None' })}.${b64({ sub: 'x', exp: now() + 60, iss: ISS, aud: AUD })}.`, 'unsupported_algorithm')
})

t.test('HS256 signed with the RSA public key as the HMAC secret → 401 (no key confusion)', async (t) => {
  const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string
  const der = rsa.publicKey.export({ type: 'spki', format: 'der' })
  const jwkJson = JSON.stringify(rsa.jwk)
  // JWKS only: HS256 is not allow-listed at all.
  for (const secret of [pem, der, jwkJson]) {
    await rejects(t, jw, rawHmac({ alg: 'HS256', kid: rsa.kid }, {}, secret), 'unsupported_algorithm')
  }
  // Secret and JWKS: HS256 is checked against the secret only, never against a JWKS key.
  for (const secret of [pem, der, jwkJson]) {
    await rejects(t, both, rawHmac({ alg: 'HS256', kid: rsa.kid }, {}, secret), 'invalid_signature')
  }
})

t.test('algorithm not in the allow-list (HS512 by default) → 401 unsupported_algorithm', async (t) => {
  await rejects(t, hs, rawHmac({ alg: 'HS512' }, { iss: ISS, aud: AUD }, SECRET, 'sha512'), 'unsupported_algorithm')
})

t.test('unknown kid → 401 unknown_key', async (t) => {
  await rejects(t, jw, await signWith(attacker), 'unknown_key', 'unknown signing key')
})

t.test('embedded jwk in the header is ignored → 401', async (t) => {
  const header = { alg: 'EdDSA', kid: 'attacker', jwk: attacker.jwk }
  await rejects(t, jw, rawSigned(header, {}, attacker.privateKey, 'EdDSA'), 'unknown_key')
  // Even reusing a known kid, the signature is checked against the JWKS key only.
  await rejects(t, jw, rawSigned({ ...header, kid: ed.kid }, {}, attacker.privateKey, 'EdDSA'), 'invalid_signature')
})

t.test('jku and x5u headers are never fetched → 401', async (t) => {
  let fetched = 0
  const evil = createServer((_req, res) => { fetched++; res.end(JSON.stringify({ keys: [attacker.jwk] })) })
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { evil.close() })
  const evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}/jwks`
  await rejects(t, jw, rawSigned({ alg: 'EdDSA', kid: 'attacker', jku: evilUrl }, {}, attacker.privateKey, 'EdDSA'), 'unknown_key')
  await rejects(t, jw, rawSigned({ alg: 'EdDSA', kid: ed.kid, x5u: evilUrl }, {}, attacker.privateKey, 'EdDSA'), 'invalid_signature')
  t.equal(fetched, 0, 'the attacker URL was never fetched')
})

t.test('unknown crit header → 401 unsupported_critical_header', async (t) => {
  await rejects(t, jw, rawSigned({ alg: 'EdDSA', kid: ed.kid, crit: ['exp-ext'], 'exp-ext': 1 }, {}, ed.privateKey, 'EdDSA'), 'unsupported_critical_header')
  await rejects(t, hs, rawHmac({ alg: 'HS256', crit: ['b64'], b64: false }, { iss: ISS, aud: AUD }, SECRET), 'unsupported_critical_header')
})

t.test('a key is bound to its JWK algorithm: a token claiming another alg for that kid → 401', async (t) => {
  // RS256 key used with PS256, and ES256 key presented as EdDSA.
  const psWithRsaKid = await signWith({ ...rsa, alg: 'PS256' }, {})
  await rejects(t, jw, psWithRsaKid, 'unknown_key')
  await rejects(t, jw, rawSigned({ alg: 'EdDSA', kid: es.kid }, {}, ed.privateKey, 'EdDSA'), 'unknown_key')
})

t.test('HS256 token against a JWKS-only gateway → 401 unsupported_algorithm', async (t) => {
  await rejects(t, jw, await signHs(), 'unsupported_algorithm')
})

t.test('bad sub: missing → 401 invalid_subject', async (t) => {
  await rejects(t, jw, await signWith(ed, { sub: undefined }), 'invalid_subject')
})
t.test('bad sub: empty string → 401 invalid_subject', async (t) => {
  await rejects(t, jw, await signWith(ed, { sub: '' }), 'invalid_subject')
})
t.test('bad sub: not a string → 401 invalid_subject', async (t) => {
  for (const sub of [42, true, ['user-1'], { id: 'user-1' }, null]) await rejects(t, jw, await signWith(ed, { sub }), 'invalid_subject')
})
t.test('bad sub: longer than 255 characters → 401 invalid_subject', async (t) => {
  await rejects(t, jw, await signWith(ed, { sub: 'a'.repeat(256) }), 'invalid_subject')
  await rejects(t, jw, await signWith(ed, { sub: '😀'.repeat(256) }), 'invalid_subject')
})
t.test('bad sub: control characters (C0, DEL, C1) → 401 invalid_subject', async (t) => {
  for (const sub of ['user\u0000', 'a\nb', 'a\rb', 'tab\there', 'del\u007f', 'c1\u0085', 'c1\u009f']) {
    await rejects(t, jw, await signWith(ed, { sub }), 'invalid_subject')
  }
})
t.test('bad sub: leading or trailing whitespace (header parsing would trim it into another user) → 401 invalid_subject', async (t) => {
  for (const sub of [' user-1', 'user-1 ', '\u00a0user-1', 'user-1\u3000', ' ']) {
    await rejects(t, jw, await signWith(ed, { sub }), 'invalid_subject')
  }
})
t.test('bad sub: a lone UTF-16 surrogate (would collapse to U+FFFD on the wire, colliding with another user) → 401 invalid_subject', async (t) => {
  for (const sub of ['alice\ud800', 'alice\udfff', '\udc00alice', 'a\ud83db']) {
    await rejects(t, jw, await signWith(ed, { sub }), 'invalid_subject')
  }
  t.equal((await get(jw, bearer(await signWith(ed, { sub: 'alice\ufffd' })))).status, 200, 'a real U+FFFD is an ordinary character')
  t.equal((await get(jw, bearer(await signWith(ed, { sub: 'alice\ud83d\ude00' })))).status, 200, 'a well-formed surrogate pair is accepted')
})
t.test('bad sub bytes: a payload that is not valid UTF-8 → 401 malformed_token (never decoded into U+FFFD, which would merge users)', async (t) => {
  const signRaw = (payload: Buffer): string => {
    const input = `${b64({ alg: 'EdDSA', kid: ed.kid, typ: 'JWT' })}.${payload.toString('base64url')}`
    return `${input}.${nodeSign(null, Buffer.from(input), ed.privateKey).toString('base64url')}`
  }
  const withSubBytes = (sub: Buffer): Buffer => Buffer.concat([Buffer.from('{"sub":"'), sub, Buffer.from(`","aud":"${AUDIENCE}","exp":${now() + 600}}`)])
  for (const [what, bytes] of [
    ['a stray 0xFF', [0x61, 0x6c, 0x69, 0x63, 0x65, 0xff]],
    ['a lone continuation byte', [0x61, 0x80]],
    ['an overlong "/"', [0x61, 0xc0, 0xaf]],
    ['a UTF-16 surrogate encoded as UTF-8', [0x61, 0xed, 0xa0, 0x80]],
    ['a truncated sequence', [0x61, 0xe2, 0x82]]
  ] as const) {
    t.comment(what)
    await rejects(t, jw, signRaw(withSubBytes(Buffer.from(bytes))), 'malformed_token', 'malformed token')
  }
  t.equal((await get(jw, bearer(signRaw(withSubBytes(Buffer.from('alicé')))))).status, 200, 'the same token with valid UTF-8 is accepted')
  t.equal(up.tasks()[0]?.headers['x-user-id'], Buffer.from('alicé').toString('latin1'), 'and forwarded as its UTF-8 bytes')
})

t.test('token type: a typ header that is present must be JWT, at+jwt or application/at+jwt (any case) → else 401 invalid_token_type', async (t) => {
  for (const typ of ['better-auth.session-cache+jwt', 'id_token+jwt', 'dpop+jwt', 'logout+jwt', 'application/secevent+jwt', 'JOSE', 'JOSE+JSON', 'application/jwt; charset=utf-8', '', 'jwt ']) {
    await rejects(t, jw, await signWith(ed, {}, { typ }), 'invalid_token_type', 'token type not accepted')
  }
  await rejects(t, hs, await signHs({ iss: ISS, aud: AUD }, SECRET, { typ: 'better-auth.session-cache+jwt' }), 'invalid_token_type')
  for (const typ of [42, null, ['JWT']]) await rejects(t, jw, rawSigned({ alg: 'EdDSA', kid: ed.kid, typ }, {}, ed.privateKey, 'EdDSA'), 'invalid_token_type')
  // Accepted: absent, and each accepted type in any case, with or without the application/ prefix (RFC 7515 §4.1.9).
  t.equal((await get(jw, bearer(rawSigned({ alg: 'EdDSA', kid: ed.kid }, {}, ed.privateKey, 'EdDSA')))).status, 200, 'no typ')
  for (const typ of ['JWT', 'jwt', 'application/jwt', 'Application/JWT', 'at+jwt', 'AT+JWT', 'application/at+jwt', 'application/AT+JWT']) {
    t.equal((await get(jw, bearer(await signWith(ed, { sub: `typ-${typ}` }, { typ })))).status, 200, `typ ${typ}`)
  }
})

t.test('good sub edge cases: 255 characters and non-ASCII are accepted', async (t) => {
  t.equal((await get(jw, bearer(await signWith(ed, { sub: 'a'.repeat(255) })))).status, 200)
  t.equal((await get(jw, bearer(await signWith(ed, { sub: '😀'.repeat(255) })))).status, 200, '255 code points')
  t.equal(up.tasks()[0]?.headers['x-user-id'], 'a'.repeat(255))
})

t.test('an invalid token never falls back to anonymous, even on unauthenticated-looking routes', async (t) => {
  const r = await get(hs, { authorization: 'Bearer garbage.garbage.garbage' }, '/api/user-1/tasks')
  t.equal(r.status, 401)
  t.equal(up.received.length, 0)
})
