// JWKS behaviour with a local JWKS server we control: keys loaded before readiness, rotation accepted
// within the cooldown, a flood of unknown kids costs one shared fetch, outages (down, garbage, hang)
// keep the last good keys for a bounded time, never a 5xx, never a hung request, recovery without restart.
import t from 'tap'
import { request } from 'undici'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { eventually } from '../../support/wait.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import { bearer, makeKey, signWith, type TestKey } from '../../support/tokens.js'
import { startJwks, type JwksServer } from '../../support/jwks-server.js'

let up: StubUpstream
let k1: TestKey, k2: TestKey, k3: TestKey

t.before(async () => {
  up = await startUpstream()
  k1 = await makeKey('EdDSA', 'k1')
  k2 = await makeKey('EdDSA', 'k2')
  k3 = await makeKey('ES256', 'k3')
})
t.teardown(async () => { await up.close() })

async function status (gw: RunningGateway, token: string): Promise<{ status: number, code?: string }> {
  const res = await request(gw.url + '/api/tasks', { headers: bearer(token) })
  const body = await res.body.json() as { error?: { code?: string } }
  return { status: res.statusCode, code: body.error?.code }
}
async function ready (gw: RunningGateway): Promise<number> {
  const res = await request(gw.url + '/readyz')
  await res.body.dump()
  return res.statusCode
}

async function setup (t: Parameters<Parameters<typeof import('tap').default.test>[0]>[0], keys: TestKey[], env: Record<string, string> = {}): Promise<{ jwks: JwksServer, gw: RunningGateway }> {
  const jwks = await startJwks(keys.map((k) => k.jwk))
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, JWT_SECRET: '', JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: '200', JWKS_TIMEOUT_MS: '500', ...env })
  t.teardown(async () => {
    await gw.close()
    await jwks.close()
  })
  return { jwks, gw }
}

t.test('keys are loaded before readiness: /readyz is 200 and the first token works', async (t) => {
  const { gw, jwks } = await setup(t, [k1])
  t.equal(jwks.fetches, 1)
  t.equal(await ready(gw), 200)
  t.equal((await status(gw, await signWith(k1))).status, 200)
})

t.test('JWKS down at start: /readyz 503, tokens get 401 keys_unavailable (never 5xx), recovery without restart', async (t) => {
  const jwks = await startJwks([k1.jwk])
  jwks.mode = 'down'
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, JWT_SECRET: '', JWKS_URL: jwks.url, JWKS_COOLDOWN_MS: '100', JWKS_REFRESH_MS: '1000', JWKS_TIMEOUT_MS: '500' })
  t.teardown(async () => { await gw.close(); await jwks.close() })
  t.equal(await ready(gw), 503)
  const token = await signWith(k1)
  t.same(await status(gw, token), { status: 401, code: 'keys_unavailable' })
  jwks.mode = 'ok'
  await eventually(async () => (await status(gw, token)).status === 200)
  t.equal(await ready(gw), 200)
})

t.test('rotation: a token signed by a new key is accepted after one refetch', async (t) => {
  const { gw, jwks } = await setup(t, [k1])
  const before = jwks.fetches
  jwks.keys = [k1.jwk, k2.jwk]
  await new Promise((resolve) => setTimeout(resolve, 250)) // let the 200 ms cooldown after start pass
  t.equal((await status(gw, await signWith(k2, { sub: 'rotated' }))).status, 200)
  t.equal(jwks.fetches, before + 1, 'exactly one refetch')
  t.equal(up.tasks().at(-1)?.headers['x-user-id'], 'rotated')
  t.equal((await status(gw, await signWith(k1))).status, 200, 'the old key still works while published')
})

t.test('rotation: a key removed from the JWKS stops working after the next fetch', async (t) => {
  const { gw, jwks } = await setup(t, [k1, k2], { JWKS_REFRESH_MS: '1000' })
  const old = await signWith(k1)
  t.equal((await status(gw, old)).status, 200)
  jwks.keys = [k2.jwk]
  await eventually(async () => (await status(gw, old)).status === 401)
  t.same(await status(gw, old), { status: 401, code: 'unknown_key' })
  t.equal((await status(gw, await signWith(k2))).status, 200)
})

t.test('a flood of random kids costs at most one shared fetch per cooldown', async (t) => {
  // The 70 requests below must all land within one cooldown of the refetch they trigger: 2 s leaves room
  // for a busy machine.
  const { gw, jwks } = await setup(t, [k1], { JWKS_COOLDOWN_MS: '2000' })
  const tokens = await Promise.all(Array.from({ length: 50 }, async (_, i) => await signWith({ ...k2, kid: `random-${i}` })))
  await new Promise((resolve) => setTimeout(resolve, 2_100)) // past the cooldown that started at load
  const before = jwks.fetches
  const results = await Promise.all(tokens.map(async (tk) => await status(gw, tk)))
  t.ok(results.every((r) => r.status === 401 && r.code === 'unknown_key'), 'all 401 unknown_key')
  t.equal(jwks.fetches, before + 1, 'one shared fetch for 50 concurrent unknown kids')
  const again = await Promise.all(tokens.slice(0, 20).map(async (tk) => await status(gw, tk)))
  t.ok(again.every((r) => r.status === 401))
  t.equal(jwks.fetches, before + 1, 'no further fetch within the cooldown')
})

for (const mode of ['down', 'garbage', 'hang', 'empty'] as const) {
  t.test(`JWKS outage (${mode}): known keys keep working, unknown keys get 401, never 5xx, no hung request`, async (t) => {
    const { gw, jwks } = await setup(t, [k1], { JWKS_REFRESH_MS: '1000', JWKS_STALE_MAX_MS: '600000' })
    const known = await signWith(k1)
    jwks.mode = mode
    await new Promise((resolve) => setTimeout(resolve, 250)) // past the cooldown
    const unknown = await status(gw, await signWith(k2))
    t.same(unknown, { status: 401, code: 'unknown_key' }, 'unknown kid → 401 (the refetch failed)')
    t.equal((await status(gw, known)).status, 200, 'known key still accepted')
    t.equal(await ready(gw), 200, 'still ready while within the stale bound')
    jwks.mode = 'ok'
    jwks.keys = [k1.jwk, k2.jwk]
    await eventually(async () => (await status(gw, await signWith(k2))).status === 200)
    t.pass('recovered without a restart')
  })
}

t.test('stale keys expire after the bound: then 401 keys_unavailable and /readyz 503, recovery after', async (t) => {
  const { gw, jwks } = await setup(t, [k1], { JWKS_REFRESH_MS: '1000', JWKS_STALE_MAX_MS: '0', JWKS_COOLDOWN_MS: '100' })
  const known = await signWith(k1)
  t.equal((await status(gw, known)).status, 200)
  jwks.mode = 'down'
  await eventually(async () => (await status(gw, known)).status === 401, 8_000)
  t.same(await status(gw, known), { status: 401, code: 'keys_unavailable' })
  t.equal(await ready(gw), 503)
  jwks.mode = 'ok'
  await eventually(async () => (await status(gw, known)).status === 200, 8_000)
  t.equal(await ready(gw), 200)
})

t.test('JWKS with unusable entries: bad keys are skipped, good ones used, algorithms bound at import', async (t) => {
  const { gw, jwks } = await setup(t, [])
  jwks.keys = [
    { kty: 'oct', k: 'c2VjcmV0', kid: 'sym', alg: 'HS256' },
    { ...k1.jwk, kid: 'enc', use: 'enc' },
    { ...k1.jwk, kid: 'wrong-alg', alg: 'ES256' },
    { kty: 'EC', crv: 'P-256', kid: 'broken', x: 'AAAA', y: 'BBBB' },
    k3.jwk,
    { ...k2.jwk, alg: undefined }
  ]
  await new Promise((resolve) => setTimeout(resolve, 250))
  t.equal((await status(gw, await signWith(k3))).status, 200, 'ES256 key')
  t.equal((await status(gw, await signWith(k2))).status, 200, 'Ed25519 key without alg → bound to EdDSA')
  t.equal((await status(gw, await signWith({ ...k1, kid: 'enc' }))).status, 401, 'use=enc is not a signing key')
  t.equal((await status(gw, await signWith({ ...k1, kid: 'wrong-alg' }))).status, 401, 'alg/kty mismatch rejected')
})
