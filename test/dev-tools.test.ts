// The local developer tools: the .env the launcher writes on first run, and `npm run token`.
import t from 'tap'
import { execFile } from 'node:child_process'
import { cpSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import { request } from 'undici'
import { DEV_CORS_ORIGINS, ensureAssertionKeys, ensureDevAudience, ensureDevCorsOrigins, ensureDevSecret, effectiveEnv, publicKeyOf, readEnvFile, repoRoot } from '../scripts/dev-env.js'
import { loadConfig as loadGatewayConfig } from '../gateway/src/config.js'
import { loadConfig as loadTaskServiceConfig } from '../task-service/src/config.js'
import { ASSERTION_ENV, mintDevToken } from '../support/tokens.js'
import { startGateway } from '../support/gateway.js'
import { startUpstream } from '../gateway/test/helpers/upstream.js'

const run = promisify(execFile)
const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx')

t.test('ensureDevSecret writes a random secret on first run, mode 0600', async (t) => {
  const path = join(t.testdir(), '.env')
  t.same(ensureDevSecret({}, path), { created: true })
  const secret = readEnvFile(path).BETTER_AUTH_SECRET ?? ''
  t.ok(Buffer.byteLength(secret) >= 32, 'at least 32 bytes (RFC 7518 §3.2)')
  t.equal(statSync(path).mode & 0o777, 0o600)
  t.same(ensureDevSecret({}, path), { created: false }, 'a second run keeps it')
  t.equal(readEnvFile(path).BETTER_AUTH_SECRET, secret)
  const other = join(t.testdir(), 'other.env')
  ensureDevSecret({}, other)
  t.not(readEnvFile(other).BETTER_AUTH_SECRET, secret, 'random per machine')
})

t.test('ensureDevSecret never overwrites an existing .env', async (t) => {
  const dir = t.testdir({ '.env': 'CORS_ORIGINS=http://localhost:5173' })
  const path = join(dir, '.env')
  t.same(ensureDevSecret({}, path), { created: true })
  const content = readFileSync(path, 'utf8')
  t.ok(content.startsWith('CORS_ORIGINS=http://localhost:5173\n'), 'existing lines kept, secret appended')
  t.equal(readEnvFile(path).CORS_ORIGINS, 'http://localhost:5173')
  t.ok(readEnvFile(path).BETTER_AUTH_SECRET)
})

t.test('ensureDevSecret keeps a secret from the environment or from .env', async (t) => {
  const dir = t.testdir({ '.env': 'JWT_SECRET=0123456789abcdef0123456789abcdef\n' })
  const path = join(dir, '.env')
  t.same(ensureDevSecret({}, path), { created: false })
  t.equal(readFileSync(path, 'utf8'), 'JWT_SECRET=0123456789abcdef0123456789abcdef\n')
  const fresh = join(t.testdir(), '.env')
  t.same(ensureDevSecret({ BETTER_AUTH_SECRET: 'from-the-shell-0123456789abcdefghij' }, fresh), { created: false })
})

t.test('ensureDevCorsOrigins allows the usual frontend dev origins, never overwriting a value', async (t) => {
  const path = join(t.testdir(), '.env')
  ensureDevSecret({}, path)
  t.same(ensureDevCorsOrigins({}, path), { created: true })
  t.equal(readEnvFile(path).CORS_ORIGINS, 'http://localhost:3000,http://127.0.0.1:3000')
  t.equal(DEV_CORS_ORIGINS, 'http://localhost:3000,http://127.0.0.1:3000')
  t.ok(readEnvFile(path).BETTER_AUTH_SECRET, 'the secret stays')
  t.same(ensureDevCorsOrigins({}, path), { created: false }, 'a second run keeps it')
  const own = join(t.testdir({ '.env': 'CORS_ORIGINS=http://localhost:5173\n' }), '.env')
  t.same(ensureDevCorsOrigins({}, own), { created: false })
  t.equal(readFileSync(own, 'utf8'), 'CORS_ORIGINS=http://localhost:5173\n', 'an existing value is kept as it is')
  const none = join(t.testdir({ '.env': 'CORS_ORIGINS=\n' }), '.env')
  t.same(ensureDevCorsOrigins({}, none), { created: false }, 'deliberately empty stays empty')
  const fresh = join(t.testdir(), '.env')
  t.same(ensureDevCorsOrigins({ CORS_ORIGINS: 'https://app.example.com' }, fresh), { created: false }, 'set in the shell: nothing written')
})

t.test('ensureAssertionKeys writes a key pair both services accept, once, never overwriting', async (t) => {
  const path = join(t.testdir({ '.env': 'BETTER_AUTH_SECRET=keep-me-0123456789abcdef0123456789\n' }), '.env')
  t.same(ensureAssertionKeys({}, path), { created: true })
  const env = readEnvFile(path)
  t.equal(env.BETTER_AUTH_SECRET, 'keep-me-0123456789abcdef0123456789', 'what was there is kept')
  t.equal(statSync(path).mode & 0o777, 0o600)
  const gateway = loadGatewayConfig({ JWT_SECRET: env.BETTER_AUTH_SECRET, JWT_AUDIENCE: 'todo-api', GATEWAY_ASSERTION_PRIVATE_KEY: env.GATEWAY_ASSERTION_PRIVATE_KEY })
  const taskService = loadTaskServiceConfig({ GATEWAY_ASSERTION_PUBLIC_KEY: env.GATEWAY_ASSERTION_PUBLIC_KEY })
  t.same(taskService.assertionPublicKeys, [publicKeyOf(gateway.assertionPrivateKey)], 'the two halves belong together')
  const before = readFileSync(path, 'utf8')
  t.same(ensureAssertionKeys({}, path), { created: false })
  t.equal(readFileSync(path, 'utf8'), before, 'a second run changes nothing')
  const shell = join(t.testdir(), '.env')
  t.same(ensureAssertionKeys({ GATEWAY_ASSERTION_PRIVATE_KEY: env.GATEWAY_ASSERTION_PRIVATE_KEY }, shell), { created: false }, 'a key from the shell is used')
  const lonely = join(t.testdir({ '.env': `GATEWAY_ASSERTION_PUBLIC_KEY="${env.GATEWAY_ASSERTION_PUBLIC_KEY}"\n` }), '.env')
  t.throws(() => ensureAssertionKeys({}, lonely), /GATEWAY_ASSERTION_PUBLIC_KEY is set but GATEWAY_ASSERTION_PRIVATE_KEY is not/)
})

t.test('npm run keys prints a fresh pair as .env lines', async (t) => {
  const { stdout } = await run(tsx, [join(repoRoot, 'scripts', 'keys.ts')], { cwd: repoRoot })
  const env = (await import('node:util')).parseEnv(stdout) as Record<string, string>
  const gateway = loadGatewayConfig({ JWT_SECRET: 'k'.repeat(32), JWT_AUDIENCE: 'todo-api', GATEWAY_ASSERTION_PRIVATE_KEY: env.GATEWAY_ASSERTION_PRIVATE_KEY })
  t.same(loadTaskServiceConfig({ GATEWAY_ASSERTION_PUBLIC_KEY: env.GATEWAY_ASSERTION_PUBLIC_KEY }).assertionPublicKeys, [publicKeyOf(gateway.assertionPrivateKey)])
})

t.test('the shell environment wins over .env', async (t) => {
  const path = join(t.testdir({ '.env': 'LOG_LEVEL=debug\nPORT=1\n' }), '.env')
  t.same(effectiveEnv({ LOG_LEVEL: 'warn' }, path), { LOG_LEVEL: 'warn', PORT: '1' })
  t.same(readEnvFile(join(t.testdir(), 'missing.env')), {})
})

t.test('mintDevToken makes a short-lived HS256 token the secret verifies', async (t) => {
  const secret = 'a-development-secret-of-32-bytes!!'
  const token = await mintDevToken({ secret, subject: 'alice', ttlSeconds: 60, issuer: 'http://localhost:3000', audience: 'http://localhost:3000' })
  t.same(decodeProtectedHeader(token), { alg: 'HS256', typ: 'JWT' })
  const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), { algorithms: ['HS256'], issuer: 'http://localhost:3000', audience: 'http://localhost:3000' })
  t.equal(payload.sub, 'alice')
  t.equal((payload.exp ?? 0) - (payload.iat ?? 0), 60)
})

t.test('npm run token: prints a token for the user, refuses bad input with a clear message', async (t) => {
  const dir = t.testdir()
  const env = { ...process.env, BETTER_AUTH_SECRET: 'cli-test-secret-0123456789abcdefghij', JWT_SECRET: '', JWT_AUDIENCE: 'todo-api' }
  const script = join(repoRoot, 'scripts', 'token.ts')
  const { stdout } = await run(tsx, [script, 'bob'], { cwd: dir, env })
  t.equal(decodeJwt(stdout.trim()).sub, 'bob')

  for (const [args, message] of [
    [[], /usage/],
    [['a', 'b'], /usage/],
    [['x'.repeat(256)], /1 to 255 characters/],
    [['bad\u0007id'], /control characters/],
    [['bob', '--ttl', '0'], /--ttl/]
  ] as const) {
    const failure = await run(tsx, [script, ...args], { cwd: dir, env }).then(() => null, (error: { code: number, stderr: string }) => error)
    t.equal(failure?.code, 2, `exit 2 for ${JSON.stringify(args)}`)
    t.match(failure?.stderr, message)
  }
})

t.test('npm run token without any secret says how to get one', async (t) => {
  const dir = scriptsWithoutEnvFile(t)
  const env = { ...process.env, BETTER_AUTH_SECRET: '', JWT_SECRET: '' }
  const failure = await run(tsx, [join(dir, 'scripts', 'token.ts'), 'alice'], { cwd: dir, env }).then(() => null, (error: { code: number, stderr: string }) => error)
  t.equal(failure?.code, 2)
  t.match(failure?.stderr, /npm start/)
})

t.test('ensureDevAudience writes JWT_AUDIENCE=todo-api once, never over a configured audience', async (t) => {
  const path = join(t.testdir({ '.env': 'BETTER_AUTH_SECRET=0123456789abcdef0123456789abcdef\n' }), '.env')
  t.same(ensureDevAudience({}, path), { created: true })
  t.equal(readEnvFile(path).JWT_AUDIENCE, 'todo-api')
  t.equal(readEnvFile(path).BETTER_AUTH_SECRET, '0123456789abcdef0123456789abcdef', 'the secret is kept')
  t.same(ensureDevAudience({}, path), { created: false }, 'a second run adds nothing')
  t.equal(readFileSync(path, 'utf8').match(/JWT_AUDIENCE=/g)?.length, 1)
  for (const [env, file] of [
    [{}, 'JWT_AUDIENCE=my-api\n'],
    [{}, 'BETTER_AUTH_URL=http://localhost:3000\n'],
    [{ JWT_AUDIENCE: 'from-the-shell' }, ''],
    [{ BETTER_AUTH_URL: 'http://localhost:3000' }, '']
  ] as const) {
    const p = join(t.testdir({ '.env': file }), '.env')
    t.same(ensureDevAudience(env, p), { created: false }, `kept: ${JSON.stringify(env)} ${JSON.stringify(file)}`)
    t.equal(readFileSync(p, 'utf8'), file, 'file unchanged')
  }
  const fresh = join(t.testdir(), '.env')
  ensureDevSecret({}, fresh)
  ensureDevAudience({}, fresh)
  t.ok(readEnvFile(fresh).BETTER_AUTH_SECRET && readEnvFile(fresh).JWT_AUDIENCE === 'todo-api', 'first run: secret and audience')
  t.equal(statSync(fresh).mode & 0o777, 0o600)
})

t.test('npm run token carries the issuer and audience the gateway checks (shell or .env)', async (t) => {
  const dir = scriptsWithoutEnvFile(t)
  const secret = 'cli-test-secret-0123456789abcdefghij'
  // Unset, not empty: an empty variable in the shell would win over .env.
  const base: Record<string, string | undefined> = { ...process.env, BETTER_AUTH_SECRET: secret, JWT_SECRET: '' }
  for (const name of ['JWT_ISSUER', 'JWT_AUDIENCE', 'BETTER_AUTH_URL']) delete base[name]
  const mint = async (env: Record<string, string | undefined>, envFile?: string): Promise<string> => {
    if (envFile !== undefined) writeFileSync(join(dir, '.env'), envFile)
    const { stdout } = await run(tsx, [join(dir, 'scripts', 'token.ts'), 'carol'], { cwd: dir, env: { ...base, ...env } })
    rmSync(join(dir, '.env'), { force: true })
    return stdout.trim()
  }
  // Each case: the configuration, and the gateway built from it accepts the token.
  for (const [what, env, envFile] of [
    ['BETTER_AUTH_URL in the shell', { BETTER_AUTH_URL: 'https://auth.example.com/' }, undefined],
    ['BETTER_AUTH_URL in .env', {}, 'BETTER_AUTH_URL=https://auth.example.com\n'],
    ['JWT_ISSUER and JWT_AUDIENCE in the shell', { JWT_ISSUER: 'https://issuer.example', JWT_AUDIENCE: 'todo-api, other' }, undefined],
    ['JWT_AUDIENCE in .env, as npm start writes it', {}, 'JWT_AUDIENCE=todo-api\n'],
    ['JWT_AUDIENCE over BETTER_AUTH_URL', { BETTER_AUTH_URL: 'https://auth.example.com', JWT_AUDIENCE: 'todo-api' }, undefined],
    ['JWT_AUDIENCE=* (any audience)', { JWT_AUDIENCE: '*' }, undefined]
  ] as const) {
    const token = await mint(env, envFile)
    const gatewayEnv: Record<string, string> = { JWT_SECRET: secret, ...(envFile === undefined ? {} : Object.fromEntries(envFile.trim().split('\n').map((l) => l.split('=') as [string, string]))), ...env }
    const config = loadGatewayConfig({ ...ASSERTION_ENV, ...gatewayEnv })
    const claims = decodeJwt(token)
    t.equal(claims.iss, config.jwt.issuer, `${what}: iss`)
    if (config.jwt.audience !== undefined) t.ok(config.jwt.audience.includes(claims.aud as string), `${what}: aud ${String(claims.aud)}`)
    const up = await startUpstream()
    const gw = await startGateway(gatewayEnv)
    const res = await request(`${gw.url}/api/tasks`, { headers: { authorization: `Bearer ${token}` } })
    await res.body.dump()
    await gw.close()
    await up.close()
    t.equal(res.statusCode === 401 ? 'refused' : 'accepted', 'accepted', `${what}: the gateway accepts it`)
  }
  const claims = decodeJwt(await mint({ BETTER_AUTH_URL: 'https://auth.example.com/' }))
  t.same(Object.keys(claims).sort(), ['aud', 'exp', 'iat', 'iss', 'sub'])
  t.match(claims, { sub: 'carol', iss: 'https://auth.example.com', aud: 'https://auth.example.com' }, 'as Better Auth signs them: iss and aud = its origin')
  const failure = await run(tsx, [join(dir, 'scripts', 'token.ts'), 'carol'], { cwd: dir, env: base }).then(() => null, (error: { code: number, stderr: string }) => error)
  t.equal(failure?.code, 2, 'no audience configured: the gateway would not start, and the token script says so')
  t.match(failure?.stderr, /gateway would not start .*JWT_AUDIENCE/)
})

/** A copy of the scripts (and the gateway config code they use) whose .env does not exist, so the repository's own .env is not read. */
function scriptsWithoutEnvFile (t: Parameters<Parameters<typeof import('tap').default.test>[0]>[0]): string {
  const dir = t.testdir({ scripts: {}, support: {} })
  for (const file of ['scripts/token.ts', 'scripts/dev-env.ts', 'support/tokens.ts']) {
    writeFileSync(join(dir, file), readFileSync(join(repoRoot, file)))
  }
  cpSync(join(repoRoot, 'gateway', 'src'), join(dir, 'gateway', 'src'), { recursive: true })
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
  return dir
}
