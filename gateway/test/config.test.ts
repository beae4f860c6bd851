// Configuration: defaults, every variable, and fail-closed errors whose message says what to fix.
// Also the process: bad config → one stderr line, exit 1, never listening (and a stray .env is ignored);
// good config → listens, serves, exits cleanly on SIGTERM.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { loadConfig } from '../src/config.js'
import { startGateway } from '../../support/gateway.js'
import { ASSERTION_ENV, SECRET } from '../../support/tokens.js'
import { startUpstream } from './helpers/upstream.js'

t.test('defaults with only JWT_SECRET and JWT_AUDIENCE', async (t) => {
  const c = loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: 'todo-api' })
  t.equal(c.port, 8080)
  t.equal(c.host, '127.0.0.1')
  t.equal(c.taskServiceUrl, 'http://127.0.0.1:3001')
  t.same(c.jwt.hmacAlgorithms, ['HS256'])
  t.same(c.jwt.asymmetricAlgorithms, [])
  t.equal(c.jwt.jwks, undefined)
  t.equal(c.jwt.clockToleranceSec, 5)
  t.same(c.jwt.audience, ['todo-api'])
  t.equal(c.jwt.issuer, undefined)
  t.equal(c.upstreamTimeoutMs, 10_000)
  t.equal(c.forwardAuthorization, false)
  t.same(c.corsOrigins, [])
  t.equal(c.logLevel, 'info')
  t.equal(c.verificationCacheMaxEntries, 10_000)
  t.equal(c.jwt.secret?.toString('utf8'), SECRET, 'the secret is used as its UTF-8 bytes')
})

t.test('BETTER_AUTH_SECRET is an alias for JWT_SECRET (JWT_SECRET wins)', async (t) => {
  t.equal(loadConfig({ ...ASSERTION_ENV, BETTER_AUTH_SECRET: SECRET, JWT_AUDIENCE: 'todo-api' }).jwt.secret?.toString(), SECRET)
  t.equal(loadConfig({ ...ASSERTION_ENV, BETTER_AUTH_SECRET: 'b'.repeat(40), JWT_SECRET: SECRET, JWT_AUDIENCE: 'todo-api' }).jwt.secret?.toString(), SECRET)
})

t.test('BETTER_AUTH_URL derives the JWKS URL, issuer and audience (each overridable)', async (t) => {
  const c = loadConfig({ ...ASSERTION_ENV, BETTER_AUTH_URL: 'https://auth.example.com/' })
  t.equal(c.jwt.jwks?.url, 'https://auth.example.com/api/auth/jwks')
  t.equal(c.jwt.issuer, 'https://auth.example.com')
  t.same(c.jwt.audience, ['https://auth.example.com'])
  t.same(c.jwt.asymmetricAlgorithms, ['EdDSA', 'Ed25519', 'ES256', 'ES512', 'RS256', 'PS256'])
  t.same(c.jwt.hmacAlgorithms, [])
  t.same(c.jwt.jwks, { url: 'https://auth.example.com/api/auth/jwks', refreshMs: 300_000, cooldownMs: 2_000, staleMaxMs: 3_600_000, timeoutMs: 3_000 })
  const o = loadConfig({ ...ASSERTION_ENV, BETTER_AUTH_URL: 'https://auth.example.com', JWKS_URL: 'http://127.0.0.1:9/keys', JWT_ISSUER: 'iss-x', JWT_AUDIENCE: 'a, b' })
  t.equal(o.jwt.jwks?.url, 'http://127.0.0.1:9/keys')
  t.equal(o.jwt.issuer, 'iss-x')
  t.same(o.jwt.audience, ['a', 'b'])
})

t.test('every setting is read', async (t) => {
  const c = loadConfig({
    ...ASSERTION_ENV,
    PORT: '9000',
    HOST: '0.0.0.0',
    TASK_SERVICE_URL: 'http://tasks:3001/',
    JWT_SECRET: SECRET,
    JWKS_URL: 'https://idp.example/jwks',
    JWT_AUDIENCE: 'todo-api',
    JWT_ALGORITHMS: 'HS256,HS512,EdDSA',
    JWT_CLOCK_TOLERANCE: '0',
    CORS_ORIGINS: 'http://localhost:3000, https://app.example.com',
    UPSTREAM_TIMEOUT_MS: '2500',
    FORWARD_AUTHORIZATION: 'true',
    LOG_LEVEL: 'warn',
    JWKS_REFRESH_MS: '60000',
    JWKS_COOLDOWN_MS: '500',
    JWKS_STALE_MAX_MS: '7200000',
    JWKS_TIMEOUT_MS: '1000',
    JWT_CACHE_MAX_ENTRIES: '50',
    UPSTREAM_CONNECTIONS: '16',
    LOG_BUFFER_BYTES: '0'
  })
  t.equal(c.port, 9000)
  t.equal(c.host, '0.0.0.0')
  t.equal(c.taskServiceUrl, 'http://tasks:3001')
  t.same(c.jwt.hmacAlgorithms, ['HS256', 'HS512'])
  t.same(c.jwt.asymmetricAlgorithms, ['EdDSA'])
  t.equal(c.jwt.clockToleranceSec, 0)
  t.same(c.corsOrigins, ['http://localhost:3000', 'https://app.example.com'])
  t.equal(c.upstreamTimeoutMs, 2500)
  t.equal(c.forwardAuthorization, true)
  t.equal(c.logLevel, 'warn')
  t.same(c.jwt.jwks, { url: 'https://idp.example/jwks', refreshMs: 60_000, cooldownMs: 500, staleMaxMs: 7_200_000, timeoutMs: 1_000 })
  t.equal(c.verificationCacheMaxEntries, 50)
  t.equal(c.upstreamConnections, 16)
  t.equal(c.logBufferBytes, 0)
  t.equal(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: 'todo-api' }).logBufferBytes, 4096, 'batched by default')
})

const FAILS: Array<[string, Record<string, string>, RegExp]> = [
  ['no secret and no JWKS', {}, /set JWT_SECRET .*JWKS_URL.*BETTER_AUTH_URL/],
  ['secret shorter than 32 bytes', { JWT_SECRET: 'short' }, /JWT_SECRET is 5 bytes; .*at least 32 bytes/],
  ['short BETTER_AUTH_SECRET', { BETTER_AUTH_SECRET: 'x'.repeat(31) }, /BETTER_AUTH_SECRET is 31 bytes/],
  ['bad PORT', { JWT_SECRET: SECRET, PORT: 'eighty' }, /PORT must be a whole number/],
  ['bad TASK_SERVICE_URL', { JWT_SECRET: SECRET, TASK_SERVICE_URL: 'tasks:3001' }, /TASK_SERVICE_URL must/],
  ['TASK_SERVICE_URL with a path', { JWT_SECRET: SECRET, TASK_SERVICE_URL: 'http://x:1/api' }, /TASK_SERVICE_URL must be an origin/],
  ['bad JWKS_URL', { JWKS_URL: 'ftp://x/keys' }, /JWKS_URL must use http or https/],
  ['alg none', { JWT_SECRET: SECRET, JWT_ALGORITHMS: 'none' }, /JWT_ALGORITHMS contains "none"; allowed values/],
  ['HS alg without a secret', { JWKS_URL: 'https://x/jwks', JWT_ALGORITHMS: 'HS256' }, /lists HS256 but neither JWT_SECRET/],
  ['asymmetric alg without JWKS', { JWT_SECRET: SECRET, JWT_ALGORITHMS: 'EdDSA' }, /lists EdDSA but neither JWKS_URL/],
  ['CORS wildcard', { JWT_SECRET: SECRET, CORS_ORIGINS: '*' }, /CORS_ORIGINS cannot be "\*"/],
  ['CORS origin with a path', { JWT_SECRET: SECRET, CORS_ORIGINS: 'https://a.example/app' }, /bare origins/],
  ['bad FORWARD_AUTHORIZATION', { JWT_SECRET: SECRET, FORWARD_AUTHORIZATION: 'maybe' }, /FORWARD_AUTHORIZATION must be "true" or "false"/],
  ['bad LOG_LEVEL', { JWT_SECRET: SECRET, LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
  ['bad UPSTREAM_TIMEOUT_MS', { JWT_SECRET: SECRET, UPSTREAM_TIMEOUT_MS: '0' }, /UPSTREAM_TIMEOUT_MS must be a whole number between 1/],
  ['bad LOG_BUFFER_BYTES', { JWT_SECRET: SECRET, LOG_BUFFER_BYTES: '4k' }, /LOG_BUFFER_BYTES must be a whole number between 0/],
  ['LOG_BUFFER_BYTES too large', { JWT_SECRET: SECRET, LOG_BUFFER_BYTES: '16384' }, /LOG_BUFFER_BYTES must be a whole number between 0 and 8192/],
  ['bad JWT_CLOCK_TOLERANCE', { JWT_SECRET: SECRET, JWT_CLOCK_TOLERANCE: '-1' }, /JWT_CLOCK_TOLERANCE/]
]
for (const [name, env, message] of FAILS) {
  t.test(`fails closed: ${name}`, async (t) => {
    t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_AUDIENCE: 'todo-api', ...env }), { name: 'ConfigError', message })
  })
}

const NO_AUDIENCE = /No token audience configured: .*Set JWT_AUDIENCE .*e\.g\. JWT_AUDIENCE=todo-api.*BETTER_AUTH_URL.*JWT_AUDIENCE=\* to accept any audience/
const AUDIENCE_FAILS: Array<[string, Record<string, string>, RegExp]> = [
  ['a secret without an audience', { JWT_SECRET: SECRET }, NO_AUDIENCE],
  ['BETTER_AUTH_SECRET without an audience', { BETTER_AUTH_SECRET: SECRET }, NO_AUDIENCE],
  ['a JWKS_URL without an audience', { JWKS_URL: 'https://idp.example/jwks' }, NO_AUDIENCE],
  ['an issuer is not an audience', { JWKS_URL: 'https://idp.example/jwks', JWT_ISSUER: 'https://idp.example' }, NO_AUDIENCE],
  ['an empty audience list', { JWT_SECRET: SECRET, JWT_AUDIENCE: ' , ' }, /JWT_AUDIENCE lists no audience/],
  ['* mixed with audiences', { JWT_SECRET: SECRET, JWT_AUDIENCE: 'todo-api,*' }, /JWT_AUDIENCE is either \* \(any audience\) or a list/]
]
for (const [name, env, message] of AUDIENCE_FAILS) {
  t.test(`token purpose: refuses to start with ${name}`, async (t) => {
    t.throws(() => loadConfig({ ...ASSERTION_ENV, ...env }), { name: 'ConfigError', message })
  })
}

t.test('token purpose: JWT_AUDIENCE=* accepts any audience, with a warning at every start', async (t) => {
  const c = loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: '*' })
  t.equal(c.jwt.audience, undefined)
  for (const [audience, warned] of [['*', true], ['todo-api', false]] as const) {
    const lines: string[] = []
    const { close } = await startGateway({ JWT_AUDIENCE: audience, TASK_SERVICE_URL: 'http://127.0.0.1:9' }, { listen: false, logStream: { write: (l) => { lines.push(l) } } })
    await close()
    const warning = lines.map((l) => JSON.parse(l) as { level: number, msg: string }).find((l) => l.msg.includes('JWT_AUDIENCE=*'))
    if (warned) t.match(warning, { level: 40, msg: /tokens for any audience are accepted/ }, 'warned')
    else t.equal(warning, undefined, 'no warning with an audience')
  }
})

const serverPath = fileURLToPath(new URL('../src/server.ts', import.meta.url))
const tsxLoader = import.meta.resolve('tsx')

function runServer (env: Record<string, string>, cwd: string): ReturnType<typeof spawn> {
  return spawn(process.execPath, ['--import', tsxLoader, serverPath], { env: { PATH: process.env.PATH ?? '', METRICS_PORT: '0', ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
}

t.test('bad config: one clear stderr line, exit 1, never listening — and a stray .env is not read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-env-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  writeFileSync(join(dir, '.env'), `JWT_SECRET=${SECRET}\n`)
  const child = runServer({ PORT: '0' }, dir)
  let stderr = ''
  let stdout = ''
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  child.stdout?.on('data', (c: Buffer) => { stdout += c.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.equal(code, 1)
  const lines = stderr.split('\n').filter((l) => l.trim() !== '' && !l.includes('ExperimentalWarning') && !l.includes('--trace-warnings'))
  t.equal(lines.length, 1, 'exactly one line')
  t.match(lines[0], /^gateway: invalid configuration: .*JWT_SECRET/)
  t.notMatch(stdout, /listening/i)
})

t.test('good config: listens, serves /healthz, exits 0 on SIGTERM', async (t) => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const child = runServer({ ...ASSERTION_ENV, PORT: '0', JWT_SECRET: SECRET, JWT_AUDIENCE: 'todo-api', TASK_SERVICE_URL: up.url, LOG_LEVEL: 'info' }, process.cwd())
  let stdout = ''
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString()
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)
      if (m !== null) resolve(m[1] as string)
    })
    child.on('exit', (code) => { reject(new Error(`exited ${String(code)}`)) })
  })
  const res = await request(url + '/healthz')
  t.equal(res.statusCode, 200)
  await res.body.dump()
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  child.kill('SIGTERM')
  t.equal(await exited, 0)
  t.notMatch(stdout, new RegExp(SECRET), 'the secret is never logged')
})

t.test('PUBLIC_URL: optional; an absolute http(s) origin, normalized; anything else fails closed and the process exits 1', async (t) => {
  t.equal(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: 'todo-api' }).publicUrl, undefined, 'unset by default')
  t.equal(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: 'todo-api', PUBLIC_URL: 'https://API.example.com/' }).publicUrl, 'https://api.example.com')
  t.equal(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: 'todo-api', PUBLIC_URL: 'http://localhost:8080' }).publicUrl, 'http://localhost:8080')
  t.equal(loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: 'todo-api', PUBLIC_URL: 'https://api.example.com:443' }).publicUrl, 'https://api.example.com')
  for (const [value, message] of [
    ['api.example.com', /PUBLIC_URL must be an absolute http\(s\) URL/],
    ['/api', /PUBLIC_URL must be an absolute http\(s\) URL/],
    ['ftp://api.example.com', /PUBLIC_URL must use http or https/],
    ['https://user:pw@api.example.com', /PUBLIC_URL must not contain credentials/],
    ['https://api.example.com/api', /PUBLIC_URL must be the gateway's public origin without a path/],
    ['https://api.example.com/?x=1', /without a path, query or fragment/],
    ['https://api.example.com/#top', /without a path, query or fragment/],
    ['https://api.example.com?', /without a path, query or fragment/]
  ] as Array<[string, RegExp]>) {
    t.throws(() => loadConfig({ ...ASSERTION_ENV, JWT_SECRET: SECRET, JWT_AUDIENCE: 'todo-api', PUBLIC_URL: value }), { name: 'ConfigError', message }, value)
  }
  const dir = mkdtempSync(join(tmpdir(), 'gw-public-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const child = runServer({ ...ASSERTION_ENV, PORT: '0', JWT_SECRET: SECRET, JWT_AUDIENCE: 'todo-api', PUBLIC_URL: 'https://api.example.com/v1' }, dir)
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.equal(code, 1)
  t.match(stderr, /gateway: invalid configuration: PUBLIC_URL must be the gateway's public origin/)
})
