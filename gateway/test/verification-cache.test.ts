// The verification-result cache: expiry at exp, LRU eviction, flush on key-set change, failures never
// cached, exact-token keying. Behaviour only (no timing assertions).
import t from 'tap'
import { request } from 'undici'
import { VerificationCache, type CachedVerification } from '../src/verification-cache.js'
import { createAuthenticator, type KeyResolver } from '../src/pipeline/authenticate.js'
import { JwksKeyStore } from '../src/keys/jwks.js'
import { importJwk, type VerificationKey } from '../src/keys/import.js'
import { b64, bearer, makeKey, signHs, signWith, type TestKey } from '../../support/tokens.js'
import { startJwks } from '../../support/jwks-server.js'
import { startUpstream } from './helpers/upstream.js'
import { startGateway } from '../../support/gateway.js'

let k1: TestKey, k2: TestKey
t.before(async () => {
  k1 = await makeKey('EdDSA', 'k1')
  k2 = await makeKey('EdDSA', 'k2')
})

t.test('an entry expires at its exp (injected clock)', async (t) => {
  let now = 0
  const c = new VerificationCache(10, 2048, () => now)
  c.set('tok', { identity: { sub: 'a' }, expiresAtMs: 1_000, viaJwks: false })
  now = 999
  t.same(c.get('tok'), { identity: { sub: 'a' }, expiresAtMs: 1_000, viaJwks: false })
  now = 1_000
  t.equal(c.get('tok'), undefined, 'gone at exp')
  t.equal(c.size, 0, 'and removed')
  c.set('late', { identity: { sub: 'b' }, expiresAtMs: 500, viaJwks: false })
  t.equal(c.size, 0, 'an already-expired entry is never stored')
})

t.test('LRU eviction at maxEntries: the least recently used goes first', async (t) => {
  const c = new VerificationCache(3, 2048, () => 0)
  const e = (sub: string): CachedVerification => ({ identity: { sub }, expiresAtMs: 10, viaJwks: false })
  c.set('a', e('a'))
  c.set('b', e('b'))
  c.set('c', e('c'))
  t.ok(c.get('a'), 'touch a')
  c.set('d', e('d'))
  t.equal(c.size, 3)
  t.equal(c.get('b'), undefined, 'b was least recently used')
  t.ok(c.get('a'))
  t.ok(c.get('c'))
  t.ok(c.get('d'))
})

t.test('a hit moves its entry to the recent end only from the older half of the order', async (t) => {
  const c = new VerificationCache(4, 2048, () => 0)
  const e = (sub: string): CachedVerification => ({ identity: { sub }, expiresAtMs: 10, viaJwks: false })
  for (const k of ['a', 'b', 'c', 'd']) c.set(k, e(k))
  t.ok(c.get('a'), 'a, the oldest, is in the older half: moved')
  t.ok(c.get('d'), 'd, the newest, is in the younger half: stays where it is')
  c.set('e', e('e'))
  c.set('f', e('f'))
  t.equal(c.get('b'), undefined, 'b and c, never hit, went first')
  t.equal(c.get('c'), undefined)
  c.set('g', e('g'))
  t.equal(c.get('d'), undefined, 'd went next: a hit in the younger half does not reorder (LRU to within half the capacity)')
  t.ok(c.get('a'), 'a, moved by its hit, is still there')
  t.same(c.stats(), { hits: 3, misses: 3, size: 4, maxEntries: 4 })
})

t.test('many hits on a few tokens keep them all, whatever else comes and goes', async (t) => {
  const c = new VerificationCache(100, 2048, () => 0)
  const e = (sub: string): CachedVerification => ({ identity: { sub }, expiresAtMs: 10, viaJwks: false })
  const hot = Array.from({ length: 10 }, (_, i) => `hot-${i}`)
  for (const k of hot) c.set(k, e(k))
  for (let round = 0; round < 50; round++) {
    for (const k of hot) t.ok(c.get(k), `${k} still cached in round ${round}`, { diagnostic: false })
    for (let i = 0; i < 20; i++) c.set(`cold-${round}-${i}`, e('cold'))
  }
  t.equal(c.size, 100)
})

t.test('bounds: long tokens are not cached; maxEntries 0 disables; clear() empties', async (t) => {
  const c = new VerificationCache(5, 10, () => 0)
  c.set('x'.repeat(11), { identity: { sub: 'a' }, expiresAtMs: 10, viaJwks: false })
  t.equal(c.size, 0)
  const off = new VerificationCache(0, 2048, () => 0)
  off.set('a', { identity: { sub: 'a' }, expiresAtMs: 10, viaJwks: false })
  t.equal(off.size, 0)
  c.set('ok', { identity: { sub: 'a' }, expiresAtMs: 10, viaJwks: false })
  c.clear()
  t.equal(c.size, 0)
})

function countingResolver (key: VerificationKey, answers: Array<'key' | 'unknown_key'>): KeyResolver & { calls: number } {
  const r = {
    calls: 0,
    resolve () {
      const a = answers[Math.min(r.calls, answers.length - 1)]
      r.calls++
      return a === 'key' ? key : 'unknown_key' as const
    }
  }
  return r
}

t.test('a repeated token is verified once, then served from the cache', async (t) => {
  const key = await importJwk(k1.jwk, ['EdDSA']) as VerificationKey
  const keys = countingResolver(key, ['key'])
  const cache = new VerificationCache()
  const auth = createAuthenticator({ hmacAlgorithms: [], asymmetricAlgorithms: ['EdDSA'], keys, clockToleranceSec: 5, cache })
  const token = await signWith(k1, { sub: 'cached' })
  t.same(await auth.verifyToken(token), { sub: 'cached' })
  t.same(await auth.verifyToken(token), { sub: 'cached' })
  t.equal(keys.calls, 1, 'the key was looked up (and the signature checked) once')
  t.equal(cache.size, 1)
})

t.test('failures are never cached: a token rejected once is verified again next time', async (t) => {
  const key = await importJwk(k1.jwk, ['EdDSA']) as VerificationKey
  const keys = countingResolver(key, ['unknown_key', 'key'])
  const cache = new VerificationCache()
  const auth = createAuthenticator({ hmacAlgorithms: [], asymmetricAlgorithms: ['EdDSA'], keys, clockToleranceSec: 5, cache })
  const token = await signWith(k1)
  await t.rejects(async () => await auth.verifyToken(token), { code: 'unknown_key' })
  t.equal(cache.size, 0, 'nothing cached on failure')
  t.same(await auth.verifyToken(token), { sub: 'user-1' }, 'accepted once the key is known')
  t.equal(keys.calls, 2)
  const expired = await signWith(k1, { exp: Math.floor(Date.now() / 1000) - 60 })
  await t.rejects(async () => await auth.verifyToken(expired), { code: 'token_expired' })
  t.equal(cache.size, 1, 'the expired token was not cached')
})

t.test('the cache is keyed by the exact token: a tampered copy of a cached token is rejected', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({ TASK_SERVICE_URL: up.url })
  t.teardown(async () => { await gw.close(); await up.close() })
  const token = await signHs({ sub: 'victim' })
  const get = async (tok: string): Promise<number> => {
    const r = await request(gw.url + '/api/tasks', { headers: bearer(tok) })
    await r.body.dump()
    return r.statusCode
  }
  t.equal(await get(token), 200)
  t.equal(await get(token), 200)
  const [h, , s] = token.split('.')
  t.equal(await get(`${h}.${b64({ sub: 'attacker', exp: Math.floor(Date.now() / 1000) + 600 })}.${s}`), 401)
  t.same(up.tasks().map((r) => r.headers['x-user-id']), ['victim', 'victim'])
})

t.test('a cached token stops working at its exp (through HTTP, clock tolerance 0)', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, JWT_CLOCK_TOLERANCE: '0' })
  t.teardown(async () => { await gw.close(); await up.close() })
  // 3-4 s of validity: the two requests before exp must both fit in it on a busy machine.
  const exp = Math.floor(Date.now() / 1000) + 4
  const token = await signHs({ exp })
  const get = async (): Promise<{ status: number, code?: string }> => {
    const r = await request(gw.url + '/api/tasks', { headers: bearer(token) })
    const body = await r.body.json() as { error?: { code?: string } }
    return { status: r.statusCode, code: body.error?.code }
  }
  t.equal((await get()).status, 200)
  t.equal((await get()).status, 200, 'served (from the cache) before exp')
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 50))
  t.same(await get(), { status: 401, code: 'token_expired' }, 'rejected once exp has passed')
})

t.test('the cache is flushed when the key set changes', async (t) => {
  const jwks = await startJwks([k1.jwk, k2.jwk])
  t.teardown(async () => { await jwks.close() })
  const store = new JwksKeyStore({ url: jwks.url, refreshMs: 60_000, cooldownMs: 60_000, staleMaxMs: 60_000, timeoutMs: 1_000, algorithms: ['EdDSA'] })
  t.teardown(() => { store.stop() })
  const cache = new VerificationCache()
  store.onChange(() => { cache.clear() })
  await store.start()
  const auth = createAuthenticator({ hmacAlgorithms: [], asymmetricAlgorithms: ['EdDSA'], keys: store, clockToleranceSec: 5, cache, keyGeneration: () => store.generation, keysUsable: () => store.isReady() })
  const old = await signWith(k1)
  t.same(await auth.verifyToken(old), { sub: 'user-1' })
  t.equal(cache.size, 1)
  jwks.keys = [k2.jwk] // k1 rotated out
  t.ok(await store.refresh())
  t.equal(cache.size, 0, 'flushed on change')
  await t.rejects(async () => await auth.verifyToken(old), { code: 'unknown_key' })
  const unchanged = store.generation
  t.ok(await store.refresh())
  t.equal(store.generation, unchanged, 'an identical key set is not a change')
})
