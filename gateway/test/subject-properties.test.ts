// Property-based tests (fast-check) of the one identity the gateway forwards: a token's `sub`. Random token
// payloads, signed HS256 (shared secret) and EdDSA (JWKS), go through a listening gateway to a recording stub
// upstream. For each, exactly one of:
//  - the gateway refuses it: 401, and the task service receives nothing;
//  - the task service receives one request whose X-User-Id bytes are exactly the UTF-8 bytes of the `sub` the
//    token carries, with an identity assertion that verifies and names the same `sub`.
// Which one is not re-derived here: a token is accepted exactly when its `sub` satisfies validSubject
// (packages/identity-rules, the rule the task service shares) and the token fits MAX_TOKEN_LENGTH. The `sub`
// is read back from the signed payload bytes with a strict UTF-8 decoder and JSON.parse, independently of the
// gateway's verifier.
// A payload that is not valid UTF-8 (invalid bytes anywhere: in the `sub`, another claim or a claim name) is
// refused: decoding it leniently would turn distinct byte strings into one user (U+FFFD).
import t from 'tap'
import fc from 'fast-check'
import { createHmac, sign as nodeSign } from 'node:crypto'
import { CompactSign, jwtVerify } from 'jose'
import { request } from 'undici'
import { validSubject } from 'identity-rules'
import { startUpstream, type Recorded, type StubUpstream } from './helpers/upstream.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import { startJwks, type JwksServer } from '../../support/jwks-server.js'
import { ASSERTION_KEYS, AUDIENCE, makeKey, SECRET, type TestKey } from '../../support/tokens.js'
import { MAX_TOKEN_LENGTH } from '../src/pipeline/authenticate.js'

const RUNS = Number(process.env.PROPERTY_RUNS ?? 150)

let up: StubUpstream
let gw: RunningGateway
let jwks: JwksServer
let ed: TestKey
const secretKey = new TextEncoder().encode(SECRET)

t.before(async () => {
  up = await startUpstream()
  ed = await makeKey('EdDSA', 'ed-prop')
  jwks = await startJwks([ed.jwk])
  // Rate limits off: hundreds of requests from one address and one user are the point here.
  gw = await startGateway({
    TASK_SERVICE_URL: up.url,
    JWKS_URL: jwks.url,
    JWT_ALGORITHMS: 'HS256,EdDSA',
    JWKS_COOLDOWN_MS: '60000',
    RATE_LIMIT_IP_MAX: '0',
    RATE_LIMIT_USER_MAX: '0'
  })
})
t.teardown(async () => {
  await gw.close()
  await jwks.close()
  await up.close()
})

type Alg = 'HS256' | 'EdDSA'
const alg = fc.constantFrom<Alg>('HS256', 'EdDSA')
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })
const now = (): number => Math.floor(Date.now() / 1000)

/** A compact JWS over exactly these payload bytes (jose signs them as given). */
async function signBytes (payload: Uint8Array, a: Alg): Promise<string> {
  const jws = new CompactSign(payload)
  return a === 'HS256'
    ? await jws.setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secretKey)
    : await jws.setProtectedHeader({ alg: 'EdDSA', kid: ed.kid, typ: 'JWT' }).sign(ed.privateKey)
}

/** A compact JWS over arbitrary protected-header and payload bytes, signed by hand (jose takes only an object header). */
function signRawBytes (header: Uint8Array, payload: Uint8Array, a: Alg): string {
  const input = `${Buffer.from(header).toString('base64url')}.${Buffer.from(payload).toString('base64url')}`
  const sig = a === 'HS256' ? createHmac('sha256', SECRET).update(input).digest() : nodeSign(null, Buffer.from(input), ed.privateKey)
  return `${input}.${sig.toString('base64url')}`
}

interface Outcome { status: number, code: string | undefined, forwarded: Recorded[] }
let tasksSeen = 0

/** Sends the token; returns the answer and the requests the task service received for it. */
async function send (token: string): Promise<Outcome> {
  const res = await request(`${gw.url}/api/tasks`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  let code: string | undefined
  try { code = (JSON.parse(text) as { error?: { code?: string } }).error?.code } catch { code = undefined }
  // A forwarded request is recorded before the stub answers it, so before the gateway answers us.
  await new Promise((resolve) => setImmediate(resolve))
  const tasks = up.tasks()
  const forwarded = tasks.slice(tasksSeen)
  tasksSeen = tasks.length
  return { status: res.statusCode, code, forwarded }
}

function userIdValues (r: Recorded): string[] {
  const out: string[] = []
  for (let i = 0; i < r.rawHeaders.length; i += 2) if ((r.rawHeaders[i] as string).toLowerCase() === 'x-user-id') out.push(r.rawHeaders[i + 1] as string)
  return out
}

/** The forwarded request carries the sub's UTF-8 bytes as X-User-Id, and an assertion for that sub. */
async function checkForwardedSub (r: Recorded, sub: string): Promise<void> {
  const ids = userIdValues(r)
  if (ids.length !== 1) throw new Error(`X-User-Id arrived ${ids.length} times`)
  // Node hands header bytes over as Latin-1 characters: back to the bytes that were on the wire.
  const wire = Buffer.from(ids[0] as string, 'latin1')
  const expected = Buffer.from(sub, 'utf8')
  if (!wire.equals(expected)) throw new Error(`X-User-Id bytes ${wire.toString('hex')}, the sub's UTF-8 bytes ${expected.toString('hex')}`)
  const assertion = r.rawHeaders[r.rawHeaders.findIndex((n, i) => i % 2 === 0 && n.toLowerCase() === 'x-gateway-assertion') + 1] as string
  const { payload } = await jwtVerify(assertion, ASSERTION_KEYS.publicKey, { algorithms: ['EdDSA'], typ: 'gateway-assertion+jwt', issuer: 'gateway', audience: 'task-service' })
  if (typeof payload.sub !== 'string' || !Buffer.from(payload.sub, 'utf8').equals(wire)) throw new Error(`assertion sub ${JSON.stringify(payload.sub)} differs from X-User-Id`)
}

// ---- random subs ------------------------------------------------------------------------------------------
// One character of a sub: mostly plain, with every kind of trouble mixed in.
const unit = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'abcxyzABC0129-_@.+'.split('')) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) }, // any code point
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) }, // printable graphemes, multi-code-point ones included
  { weight: 1, arbitrary: fc.integer({ min: 0x300, max: 0x36f }).map((c) => String.fromCodePoint(c)) }, // combining marks
  { weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)) }, // astral
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) }, // lone surrogates
  { weight: 1, arbitrary: fc.constantFrom('\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u007f', '\u0080', '\u0085', '\u009f') }, // controls
  {
    weight: 1,
    arbitrary: fc.constantFrom(' ', '\u00a0', '\u1680', '\u2000', '\u2028', '\u2029', '\u202f', '\u3000', '\ufeff', '\u200b', '\u200d', '\u00ad',
      '\ufffd', '\ufffe', '\uffff', '"', '\\', '/', ',', ';', ':', '=', '%', '\u00e9', '\u00ff', '\u0100', '\u0130', '\u212a')
  } // whitespace of every kind, invisible and special characters, characters whose case folding changes length
)
/** Code points, not UTF-16 units, for the length boundary. */
const codePoints = (n: number): fc.Arbitrary<string> => fc.array(unit, { minLength: n, maxLength: n }).map((cs) => cs.join(''))
const subValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom('user-1', 'alice@example.com', 'zoë', '日本語', 'a b', '😀', 'e\u0301', '0', 'null', 'ÿ') },
  { weight: 6, arbitrary: fc.string({ unit, minLength: 0, maxLength: 24 }) },
  // The 255-code-point boundary, in characters of 1 to 4 UTF-8 bytes and 1 or 2 UTF-16 units.
  {
    weight: 2,
    arbitrary: fc.tuple(fc.integer({ min: 253, max: 257 }), fc.constantFrom('a', 'é', '日', '😀', '\u0301')).map(([n, c]) => 'u' + c.repeat(n - 1))
  },
  { weight: 1, arbitrary: fc.integer({ min: 240, max: 270 }).chain(codePoints) },
  { weight: 1, arbitrary: fc.string({ unit, minLength: 500, maxLength: 1500 }) }, // very long
  // Longer than a token may be (MAX_TOKEN_LENGTH), yet within Node's header size limit.
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'abc-_'.split('')), minLength: 6500, maxLength: 10_000 }) },
  // Not a string, or absent (undefined: the claim is left out).
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 })) }
)
// Claims the gateway checks itself are set valid; every other claim is random.
const CHECKED = new Set(['sub', 'aud', 'exp', 'iat', 'nbf', 'iss'])
const otherClaims = fc.dictionary(fc.string({ unit: fc.oneof(fc.constantFrom(...'abcdefgh_'.split('')), unit), maxLength: 8 }).filter((k) => !CHECKED.has(k)), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })
// How the payload's JSON spells non-ASCII characters: as UTF-8 bytes, or as \uXXXX escapes (the sub is the same).
const spelling = fc.constantFrom<'utf8' | 'escaped'>('utf8', 'escaped')

function payloadBytes (sub: unknown, others: Record<string, unknown>, how: 'utf8' | 'escaped'): Uint8Array {
  const claims: Record<string, unknown> = { ...others, aud: AUDIENCE, exp: now() + 600, iat: now() }
  if (sub !== undefined) claims.sub = sub
  // JSON.stringify escapes lone surrogates (\udXXX): the text is well-formed either way.
  let text = JSON.stringify(claims)
  if (how === 'escaped') text = text.replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
  return new TextEncoder().encode(text)
}

t.test('property: random token payloads (HS256 and EdDSA) — refused with 401 and nothing forwarded, or forwarded with X-User-Id = the sub\'s UTF-8 bytes and an assertion for that sub', async (t) => {
  const seen = { runs: 0, accepted: 0, refused: 0, nonAscii: 0, astral: 0, tooLong: 0, byAlg: { HS256: 0, EdDSA: 0 } as Record<Alg, number> }
  await fc.assert(
    fc.asyncProperty(subValue, otherClaims, spelling, alg, async (sub, others, how, a) => {
      seen.runs++
      const bytes = payloadBytes(sub, others, how)
      const token = await signBytes(bytes, a)
      // The sub the token carries, read back from the signed bytes.
      const carried = (JSON.parse(strictUtf8.decode(bytes)) as Record<string, unknown>).sub
      const fits = token.length <= MAX_TOKEN_LENGTH
      const accept = validSubject(carried) && fits
      const { status, code, forwarded } = await send(token)
      if (!accept) {
        if (status !== 401 || forwarded.length !== 0) throw new Error(`refused sub ${JSON.stringify(carried)}: status ${status}, ${forwarded.length} forwarded`)
        const want = fits ? 'invalid_subject' : 'malformed_token'
        if (code !== want) throw new Error(`refused with ${code}, expected ${want}`)
        seen.refused++
        if (!fits) seen.tooLong++
        return
      }
      if (status !== 200 || forwarded.length !== 1) throw new Error(`valid sub ${JSON.stringify(carried)}: status ${status}, ${forwarded.length} forwarded`)
      await checkForwardedSub(forwarded[0] as Recorded, carried)
      seen.accepted++
      seen.byAlg[a]++
      if (/[^\x20-\x7e]/.test(carried)) seen.nonAscii++ // controls are refused: this is non-ASCII
      if (/[\u{10000}-\u{10ffff}]/u.test(carried)) seen.astral++
    }),
    { numRuns: RUNS * 2 }
  )
  t.equal(seen.runs, RUNS * 2, `${seen.runs} payloads tried`)
  t.ok(seen.accepted > RUNS / 4 && seen.refused > RUNS / 4, `both outcomes exercised: ${seen.accepted} forwarded, ${seen.refused} refused (${seen.tooLong} over MAX_TOKEN_LENGTH)`)
  t.ok(seen.nonAscii > 0 && seen.astral > 0, `${seen.nonAscii} forwarded subs with non-ASCII characters, ${seen.astral} with astral ones`)
  t.ok(seen.byAlg.HS256 > 0 && seen.byAlg.EdDSA > 0, `forwarded by algorithm: ${JSON.stringify(seen.byAlg)}`)
  t.equal(up.tasks().length, seen.accepted, 'the task service received exactly one request per accepted token, none for a refused one')
})

// ---- bytes that are not UTF-8 -----------------------------------------------------------------------------
const byte = (min: number, max: number): fc.Arbitrary<number> => fc.integer({ min, max })
/** Byte sequences a strict UTF-8 decoder refuses (and a lenient one turns into U+FFFD). */
const invalidUtf8: fc.Arbitrary<readonly number[]> = fc.oneof(
  fc.tuple(byte(0x80, 0xbf)), // a continuation byte alone
  fc.tuple(byte(0xc2, 0xdf)), // a 2-byte lead whose continuation is missing (what follows never starts with one)
  fc.tuple(byte(0xe1, 0xec), byte(0x80, 0xbf)), // a 3-byte sequence cut short
  fc.tuple(byte(0xf1, 0xf3), byte(0x80, 0xbf), byte(0x80, 0xbf)), // a 4-byte sequence cut short
  fc.constantFrom([0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xe0, 0x9f, 0xbf], [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf]), // overlong
  fc.tuple(byte(0xa0, 0xbf), byte(0x80, 0xbf)).map(([b, c]) => [0xed, b, c]), // a UTF-16 surrogate encoded as UTF-8
  fc.tuple(byte(0x90, 0xbf), byte(0x80, 0xbf), byte(0x80, 0xbf)).map(([b, c, d]) => [0xf4, b, c, d]), // above U+10FFFF
  fc.tuple(byte(0xf5, 0xff), fc.array(byte(0x80, 0xbf), { maxLength: 3 })).map(([l, cs]) => [l, ...cs]) // bytes that never occur in UTF-8
)
const asciiPart = fc.string({ unit: fc.constantFrom(...'abcxyz019-_@.'.split('')), maxLength: 8 })
const validPart = fc.string({ unit: fc.constantFrom('a', 'é', '日', '😀'), maxLength: 3 })
const where = fc.constantFrom<'sub' | 'claim' | 'name' | 'header'>('sub', 'sub', 'claim', 'name', 'header')
const enc = (s: string): Buffer => Buffer.from(s, 'utf8')

t.test('property: payloads or headers that are not valid UTF-8 (HS256 and EdDSA) → 401 malformed_token, nothing forwarded', async (t) => {
  const seen = { runs: 0, wouldMerge: 0, byWhere: { sub: 0, claim: 0, name: 0, header: 0 } }
  const before = up.tasks().length
  await fc.assert(
    fc.asyncProperty(fc.tuple(asciiPart, validPart), invalidUtf8, fc.tuple(validPart, asciiPart), where, alg, async (pre, bad, post, w, a) => {
      seen.runs++
      seen.byWhere[w]++
      const text = Buffer.concat([enc(pre[0]), enc(pre[1]), Buffer.from(bad), enc(post[0]), enc(post[1])])
      const tail = enc(`,"aud":"${AUDIENCE}","exp":${now() + 600},"iat":${now()}}`)
      const payload = w === 'sub'
        ? Buffer.concat([enc('{"sub":"'), text, enc('"'), tail])
        : w === 'claim'
          ? Buffer.concat([enc('{"sub":"user-1","name":"'), text, enc('"'), tail])
          : w === 'name'
            ? Buffer.concat([enc('{"sub":"user-1","'), text, enc('":1'), tail])
            : Buffer.concat([enc('{"sub":"user-1"'), tail])
      const header = w === 'header' ? Buffer.concat([enc(`{"alg":"${a}","typ":"JWT",${a === 'EdDSA' ? `"kid":"${ed.kid}",` : ''}"x":"`), text, enc('"}')]) : undefined
      // The generator's own check: these bytes are not UTF-8.
      let strict = true
      try { strictUtf8.decode(header ?? payload) } catch { strict = false }
      if (strict) throw new Error(`generated bytes are valid UTF-8: ${(header ?? payload).toString('hex')}`)
      // What a lenient decoder would have made of it: for a sub, a valid-looking user id containing U+FFFD.
      if (w === 'sub' && validSubject((JSON.parse(new TextDecoder().decode(payload)) as { sub?: unknown }).sub)) seen.wouldMerge++
      const token = header !== undefined ? signRawBytes(header, payload, a) : await signBytes(payload, a)
      const { status, code, forwarded } = await send(token)
      if (status !== 401 || code !== 'malformed_token' || forwarded.length !== 0) throw new Error(`status ${status} ${code}, ${forwarded.length} forwarded`)
    }),
    { numRuns: RUNS * 2 }
  )
  t.equal(seen.runs, RUNS * 2, `${seen.runs} tokens tried: ${JSON.stringify(seen.byWhere)}`)
  t.ok(seen.wouldMerge > 0, `${seen.wouldMerge} of them carried a sub a lenient decoder would have accepted (with U+FFFD)`)
  t.equal(up.tasks().length, before, 'the task service received nothing')
})

// ---- examples ---------------------------------------------------------------------------------------------
t.test('examples: the sub bytes on the wire', async (t) => {
  for (const [sub, hex] of [['zoë', '7a6fc3ab'], ['😀', 'f09f9880'], ['e\u0301', '65cc81'], ['ÿ', 'c3bf'], ['a\u00a0b', '61c2a062']] as const) {
    for (const a of ['HS256', 'EdDSA'] as const) {
      const { status, forwarded } = await send(await signBytes(payloadBytes(sub, {}, 'escaped'), a))
      t.equal(status, 200, `${JSON.stringify(sub)} (${a}) accepted`)
      t.equal(Buffer.from(userIdValues(forwarded[0] as Recorded)[0] ?? '', 'latin1').toString('hex'), hex, `forwarded as the bytes ${hex}`)
    }
  }
  for (const [sub, why] of [['alice\ud800', 'a lone surrogate'], ['alice\u0000', 'NUL'], ['alice\u0085', 'a C1 control'], [' alice', 'leading whitespace'], ['alice\u3000', 'trailing ideographic space'], ['\ufeffalice', 'a leading BOM'], ['😀'.repeat(256), '256 astral code points'], [42, 'a number'], [['alice'], 'an array'], [undefined, 'no sub']] as const) {
    const { status, code, forwarded } = await send(await signBytes(payloadBytes(sub, {}, 'utf8'), 'HS256'))
    t.same({ status, code, forwarded: forwarded.length }, { status: 401, code: 'invalid_subject', forwarded: 0 }, `${why}: 401 invalid_subject, nothing forwarded`)
  }
  const { status, forwarded } = await send(await signBytes(payloadBytes('😀'.repeat(255), {}, 'utf8'), 'EdDSA'))
  t.equal(status, 200, '255 astral code points (510 UTF-16 units, 1020 bytes) accepted')
  t.equal(Buffer.from(userIdValues(forwarded[0] as Recorded)[0] ?? '', 'latin1').length, 1020, 'and forwarded as 1020 bytes')
})
