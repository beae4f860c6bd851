// Property-based tests (fast-check) of the gateway against a recording stub upstream, over raw sockets so
// header case, duplicates and odd request targets reach the gateway exactly as generated.
// Properties, for random and mutated tokens, header sets, paths and methods:
//  - never a 5xx (the stub upstream always answers 200);
//  - nothing is forwarded without a valid token;
//  - what is forwarded carries exactly one X-User-Id, equal to the token's `sub`;
//  - what is forwarded carries no header outside the allow-list and the gateway's own headers;
//  - the forwarded path always starts with /tasks.
import t from 'tap'
import fc from 'fast-check'
import { startUpstream, type Recorded, type StubUpstream } from './helpers/upstream.js'
import { startGateway, type RunningGateway } from './helpers/gateway.js'
import { signHs } from '../../support/tokens.js'
import { rawHttp } from './helpers/raw.js'
import { FORWARDED_REQUEST_HEADERS, GATEWAY_SET_HEADERS } from '../src/pipeline/rewrite-headers.js'

const RUNS = Number(process.env.PROPERTY_RUNS ?? 150)

let up: StubUpstream
let gw: RunningGateway
const SUB = 'user-prop'
let valid: string

t.before(async () => {
  up = await startUpstream()
  gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  valid = await signHs({ sub: SUB })
})
t.teardown(async () => {
  await gw.close()
  await up.close()
})

const inputs = { tokens: 0, headers: 0, paths: 0 }
const forwardedCount = { tokens: 0, headers: 0, paths: 0 }

/** Sends one raw request; returns the status and what the upstream received for it. */
async function send (method: string, target: string, headers: Array<[string, string]>, body = ''): Promise<{ status: number, forwarded: Recorded[] }> {
  const before = up.received.length
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: gateway.test', ...headers.map(([k, v]) => `${k}: ${v}`)]
  if (body !== '') lines.push(`Content-Length: ${Buffer.byteLength(body)}`)
  lines.push('Connection: close')
  let status: number
  try {
    status = (await rawHttp(gw.port, lines.join('\r\n') + '\r\n\r\n' + body)).status
  } catch {
    status = 0 // the gateway closed the connection without an answer (e.g. an unparseable request line)
  }
  // The stub records when a request has ended; give a forwarded request a moment to be recorded.
  await new Promise((resolve) => setImmediate(resolve))
  return { status, forwarded: up.received.slice(before).filter((r) => r.url !== '/readyz') }
}

function userIdValues (r: Recorded): string[] {
  const out: string[] = []
  for (let i = 0; i < r.rawHeaders.length; i += 2) if ((r.rawHeaders[i] as string).toLowerCase() === 'x-user-id') out.push(r.rawHeaders[i + 1] as string)
  return out
}

function checkForwarded (forwarded: Recorded[], sub: string): void {
  for (const r of forwarded) {
    const ids = userIdValues(r)
    if (ids.length !== 1 || ids[0] !== sub) throw new Error(`forwarded with X-User-Id ${JSON.stringify(ids)}`)
    if (!(r.url === '/tasks' || r.url.startsWith('/tasks/') || r.url.startsWith('/tasks?'))) throw new Error(`forwarded to ${r.url}`)
  }
}

// ---- tokens -----------------------------------------------------------------------------------------------
const b64chars = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split(''))
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), ch: b64chars }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), s: fc.string({ maxLength: 10 }) }),
  fc.record({ kind: fc.constant('swap' as const) }),
  fc.record({ kind: fc.constant('header' as const), alg: fc.constantFrom('none', 'HS512', 'RS256', 'EdDSA', 'hs256', '') }),
  fc.record({ kind: fc.constant('payload' as const), sub: fc.oneof(fc.string({ maxLength: 300 }), fc.constant(null), fc.integer()) })
)
function mutate (token: string, m: { kind: string, at?: number, ch?: string, s?: string, alg?: string, sub?: unknown }): string {
  const [h, p, s] = token.split('.') as [string, string, string]
  switch (m.kind) {
    case 'flip': { const i = (m.at ?? 0) % token.length; return token.slice(0, i) + (m.ch ?? 'A') + token.slice(i + 1) }
    case 'truncate': return token.slice(0, (m.at ?? 0) % token.length)
    case 'append': return token + (m.s ?? '')
    case 'swap': return `${p}.${h}.${s}`
    case 'header': return `${Buffer.from(JSON.stringify({ alg: m.alg, typ: 'JWT' })).toString('base64url')}.${p}.${s}`
    default: return `${h}.${Buffer.from(JSON.stringify({ sub: m.sub, exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url')}.${s}`
  }
}
const scheme = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Bearer ', 'Basic', 'Token', '')

t.test('property: random and mutated tokens — never a 5xx; forwarded only when valid, then with X-User-Id = sub', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        { weight: 1, arbitrary: fc.constant({ token: '', derived: true }) }, // the valid token itself
        { weight: 3, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => ({ token: ms.reduce((tok, m) => mutate(tok, m), valid), derived: true })) },
        { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => ({ token: s.replace(/[\r\n]/g, ''), derived: false })) },
        { weight: 1, arbitrary: fc.array(fc.string({ unit: b64chars, maxLength: 60 }), { minLength: 1, maxLength: 4 }).map((parts) => ({ token: parts.join('.'), derived: false })) }
      ),
      scheme,
      async (gen, sch) => {
        inputs.tokens++
        const token = gen.token === '' && gen.derived ? valid : gen.token
        const derived = gen.derived
        const { status, forwarded } = await send('GET', '/api/tasks', [['Authorization', `${sch} ${token}`.replace(/[^\x20-\x7e]/g, '')]])
        if (status >= 500) throw new Error(`status ${status}`)
        if (forwarded.length > 0) {
          // Accepted: it must be the valid token (up to base64url spellings of the same bytes).
          const [h, p] = token.split('.')
          const [vh, vp] = valid.split('.')
          if (!derived || h !== vh || p !== vp) throw new Error(`forwarded with token ${token}`)
          checkForwarded(forwarded, SUB)
          forwardedCount.tokens++
        } else if (token === valid && /^bearer $/i.test(sch + ' ')) {
          throw new Error(`the valid token was not forwarded (status ${status})`)
        } else if (status === 200) {
          throw new Error('200 without forwarding')
        }
      }
    ),
    { numRuns: RUNS }
  )
  t.ok(inputs.tokens >= RUNS, `${inputs.tokens} tokens tried`)
  t.ok(forwardedCount.tokens > 0, `${forwardedCount.tokens} of them valid and forwarded (the property is not vacuous)`)
})

// ---- header sets ------------------------------------------------------------------------------------------
const identityName = fc.tuple(
  fc.constantFrom('x-user-id', 'x_user_id', 'X.User.Id', 'X-USER-ID', 'x-user_id', 'XUSERID', 'x-auth-user', 'x-forwarded-user', 'remote-user', 'x-remote-user', 'X-Real-Ip', 'x-original-url', 'x-forwarded-prefix', 'x-request-id', 'forwarded', 'x-user',
    'X-Amzn-Oidc-Identity', 'X-MS-Client-Principal-Name', 'Impersonate-User', 'X-Consumer-Username', 'X-Goog-Authenticated-User-Email', 'True-Client-IP', 'User-Id', 'X-Gateway-Assertion', 'x-forwarded-for', 'x-forwarded-host'),
  fc.boolean()
).map(([n, upper]) => (upper ? n.toUpperCase() : n))
const otherName = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.'.split('')), minLength: 1, maxLength: 20 })
  .filter((n) => !/^(content-length|transfer-encoding|host|authorization|connection|expect|upgrade)$/i.test(n))
// Allow-listed names (in any case) mixed in, so that the property also sees headers that must pass.
const listedName = fc.tuple(fc.constantFrom(...FORWARDED_REQUEST_HEADERS.filter((n) => n !== 'content-length')), fc.boolean()).map(([n, upper]) => (upper ? n.toUpperCase() : n))
// What the task service may receive: the allow-list, the gateway's own headers, and the framing undici writes.
const MAY_ARRIVE = new Set([...FORWARDED_REQUEST_HEADERS, ...GATEWAY_SET_HEADERS, 'host', 'connection'])
const value = fc.string({ unit: fc.constantFrom(...' !#$%&*+-.0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz|~'.split('')), maxLength: 30 }).map((v) => v.trim() === '' ? 'v' : v.trim())

t.test('property: random header sets (identity spellings of any platform, case, duplicates, Connection lists) — exactly one X-User-Id = sub, nothing outside the allow-list', async (t) => {
  let listedForwarded = 0
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.oneof(identityName, otherName, listedName), value), { maxLength: 12 }),
      fc.array(fc.oneof(identityName, otherName, fc.constantFrom('close', 'keep-alive', 'x-user-id', 'X-User-Id')), { maxLength: 4 }),
      fc.boolean(),
      async (headers, connectionList, withToken) => {
        inputs.headers++
        const hs: Array<[string, string]> = [...headers]
        if (connectionList.length > 0) hs.push(['Connection', connectionList.join(', ')])
        if (withToken) hs.push(['Authorization', `Bearer ${valid}`])
        const { status, forwarded } = await send('GET', '/api/tasks', hs)
        if (status >= 500) throw new Error(`status ${status}`)
        if (!withToken && forwarded.length > 0) throw new Error('forwarded without a token')
        if (withToken && status === 200 && forwarded.length !== 1) throw new Error('answered 200 without forwarding once')
        checkForwarded(forwarded, SUB)
        forwardedCount.headers += forwarded.length
        for (const r of forwarded) {
          for (let i = 0; i < r.rawHeaders.length; i += 2) {
            const name = (r.rawHeaders[i] as string).toLowerCase()
            if (!MAY_ARRIVE.has(name)) throw new Error(`header ${r.rawHeaders[i]} outside the allow-list forwarded`)
            if ((FORWARDED_REQUEST_HEADERS as string[]).includes(name) && name !== 'content-length') listedForwarded++
          }
        }
      }
    ),
    { numRuns: RUNS }
  )
  t.ok(inputs.headers >= RUNS, `${inputs.headers} header sets tried`)
  t.ok(forwardedCount.headers > 0, `${forwardedCount.headers} forwarded and checked`)
  t.ok(listedForwarded > 0, `${listedForwarded} allow-listed client headers passed (the allow-list is not empty in practice)`)
})

// ---- paths and methods ------------------------------------------------------------------------------------
const segment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('api', 'tasks', 'complete', SUB, 'other-user', 'abc', '123') },
  { weight: 3, arbitrary: fc.constantFrom('..', '.', '%2e%2e', '%2E%2e', '%2e', '%2f', '%2F', '%5c', '%00', '', '%', '%zz', '%C3%A9', 'é', '日本', '%E6%97%A5', '..%2f', '.%2e', ';', 'readyz', 'healthz', '%252e%252e') },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'abc-_.~%2e0123456789ABC'.split('')), maxLength: 8 }) }
)
/** Mostly real routes with tricks spliced in at random places; sometimes pure noise. */
const pathSegments = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.tuple(
      fc.constantFrom(['api', 'tasks'], ['api', SUB, 'tasks'], ['api', 'other-user', 'tasks'], ['api', '%75ser-prop', 'tasks'], ['api', '%74asks']),
      fc.array(fc.constantFrom('abc', '123', 'x%20y', '%C3%A9', '%2e%2e%2fadmin'), { maxLength: 1 }),
      fc.boolean(),
      fc.oneof(fc.constant([] as Array<[number, string]>), fc.array(fc.tuple(fc.nat(6), segment), { minLength: 1, maxLength: 2 }))
    ).map(([base, id, complete, inserts]) => {
      const out = [...base, ...id, ...(complete && id.length > 0 ? ['complete'] : [])]
      for (const [at, seg] of inserts) out.splice(at % (out.length + 1), 0, seg)
      return out
    })
  },
  { weight: 1, arbitrary: fc.array(segment, { minLength: 0, maxLength: 7 }) }
)
const method = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE') },
  { weight: 1, arbitrary: fc.constantFrom('HEAD', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'get', 'FOO') }
)
const queryPart = fc.oneof(fc.constant(''), fc.string({ unit: fc.constantFrom(...'abc=&%2e./?#0123'.split('')), maxLength: 12 }).map((q) => '?' + q))

t.test('property: random paths and methods — never a 5xx; forwarded only with a valid token, only under /tasks, with one X-User-Id = sub', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      pathSegments,
      fc.boolean(),
      queryPart,
      method,
      fc.boolean(),
      async (segs, lead, q, m, withToken) => {
        inputs.paths++
        const path = (lead ? '//' : '/') + segs.join('/') + q
        const target = Buffer.from(path, 'utf8').toString('latin1')
        const hs: Array<[string, string]> = withToken ? [['Authorization', `Bearer ${valid}`]] : []
        const body = ['POST', 'PUT', 'PATCH'].includes(m) ? '{"title":"t"}' : ''
        if (body !== '') hs.push(['Content-Type', 'application/json'])
        const { status, forwarded } = await send(m, target, hs, body)
        if (status >= 500) throw new Error(`${m} ${path} → ${status}`)
        if (!withToken && forwarded.length > 0) throw new Error(`${m} ${path} forwarded without a token`)
        checkForwarded(forwarded, SUB)
        forwardedCount.paths += forwarded.length
      }
    ),
    { numRuns: RUNS * 2 }
  )
  t.ok(inputs.paths >= RUNS * 2, `${inputs.paths} path/method combinations tried`)
  t.ok(forwardedCount.paths > 0, `${forwardedCount.paths} forwarded and checked`)
  t.comment(`inputs tried: ${JSON.stringify(inputs)}; forwarded and checked: ${JSON.stringify(forwardedCount)}`)
})
