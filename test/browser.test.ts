// The gateway from a real browser: headless Chromium (the Debian package, driven by playwright-core) opens a
// static page served from a second origin on 127.0.0.1, and that page calls the gateway with fetch() and a
// bearer token, as a frontend does. Every check asserts what JavaScript could read — status, JSON body and
// each exposed header — because a browser hides whatever CORS does not allow: an answer without
// Access-Control-Allow-Origin is only `TypeError: Failed to fetch` to the page, whatever the gateway sent.
//
// The stack is the real one over real sockets (support/task-service.ts, support/gateway.ts): one task service,
// and gateways with low limits so that 413, both 429s and load shedding's 503 are reached in a few requests.
// Without Chromium the file is skipped with one line saying so; on a failed check, a screenshot of the results
// page is written under .tap/browser/ (its path is printed).
import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { chromium, type Page } from 'playwright-core'
import { mintDevToken, SECRET, signHs } from '../support/tokens.js'
import { effectiveEnv, ensureDevCorsOrigins, ensureDevSecret } from '../scripts/dev-env.js'
import { FaultProxy } from './helpers/fault-proxy.js'
import { startGateway, type RunningGateway } from '../support/gateway.js'
import { startTaskService } from '../support/task-service.js'
import { eventually } from '../support/wait.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PAGE_DIR = fileURLToPath(new URL('browser/', import.meta.url))
const SCREENSHOT_DIR = join(ROOT, '.tap', 'browser')

/** Chromium from the distribution (apt-get install chromium), or the one CHROMIUM_PATH names. */
const CHROMIUM_CANDIDATES = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser']
const CHROMIUM = CHROMIUM_CANDIDATES.find((p) => existsSync(p))

// As the machine's Chromium is started elsewhere: no sandbox (CI runs as root), no GPU, and none of the
// background connections a closed network refuses.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** What the page could read of one answer (test/browser/page.js). */
interface Seen {
  label: string
  ok: boolean
  status?: number
  url?: string
  headers?: Record<string, string>
  json?: unknown
  text?: string
  error?: string
}

interface CallOptions {
  url: string
  method?: string
  token?: string
  json?: unknown
  bodyBytes?: number
  headers?: Record<string, string>
  credentials?: 'omit' | 'same-origin' | 'include'
}

interface PageApi {
  gatewayPage: {
    call: (label: string, o: CallOptions) => Promise<Seen>
    createAndFollow: (label: string, o: CallOptions) => Promise<{ created: Seen, followed: Seen | null, locationUrl: string | null }>
    readAllPages: (label: string, o: CallOptions) => Promise<Seen[]>
    callWithRefresh: (label: string, o: CallOptions) => Promise<{ first: Seen, retried: Seen | null }>
  }
  gatewayPageReady?: boolean
}

interface Task { id: string, user_id: string, title: string, description: string | null, completed: boolean }

const ERROR_CODE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/

if (CHROMIUM === undefined) {
  t.plan(0, `browser tests not run: no Chromium at ${CHROMIUM_CANDIDATES.join(' or ')} (apt-get install chromium, or set CHROMIUM_PATH)`)
} else {
  await suite(CHROMIUM)
}

async function suite (executablePath: string): Promise<void> {
  // ---- the two origins the pages come from: one allowed by the gateways, one not ----------------------
  const allowedSite = await serveStatic(t)
  const otherSite = await serveStatic(t)

  // ---- the stack: one task service; gateways that allow the first origin, each set up for some rows -------
  const taskService = await startTaskService(t)
  const upstream = taskService.url
  const gateway = async (env: Record<string, string>): Promise<RunningGateway> =>
    await startGateway({ CORS_ORIGINS: allowedSite, TASK_SERVICE_URL: upstream, ...env }, { t })
  const main = (await gateway({})).url
  const ipLimitedApp = await gateway({ RATE_LIMIT_IP_MAX: '5', RATE_LIMIT_USER_MAX: '0', RATE_LIMIT_WINDOW_MS: '600000' })
  const ipLimited = ipLimitedApp.url
  const userLimited = (await gateway({ RATE_LIMIT_USER_MAX: '3', RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_WINDOW_MS: '600000' })).url
  // A heap threshold of one byte: this gateway is overloaded from its first sample on, without stalling the
  // event loop that every server here shares. Its 503 comes from the same handler as any other shed.
  const shedding = (await gateway({ LOAD_SHED_MAX_HEAP_BYTES: '1', LOAD_SHED_SAMPLE_INTERVAL_MS: '20' })).url
  // The task service behind a fault proxy: stopped (connections refused) or hanging on demand.
  const proxy = new FaultProxy({ host: '127.0.0.1', port: taskService.port })
  await proxy.start()
  t.teardown(() => proxy.close())
  const faulty = (await gateway({ TASK_SERVICE_URL: proxy.url, UPSTREAM_TIMEOUT_MS: '1000' })).url
  // Configured as `npm start` configures it on a first run: by the .env it writes (into a scratch directory
  // here), with no CORS_ORIGINS of the test's own.
  const dotenvDir = mkdtempSync(join(tmpdir(), 'browser-dotenv-'))
  t.teardown(() => { rmSync(dotenvDir, { recursive: true, force: true }) })
  ensureDevSecret({}, join(dotenvDir, '.env'))
  ensureDevCorsOrigins({}, join(dotenvDir, '.env'))
  const firstRun = (await startGateway({ ...effectiveEnv({}, join(dotenvDir, '.env')), TASK_SERVICE_URL: upstream }, { t })).url

  // ---- the browser ---------------------------------------------------------------------------------------
  // http://localhost:3000, the usual frontend dev origin, is one more static server here (port 3000 may be
  // anyone's on a shared machine): the browser connects to it for that name and port, and the page's origin is
  // http://localhost:3000 — all the gateway sees.
  const devSite = await serveStatic(t)
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [...CHROMIUM_ARGS, `--host-resolver-rules=MAP localhost:3000 127.0.0.1:${new URL(devSite).port}`]
  })
  t.teardown(() => browser.close())
  const pages: Array<{ name: string, page: Page }> = []
  async function openPage (name: string, origin: string): Promise<Page> {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.exposeFunction('freshToken', async () => await token('browser-refresh'))
    await page.goto(origin + '/')
    await page.waitForFunction(() => (globalThis as unknown as PageApi).gatewayPageReady === true)
    pages.push({ name, page })
    return page
  }
  const page = await openPage('allowed-origin', allowedSite)

  // On a failed check: every open page as a picture, its path printed.
  t.afterEach(async (t) => {
    if (t.passing()) return
    mkdirSync(SCREENSHOT_DIR, { recursive: true })
    for (const { name, page } of pages) {
      const path = join(SCREENSHOT_DIR, `${t.name.replace(/[^a-zA-Z0-9]+/g, '-').slice(0, 80)}--${name}.png`)
      await page.screenshot({ path, fullPage: true })
      console.error(`screenshot of the results page after "${t.name}": ${path}`)
    }
  })

  const tokens = new Map<string, string>()
  async function token (user: string): Promise<string> {
    let v = tokens.get(user)
    if (v === undefined) {
      v = await mintDevToken({ secret: SECRET, subject: user, ttlSeconds: 600 })
      tokens.set(user, v)
    }
    return v
  }
  const api = (p: Page = page): PageApi['gatewayPage'] => ({
    call: async (label, o) => await p.evaluate(([l, x]) => (globalThis as unknown as PageApi).gatewayPage.call(l, x), [label, o] as const),
    createAndFollow: async (label, o) => await p.evaluate(([l, x]) => (globalThis as unknown as PageApi).gatewayPage.createAndFollow(l, x), [label, o] as const),
    readAllPages: async (label, o) => await p.evaluate(([l, x]) => (globalThis as unknown as PageApi).gatewayPage.readAllPages(l, x), [label, o] as const),
    callWithRefresh: async (label, o) => await p.evaluate(([l, x]) => (globalThis as unknown as PageApi).gatewayPage.callWithRefresh(l, x), [label, o] as const)
  })
  const { call, createAndFollow, readAllPages, callWithRefresh } = api()

  /** The page read the answer (CORS let it through) with this status. */
  function readable (t: Tap, seen: Seen, status: number): boolean {
    return t.ok(seen.ok, `${seen.label}: readable by the page (${seen.error ?? 'no fetch error'})`) &&
      t.equal(seen.status, status, `${seen.label}: status ${status}`)
  }

  /** The one error contract: exactly {error:{code,message,requestId}}, the id the one in X-Request-Id. */
  function errorShape (t: Tap, seen: Seen, code?: string | RegExp): void {
    const body = seen.json as { error?: Record<string, unknown> } | null
    t.same(Object.keys(body ?? {}), ['error'], `${seen.label}: the body is {error:{…}} and nothing else`)
    t.same(Object.keys(body?.error ?? {}).sort(), ['code', 'message', 'requestId'], `${seen.label}: error has code, message, requestId`)
    t.match(body?.error?.code, ERROR_CODE, `${seen.label}: lower_snake_case code`)
    if (code !== undefined) t.match(body?.error?.code, code, `${seen.label}: code`)
    t.equal(typeof body?.error?.message, 'string', `${seen.label}: message is text`)
    t.not(body?.error?.message, '', `${seen.label}: message is not empty`)
    t.equal(body?.error?.requestId, seen.headers?.['x-request-id'], `${seen.label}: requestId is the X-Request-Id the page could read`)
  }

  // ---- CRUD ----------------------------------------------------------------------------------------------
  const alice = 'browser-alice@example.com'
  for (const [style, prefix, credentials] of [
    ['/api/tasks', '/api/tasks', undefined],
    ['/api/{user_id}/tasks (credentials: include)', `/api/${encodeURIComponent(alice)}/tasks`, 'include']
  ] as const) {
    t.test(`CRUD through ${style}; Location followed from the page`, async (t) => {
      const tk = await token(alice)
      const o = { token: tk, ...(credentials !== undefined ? { credentials } : {}) }
      const { created, followed, locationUrl } = await createAndFollow(`create via ${prefix}`, { ...o, url: main + prefix, json: { title: 'From the browser', description: 'page' } })
      if (!readable(t, created, 201)) return
      const task = created.json as Task
      t.equal(task.user_id, alice)
      t.equal(created.headers?.location, `${prefix}/${task.id}`, 'Location readable, relative to the gateway')
      t.match(created.headers?.['x-request-id'], /\S/, 'X-Request-Id readable')
      t.equal(locationUrl, `${main}${prefix}/${task.id}`, 'new URL(Location, res.url) is the task on the gateway')
      if (followed === null || !readable(t, followed, 200)) return
      t.same(followed.json, task, 'following Location reads the task just created')

      const listed = await call(`list ${prefix}`, { ...o, url: main + prefix })
      if (readable(t, listed, 200)) t.ok((listed.json as Task[]).some((x) => x.id === task.id), 'listed')

      const put = await call(`PUT ${prefix}/{id}`, { ...o, url: `${main}${prefix}/${task.id}`, method: 'PUT', json: { title: 'Replaced', description: null, completed: false } })
      if (readable(t, put, 200)) t.match(put.json, { id: task.id, title: 'Replaced', description: null })
      const patched = await call(`PATCH ${prefix}/{id}`, { ...o, url: `${main}${prefix}/${task.id}`, method: 'PATCH', json: { description: 'patched' } })
      if (readable(t, patched, 200)) t.match(patched.json, { title: 'Replaced', description: 'patched' })
      const completed = await call(`PATCH ${prefix}/{id}/complete`, { ...o, url: `${main}${prefix}/${task.id}/complete`, method: 'PATCH' })
      if (readable(t, completed, 200)) t.match(completed.json, { id: task.id, completed: true })
      const deleted = await call(`DELETE ${prefix}/{id}`, { ...o, url: `${main}${prefix}/${task.id}`, method: 'DELETE' })
      readable(t, deleted, 204)
      const gone = await call(`GET ${prefix}/{id} after DELETE`, { ...o, url: `${main}${prefix}/${task.id}` })
      if (readable(t, gone, 404)) errorShape(t, gone)
    })
  }

  t.test('pagination: the page follows Link rel="next" to the last page, on both route styles', async (t) => {
    for (const [user, prefix] of [['browser-pager', '/api/tasks'], ['browser-pager-2', '/api/browser-pager-2/tasks']] as const) {
      const tk = await token(user)
      const ids: string[] = []
      for (let i = 1; i <= 5; i++) {
        const c = await call(`create #${i} for paging`, { url: main + prefix, method: 'POST', token: tk, json: { title: `page item ${i}` } })
        if (readable(t, c, 201)) ids.push((c.json as Task).id)
      }
      const pages = await readAllPages(`list ${prefix}?limit=2`, { url: `${main}${prefix}?limit=2`, token: tk })
      t.same(pages.map((p) => p.status), [200, 200, 200], `${prefix}: three pages, each readable`)
      t.same(pages.map((p) => (p.json as Task[] | null)?.length), [2, 2, 1])
      t.same(pages.flatMap((p) => (p.json as Task[] | null ?? []).map((x) => x.id)).sort(), [...ids].sort(), 'every task once')
      t.match(pages[0]?.headers?.link, new RegExp(`^<${prefix.replace(/[/?]/g, '\\$&')}\\?[^>]*cursor=[^>]*>; rel="next"$`), `${prefix}: Link readable, on the public prefix`)
      t.equal(pages[2]?.headers?.link, undefined, 'the last page has no Link')
    }
  })

  // ---- authentication errors a frontend acts on -----------------------------------------------------------
  t.test('an expired token: WWW-Authenticate and token_expired readable; the page refreshes and retries', async (t) => {
    const now = Math.floor(Date.now() / 1000)
    const expired = await signHs({ sub: 'browser-refresh', iat: now - 3600, exp: now - 600 }, SECRET, { typ: 'JWT' })
    const { first, retried } = await callWithRefresh('list with an expired token', { url: main + '/api/tasks', token: expired })
    if (readable(t, first, 401)) {
      t.equal(first.headers?.['www-authenticate'], 'Bearer realm="api", error="invalid_token", error_description="token expired"', 'WWW-Authenticate readable')
      errorShape(t, first, 'token_expired')
    }
    t.ok(retried !== null, 'the page recognized an expired token and refreshed it')
    if (retried !== null) readable(t, retried, 200)

    const none = await call('list without a token', { url: main + '/api/tasks' })
    if (readable(t, none, 401)) {
      t.equal(none.headers?.['www-authenticate'], 'Bearer realm="api"')
      errorShape(t, none, 'missing_token')
    }
  })

  // ---- the rows of issue 11's table ------------------------------------------------------------------------
  t.test('POST of a 1.1 MiB body: the gateway\'s own 413 is readable', async (t) => {
    const big = await call('POST 1.1 MiB', { url: main + '/api/tasks', method: 'POST', token: await token(alice), bodyBytes: Math.ceil(1.1 * 1024 * 1024) })
    if (readable(t, big, 413)) errorShape(t, big, 'payload_too_large')
  })

  t.test('405: Allow readable', async (t) => {
    const tk = await token(alice)
    const collection = await call('DELETE /api/tasks', { url: main + '/api/tasks', method: 'DELETE', token: tk })
    if (readable(t, collection, 405)) {
      t.equal(collection.headers?.allow, 'GET, HEAD, POST', 'Allow readable')
      errorShape(t, collection, 'method_not_allowed')
    }
    const item = await call('POST /api/tasks/{id}', { url: `${main}/api/tasks/${randomUUID()}`, method: 'POST', token: tk, json: {} })
    if (readable(t, item, 405)) t.equal(item.headers?.allow, 'GET, HEAD, PUT, PATCH, DELETE', 'Allow readable')
  })

  t.test('a 404 from the task service and the gateway\'s own 404 have one body shape', async (t) => {
    const tk = await token(alice)
    const fromService = await call('GET an unknown task (task service 404)', { url: `${main}/api/tasks/${randomUUID()}`, token: tk, headers: { 'x-request-id': 'browser-404-service' } })
    const fromGateway = await call('GET an unknown route (gateway 404)', { url: `${main}/api/nothing-here`, token: tk, headers: { 'x-request-id': 'browser-404-gateway' } })
    for (const [seen, id] of [[fromService, 'browser-404-service'], [fromGateway, 'browser-404-gateway']] as const) {
      if (!readable(t, seen, 404)) continue
      errorShape(t, seen)
      t.equal((seen.json as { error?: { requestId?: unknown } }).error?.requestId, id, `${seen.label}: the request id the page sent`)
    }
  })

  t.test('per-address limit (requests without a valid token): preflights are not counted, and the 429 is readable with Retry-After and RateLimit-*', async (t) => {
    // A page whose session token has expired: each request fails authentication and counts against the address.
    const tk = await signHs({ sub: 'browser-ip', exp: Math.floor(Date.now() / 1000) - 60 }, SECRET)
    let preflights = 0
    ipLimitedApp.app.server.on('request', (req: http.IncomingMessage) => { if (req.method === 'OPTIONS') preflights++ })
    // A new URL each time: the browser's preflight cache does not spare a single one.
    const within: Seen[] = []
    for (let i = 1; i <= 5; i++) within.push(await call(`per-address request ${i} of 5`, { url: `${ipLimited}/api/tasks?limit=${i}`, token: tk }))
    t.same(within.map((s) => s.ok ? s.status : s.error), [401, 401, 401, 401, 401], 'the five failures the limit allows are answered 401, readable')
    t.equal(preflights, 5, 'each of them was preflighted')
    const over = await call('per-address request 6 of 5', { url: `${ipLimited}/api/tasks?limit=6`, token: tk })
    if (readable(t, over, 429)) {
      errorShape(t, over, 'rate_limited')
      t.match(over.headers?.['retry-after'], /^[1-9]\d*$/, 'Retry-After readable')
      t.equal(over.headers?.['ratelimit-limit'], '5', 'RateLimit-Limit readable')
      t.equal(over.headers?.['ratelimit-remaining'], '0', 'RateLimit-Remaining readable')
      t.match(over.headers?.['ratelimit-reset'], /^\d+$/, 'RateLimit-Reset readable')
    }
    t.equal(preflights, 6, 'the sixth was preflighted too, and its preflight was answered past the limit')
  })

  t.test('per-user limit: RateLimit-* readable on every answer; the 429 readable with Retry-After', async (t) => {
    const tk = await token('browser-user-limit')
    for (let i = 1; i <= 3; i++) {
      const ok = await call(`per-user request ${i} of 3`, { url: `${userLimited}/api/tasks`, token: tk })
      if (!readable(t, ok, 200)) continue
      t.equal(ok.headers?.['ratelimit-limit'], '3', 'RateLimit-Limit readable')
      t.equal(ok.headers?.['ratelimit-remaining'], String(3 - i), 'RateLimit-Remaining readable')
    }
    const over = await call('per-user request 4 of 3', { url: `${userLimited}/api/tasks`, token: tk })
    if (readable(t, over, 429)) {
      errorShape(t, over, 'rate_limited')
      t.match(over.headers?.['retry-after'], /^[1-9]\d*$/, 'Retry-After readable')
      t.equal(over.headers?.['ratelimit-limit'], '3', 'RateLimit-Limit readable')
      t.equal(over.headers?.['ratelimit-remaining'], '0', 'RateLimit-Remaining readable')
      t.match(over.headers?.['ratelimit-reset'], /^\d+$/, 'RateLimit-Reset readable')
    }
    const other = await call('another user, same limit', { url: `${userLimited}/api/tasks`, token: await token('browser-user-limit-2') })
    readable(t, other, 200)
  })

  t.test('load shedding: the preflight is answered, the 503 is readable with Retry-After', async (t) => {
    await eventually(async () => (await fetch(shedding + '/api/tasks')).status === 503, 10_000)
    const preflight = await fetch(shedding + '/api/tasks', { method: 'OPTIONS', headers: { origin: allowedSite, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } })
    await preflight.arrayBuffer()
    t.equal(preflight.status, 204, 'the preflight is not shed')
    t.equal(preflight.headers.get('access-control-allow-origin'), allowedSite)
    const shed = await call('GET while shedding', { url: shedding + '/api/tasks', token: await token(alice) })
    if (readable(t, shed, 503)) {
      errorShape(t, shed, 'overloaded')
      t.equal(shed.headers?.['retry-after'], '1', 'Retry-After readable')
    }
  })

  t.test('the task service stopped → 502, hanging → 504, both readable', async (t) => {
    const tk = await token(alice)
    const url = faulty + '/api/tasks'
    t.teardown(() => proxy.set('pass'))
    readable(t, await call('through the fault proxy, passing', { url, token: tk }), 200)
    await proxy.set('refuse')
    const stopped = await call('task service stopped', { url, token: tk })
    if (readable(t, stopped, 502)) errorShape(t, stopped, 'upstream_unavailable')
    await proxy.set('hang')
    const hanging = await call('task service hanging', { url, token: tk })
    if (readable(t, hanging, 504)) errorShape(t, hanging, 'upstream_timeout')
    await proxy.set('pass')
    readable(t, await call('task service back', { url, token: tk }), 200)
  })

  t.test('a page on an origin that is not allowed is refused: the fetch fails, no Access-Control-Allow-Origin', async (t) => {
    const other = api(await openPage('other-origin', otherSite))
    const withToken = await other.call('GET with a token from an origin not allowed', { url: main + '/api/tasks', token: await token(alice) })
    t.notOk(withToken.ok, 'the browser refused the answer')
    t.match(withToken.error, /^TypeError/)
    const simple = await other.call('GET without a token (no preflight) from an origin not allowed', { url: main + '/healthz' })
    t.notOk(simple.ok, 'the browser refused the answer')
    t.match(simple.error, /^TypeError/)
    // What the browser was sent (it cannot show the page): no ACAO, and a preflight is never a 401.
    const preflight = await fetch(main + '/api/tasks', { method: 'OPTIONS', headers: { origin: otherSite, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } })
    await preflight.arrayBuffer()
    t.equal(preflight.headers.get('access-control-allow-origin'), null, 'preflight: no Access-Control-Allow-Origin')
    t.not(preflight.status, 401, 'preflight: not a 401')
    const get = await fetch(main + '/api/tasks', { headers: { origin: otherSite, authorization: `Bearer ${await token(alice)}` } })
    await get.arrayBuffer()
    t.equal(get.headers.get('access-control-allow-origin'), null, 'request: no Access-Control-Allow-Origin')
  })

  t.test('`npm start`\'s first-run .env lets a page on http://localhost:3000 call the gateway', async (t) => {
    const devPage = api(await openPage('localhost-3000', 'http://localhost:3000'))
    const seen = await devPage.call('GET /api/tasks from http://localhost:3000', { url: firstRun + '/api/tasks', token: await token(alice) })
    readable(t, seen, 200)
    // Both spellings of the dev origin, as a preflight the browser would send.
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:3000']) {
      const preflight = await fetch(firstRun + '/api/tasks', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } })
      await preflight.arrayBuffer()
      t.equal(preflight.status, 204, `preflight from ${origin}: 204`)
      t.equal(preflight.headers.get('access-control-allow-origin'), origin, `preflight from ${origin}: allowed`)
    }
  })
}

type Tap = Parameters<Parameters<typeof t.test>[0]>[0]

/** Serves test/browser/ (the page and its script) on 127.0.0.1; resolves with the origin. */
async function serveStatic (t: Tap | typeof import('tap').default): Promise<string> {
  const types: Record<string, string> = { 'index.html': 'text/html; charset=utf-8', 'page.js': 'text/javascript; charset=utf-8' }
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const file = path === '/' ? 'index.html' : path.slice(1)
    const type = types[file]
    if (req.method !== 'GET' || type === undefined) { res.writeHead(404).end(); return }
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(readFileSync(join(PAGE_DIR, file)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
