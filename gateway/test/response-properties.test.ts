// Property-based test (fast-check) of what the client receives of the task service's response headers, over
// real HTTP: a stub task service answers each request with a random header set (names of headers that must
// not leave the private side in every case spelling, URI references clean and hostile, ordinary and arbitrary
// headers, Connection lists), and the client's view is checked against the documented rules
// (gateway/README.md, "Returned to the client"), stated here on their own:
//  - no hop-by-hop header, none the task service lists in Connection, no banner, no Set-Cookie, no CDN or
//    surrogate cache directive, no Access-Control-*, no instruction to a web server in front, no internal
//    identity header;
//  - the gateway's own headers carry the gateway's values, whatever the task service sent under their names;
//  - Location, Content-Location, each Link target and the Refresh URL are clean paths under /api/tasks,
//    each the task service's /tasks reference under the public prefix, or they are absent;
//  - every other header arrives as the task service sent it.
import t from 'tap'
import fc from 'fast-check'
import { request } from 'undici'
import { startUpstream, type StubUpstream } from './helpers/upstream.js'
import { startGateway, type RunningGateway } from '../../support/gateway.js'
import { bearer, signHs } from '../../support/tokens.js'
import { SECURITY_HEADERS } from '../src/response-headers.js'

const RUNS = Number(process.env.PROPERTY_RUNS ?? 150)

let up: StubUpstream
let gw: RunningGateway
let token: string
let current: string[] = []

t.before(async () => {
  up = await startUpstream((_req, res) => { res.writeHead(200, current).end('[]') })
  gw = await startGateway({ TASK_SERVICE_URL: up.url, RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  token = await signHs({ sub: 'user-1' })
})
t.teardown(async () => {
  await gw.close()
  await up.close()
})

// Never to reach the client, in any spelling (the documented list, with a random suffix for the families).
const NEVER = ['keep-alive', 'proxy-connection', 'proxy-authenticate', 'trailer', 'te', 'upgrade', 'server', 'x-powered-by', 'via', 'alt-svc',
  'set-cookie', 'set-cookie2', 'cdn-cache-control', 'surrogate-control', 'x-sendfile', 'x-lighttpd-send-file', 'x-litespeed-location',
  'x-user-id', 'x-gateway-assertion']
const NEVER_PREFIXES = ['access-control-', 'x-accel-']
const NEVER_SUFFIXES = ['-cdn-cache-control']
const isNever = (n: string): boolean => NEVER.includes(n) || NEVER_PREFIXES.some((p) => n.startsWith(p)) || NEVER_SUFFIXES.some((s) => n.endsWith(s))
const REFERENCES = ['location', 'content-location', 'link', 'refresh']
const GATEWAY_OWN = ['x-request-id', ...Object.keys(SECURITY_HEADERS)]

const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz".split('')
const token_ = fc.string({ unit: fc.constantFrom(...TCHAR), minLength: 1, maxLength: 12 })
const name = fc.oneof(
  { weight: 3, arbitrary: fc.mixedCase(fc.constantFrom(...NEVER)) },
  { weight: 2, arbitrary: fc.mixedCase(fc.tuple(fc.constantFrom(...NEVER_PREFIXES), token_).map(([p, s]) => p + s)) },
  { weight: 1, arbitrary: fc.mixedCase(token_.map((s) => s + NEVER_SUFFIXES[0])) },
  { weight: 1, arbitrary: fc.mixedCase(fc.constantFrom(...GATEWAY_OWN)) },
  { weight: 2, arbitrary: fc.mixedCase(fc.constantFrom('etag', 'last-modified', 'retry-after', 'x-custom', 'content-language', 'warning')) },
  { weight: 2, arbitrary: token_ }
).filter((n) => !/^(content-length|transfer-encoding|connection|date|content-type|vary)$/i.test(n) && !REFERENCES.includes(n.toLowerCase()))
const value = fc.string({ unit: fc.constantFrom(...' !#$%&*+-./0123456789:;=?@ABCXYZabcxyz_~'.split('')), minLength: 1, maxLength: 24 }).map((v) => v.trim() === '' ? 'v' : v.trim())

// URI references: an origin (the task service's in several spellings, others, none) and a path (clean or not).
let port = ''
const origin = fc.constantFrom('', '', '', 'ORIGIN', 'http://localhost:PORT', 'http://127.1:PORT', 'http://127.0.0.1:1', 'https://127.0.0.1:PORT', 'http://evil.example', '//evil.example', '/\\evil.example', 'javascript:', 'http:')
const path = fc.oneof(
  fc.constantFrom('/tasks', '/tasks/1', '/tasks/abc/complete', '/tasks?cursor=x&limit=2', '/tasks/caf%C3%A9', '/tasks/1#top'),
  fc.constantFrom('/admin', '/tasks/../admin', '/tasks/%2e%2e/admin', '/tasks/.%2E/x', '/tasks/%2fadmin', '/tasks/%5cx', '/tasks//evil.example', '/tasksx', 'tasks/1', '?page=2', '/tasks/\\x', '/tasks/%0d%0a', '')
)
const reference = fc.tuple(origin, path).map(([o, p]) => o.replace('ORIGIN', up.url).replace('PORT', port) + p)
const refHeader = fc.oneof(
  fc.tuple(fc.mixedCase(fc.constantFrom('location', 'content-location')), reference).map(([n, r]) => [n, r] as [string, string]),
  fc.tuple(fc.array(fc.tuple(reference, fc.constantFrom('; rel="next"', '; rel=prev', '; anchor="/x"', '; title="a, b"')), { minLength: 1, maxLength: 3 }))
    .map(([entries]) => ['Link', entries.map(([r, p]) => `<${r}>${p}`).join(', ')] as [string, string]),
  fc.tuple(fc.nat(9), reference).map(([d, r]) => ['Refresh', `${d}; url=${r}`] as [string, string])
)

/** A public reference is a clean path under /api/tasks: no dot segment, encoded slash or backslash, no second slash. */
function cleanPublic (ref: string): boolean {
  if (!/^\/api\/tasks(?:\/[^/?#\\\s]+)*(?:\?[^#\s\\]*)?(?:#\S*)?$/.test(ref)) return false
  const p = ref.split(/[?#]/)[0] as string
  return p.split('/').every((s) => !/^(?:\.|%2e){1,2}$/i.test(s) && !/%(?:2f|5c|[01][0-9a-f]|7f)/i.test(s))
}
/** The references a header value holds: each Link target, the Refresh URL, or the value itself. */
function referencesIn (n: string, v: string): string[] {
  if (n === 'link') return [...v.matchAll(/<([^>]*)>/g)].map((m) => m[1] as string)
  if (n === 'refresh') return /^\d+$/.test(v) ? [] : [v.replace(/^\d+; url=/, '')] // a delay alone reloads the same resource
  return [v]
}
/** A public reference comes from one the task service sent: its /tasks part, on no origin or on the task service's. */
function derivedFrom (pub: string, sent: string[]): boolean {
  const tail = pub.slice('/api'.length)
  return sent.some((s) => ['', up.url, `http://localhost:${port}`, `http://127.1:${port}`].some((o) => s === o + tail))
}

t.test('property: random task-service response headers — the client gets no header that must stay private, the gateway\'s own with its values, URI references only as clean /api/tasks paths, everything else as sent', async (t) => {
  port = new URL(up.url).port
  const seen = { runs: 0, passedThrough: 0, referencesKept: 0, referencesDropped: 0 }
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(name, value), { maxLength: 10 }),
      fc.array(refHeader, { maxLength: 3 }),
      fc.array(fc.oneof(name, fc.constantFrom('etag', 'x-custom')), { maxLength: 3 }),
      async (plain, refs, connectionList) => {
        seen.runs++
        const headers: Array<[string, string]> = [...plain, ...refs]
        if (connectionList.length > 0) headers.push(['Connection', connectionList.join(', ')])
        current = [...headers.flat(), 'content-type', 'application/json']
        const listed = new Set(connectionList.map((n) => n.toLowerCase()))
        const res = await request(`${gw.url}/api/tasks`, { headers: bearer(token) })
        await res.body.dump()
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
        const got = res.headers
        for (const n of Object.keys(got)) {
          // The gateway's own server describes its own connection (never a value the task service can spell).
          if (n === 'keep-alive' && /^timeout=\d+$/.test(String(got[n]))) continue
          if (isNever(n)) throw new Error(`${n} reached the client: ${JSON.stringify(got[n])}`)
          if (listed.has(n) && !GATEWAY_OWN.includes(n) && n !== 'connection') throw new Error(`${n}, listed in the task service's Connection, reached the client`)
        }
        if (got['x-request-id'] === undefined || [got['x-request-id']].flat().length !== 1) throw new Error('X-Request-Id is not the gateway\'s one value')
        for (const [n, v] of Object.entries(SECURITY_HEADERS)) if (got[n] !== v) throw new Error(`${n}: ${JSON.stringify(got[n])}`)
        const sentOf = (n: string): string[] => headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v)
        for (const n of REFERENCES) {
          const values = [got[n] ?? []].flat()
          if (n === 'location' || n === 'content-location') {
            if (sentOf(n).length !== 1 && values.length > 0) throw new Error(`a repeated ${n} was passed on`)
          }
          const sentRefs = sentOf(n).flatMap((v) => referencesIn(n, v))
          for (const v of values) {
            for (const target of referencesIn(n, v)) {
              if (!cleanPublic(target)) throw new Error(`${n}: ${target} is not a clean /api/tasks path`)
              if (!derivedFrom(target, sentRefs)) throw new Error(`${n}: ${target} is not one the task service sent`)
              seen.referencesKept++
            }
            if (n === 'link' && /anchor=/.test(v)) throw new Error('a Link with an anchor was passed on')
          }
          seen.referencesDropped += sentOf(n).length - values.length
        }
        // Everything else: as sent.
        for (const [k] of plain) {
          const n = k.toLowerCase()
          if (isNever(n) || listed.has(n) || GATEWAY_OWN.includes(n)) continue
          const want = sentOf(n)
          const have = [got[n] ?? []].flat()
          if (have.join('\n') !== want.join('\n')) throw new Error(`${n}: sent ${JSON.stringify(want)}, received ${JSON.stringify(have)}`)
          seen.passedThrough++
        }
      }
    ),
    { numRuns: RUNS * 2 }
  )
  t.equal(seen.runs, RUNS * 2, `${seen.runs} response header sets tried`)
  t.ok(seen.passedThrough > 0, `${seen.passedThrough} ordinary headers passed as sent`)
  t.ok(seen.referencesKept > 0 && seen.referencesDropped > 0, `${seen.referencesKept} URI references kept (each checked), ${seen.referencesDropped} header lines dropped`)
})
