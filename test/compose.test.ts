// docker-compose.yml, checked statically: which services publish ports, which networks each joins, that every
// setting each service's config loader reads is passed through (and nothing else, but for the pg driver's own
// variables and settings other work is wiring in), how the database password travels, versions, limits and log
// rotation, and how each image is built. The live check — the stack brought up and probed from outside — is
// scripts/compose-test.ts (`npm run compose:test`, run by CI). When a `docker-compose` (v1) or `docker compose`
// CLI is installed, it validates the file too.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { BlockList } from 'node:net'
import { loadConfig as loadGatewayConfig } from '../gateway/src/config.js'
import { LIMIT_DEFAULTS } from '../gateway/src/limits-config.js'
import { loadConfig as loadTaskServiceConfig } from '../task-service/src/config.js'
import { imageNodeOptions } from '../support/workspaces.js'
import { loadCompose } from './helpers/compose-interpolate.js'
import { fullGatewayEnvs, fullTaskServiceEnvs, keysRead, PENDING_KEYS, PG_DRIVER_KEYS } from './helpers/config-keys.js'

const root = new URL('../', import.meta.url)
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8')
const composeText = read('docker-compose.yml')

// The identity-assertion pair as `npm run keys` writes it into .env: one line each, \n escaped.
const assertionPair = generateKeyPairSync('ed25519')
const escaped = (pem: string): string => pem.trim().replace(/\n/g, '\\n')

// What an operator's .env holds (see .env.example); used to resolve the ${...} substitutions. The password
// holds every character that breaks a hand-built connection URL.
const dbPassword = 'p/ss@word#with%25:odd'
const operatorEnv = {
  POSTGRES_PASSWORD: dbPassword,
  GATEWAY_ASSERTION_PRIVATE_KEY: escaped(assertionPair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
  GATEWAY_ASSERTION_PUBLIC_KEY: escaped(assertionPair.publicKey.export({ type: 'spki', format: 'pem' }).toString()),
  BETTER_AUTH_SECRET: 'an-operator-secret-of-at-least-32-bytes!',
  JWT_AUDIENCE: 'https://app.example.com',
  CORS_ORIGINS: 'https://app.example.com'
}

interface Service {
  image?: string
  build?: { context: string, dockerfile: string }
  command?: string[]
  ports?: string[]
  networks?: string[] | Record<string, { ipv4_address?: string } | null>
  environment?: Record<string, string>
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] }
  restart?: string
  volumes?: string[]
  mem_limit?: string
  cpus?: number
  read_only?: boolean
  stop_grace_period?: string
  logging?: { driver: string, options: Record<string, string> }
}
interface Compose {
  services: Record<string, Service>
  networks: Record<string, { internal?: boolean, ipam?: { config?: { subnet?: string, ip_range?: string }[] } }>
  volumes: Record<string, unknown>
}

const compose = loadCompose(composeText, operatorEnv) as Compose
const { services } = compose

function service (name: string): Service {
  const found = services[name]
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`)
  return found
}

t.test('the services of the topology', async (t) => {
  t.same(Object.keys(services).sort(), ['edge', 'gateway', 'postgres', 'redis', 'task-service'])
})

t.test('only the edge proxy publishes a port, so the gateway can scale', async (t) => {
  t.same(service('edge').ports, ['8080:8080'])
  t.same((loadCompose(composeText, { ...operatorEnv, GATEWAY_PORT: '9000' }) as Compose).services.edge?.ports, ['9000:8080'], 'GATEWAY_PORT moves it')
  for (const [name, s] of Object.entries(services)) {
    if (name !== 'edge') t.notOk(s.ports, `${name} publishes nothing`)
    t.notOk((s as Record<string, unknown>).expose, `${name} exposes nothing extra`)
    t.notOk((s as Record<string, unknown>).network_mode, `${name} does not use host networking`)
    t.notOk((s as Record<string, unknown>).container_name, `${name} has no fixed container name (scalable)`)
  }
})

t.test('the edge proxy spreads requests over every gateway replica', async (t) => {
  const edge = service('edge')
  t.match(edge.image, /^haproxy:/)
  t.same(edge.volumes, ['./deploy/compose/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro'])
  const cfg = read('deploy/compose/haproxy.cfg')
  t.match(cfg, /server-template \w+ 1-\d+ gateway:8080\b/, 'one server slot per replica, found through DNS')
  t.match(cfg, /resolvers docker[\s\S]*nameserver \w+ 127\.0\.0\.11:53/, "compose's DNS, re-resolved")
  t.match(cfg, /retry-on conn-failure/, 'only connection failures are retried (no request sent twice)')
  t.notMatch(cfg, /retry-on[^\n]*(empty-response|response-timeout|all-retryable-errors)/)
  t.match(cfg, /option httpchk GET \/healthz/)
  t.match(cfg, /track-sc0 src[\s\S]*EDGE_IP_RATE_MAX/, 'per-client-address request rate at the edge (the flood guard)')
  t.match(cfg, /tcp-request connection track-sc0 src[\s\S]*tcp-request connection reject if conn_limit_on conn_over_limit/, 'per-client-address connection cap')
  t.match(cfg, /acl conn_over_limit sc_conn_cur\(0\),sub\("\$\{EDGE_IP_CONN_MAX\}"\) gt 0/)
  t.match(cfg, /store conn_cur,http_req_rate\(10s\)/)
  // HAProxy expands "${NAME}" from its environment; an unset one would read as empty.
  for (const [, name] of cfg.matchAll(/\$\{(\w+)\}/g)) t.ok(name! in (edge.environment ?? {}), `${name} is set in the edge's environment`)
  t.ok(Number(edge.environment?.EDGE_IP_RATE_MAX) >= 10_000, 'the flood guard is far above one address\'s legitimate rate')
  t.equal(Number(edge.environment?.EDGE_IP_CONN_MAX), LIMIT_DEFAULTS.maxConnectionsPerAddress, 'connection cap: the gateway\'s own default, where client connections end')
  t.match(cfg, /timeout server (\d+)s/)
  t.ok(Number(cfg.match(/timeout server (\d+)s/)![1]) * 1000 > 10_000, "longer than the gateway's upstream timeout")
})

t.test('the edge names the client in X-Forwarded-For, deleting what the client sent', async (t) => {
  const frontend = read('deploy/compose/haproxy.cfg').split(/^frontend api$/m)[1]?.split(/^backend /m)[0] ?? ''
  const lines = frontend.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const at = (line: string): number => lines.indexOf(line)
  t.ok(at('http-request del-header X-Forwarded-For') >= 0, 'a client-sent X-Forwarded-For is deleted')
  t.ok(at('option forwardfor') >= 0, 'the edge appends the address it sees')
  t.notMatch(frontend, /option forwardfor (if-none|except)/, 'always, not only when the client sent none')
  t.ok(at('http-request del-header X-Forwarded-Host') >= 0, 'a client-sent X-Forwarded-Host is deleted')
  t.ok(at('http-request set-header X-Forwarded-Proto https if { ssl_fc }') >= 0 && at('http-request set-header X-Forwarded-Proto http if !{ ssl_fc }') >= 0,
    'X-Forwarded-Proto is the edge\'s own scheme (set-header replaces the client\'s)')
  t.notMatch(read('deploy/compose/haproxy.cfg'), /^backend[\s\S]*(forwardfor|X-Forwarded)/m, 'nothing in the backend adds another')
})

t.test('the gateways trust exactly the edge, at its fixed address on a fixed subnet', async (t) => {
  const ipam = compose.networks.public?.ipam?.config ?? []
  t.equal(ipam.length, 1, 'one IPAM range on the public network')
  const [subnetBase, subnetBits] = (ipam[0]?.subnet ?? '').split('/')
  const [rangeBase, rangeBits] = (ipam[0]?.ip_range ?? '').split('/')
  const subnet = new BlockList()
  subnet.addSubnet(subnetBase!, Number(subnetBits))
  const dynamic = new BlockList()
  dynamic.addSubnet(rangeBase!, Number(rangeBits))
  const edgeNetworks = service('edge').networks as Record<string, { ipv4_address?: string } | null>
  t.same(Object.keys(edgeNetworks), ['public'])
  const edgeAddress = edgeNetworks.public?.ipv4_address ?? ''
  t.ok(subnet.check(edgeAddress), `the edge's address ${edgeAddress} is in the subnet ${ipam[0]?.subnet}`)
  t.ok(subnet.check(rangeBase!) && !dynamic.check(edgeAddress), `and outside the range ${ipam[0]?.ip_range} containers are given addresses from`)
  const config = loadGatewayConfig(service('gateway').environment ?? {})
  t.same(config.trustProxy, { kind: 'addresses', addresses: [edgeAddress] }, 'TRUST_PROXY is the edge\'s address: not the subnet, not a hop count')
  t.equal(config.limits?.server.maxConnectionsPerAddress, LIMIT_DEFAULTS.maxConnectionsPerAddress, 'per-address connection cap on (the trusted edge is exempt)')

  // Moved together from .env (when the subnet is taken on a host).
  const moved = loadCompose(composeText, { ...operatorEnv, EDGE_SUBNET: '10.99.0.0/24', EDGE_DYNAMIC_RANGE: '10.99.0.128/25', EDGE_ADDRESS: '10.99.0.2', TRUST_PROXY: '10.99.0.2' }) as Compose
  t.same(moved.networks.public?.ipam?.config, [{ subnet: '10.99.0.0/24', ip_range: '10.99.0.128/25' }])
  t.equal((moved.services.edge?.networks as Record<string, { ipv4_address?: string }>).public?.ipv4_address, '10.99.0.2')
  t.same(loadGatewayConfig(moved.services.gateway?.environment ?? {}).trustProxy, { kind: 'addresses', addresses: ['10.99.0.2'] })
})

t.test('networks: the private one is internal; only the gateway joins both', async (t) => {
  t.equal(compose.networks.internal?.internal, true, 'internal: true')
  t.equal((compose.networks.internal as { driver_opts?: Record<string, string> }).driver_opts?.['com.docker.network.bridge.inhibit_ipv4'], 'true',
    'no host address on the internal bridge (the host cannot reach it either)')
  t.notOk(compose.networks.public?.internal, 'public network reaches out')
  t.same(service('postgres').networks, ['internal'])
  t.same(service('redis').networks, ['internal'])
  t.same(service('task-service').networks, ['internal'])
  t.same([...(service('gateway').networks as string[])].sort(), ['internal', 'public'])
  t.same(Object.keys(service('edge').networks ?? {}), ['public'])
})

t.test('PostgreSQL 15 (the version CI tests against and the docs name) keeps its data in a named volume', async (t) => {
  const postgres = service('postgres')
  const major = postgres.image?.match(/^postgres:(\d+)-/)?.[1]
  t.equal(major, '15')
  t.match(read('docs/deployment.md'), new RegExp(`PostgreSQL ${major}\\b`), 'docs/deployment.md names it')
  t.match(read('README.md'), new RegExp(`PostgreSQL ${major}\\b`), 'README names it')
  t.match(read('.ci/run'), /docker-compose\.yml/, 'CI compares the machine\'s PostgreSQL with it')
  t.same(postgres.volumes, ['pgdata:/var/lib/postgresql/data'])
  t.ok('pgdata' in compose.volumes, 'pgdata is a named volume')
  t.match(postgres.healthcheck?.test.join(' '), /pg_isready/)
})

t.test('Redis is shared by the gateways and keeps nothing on disk', async (t) => {
  const redis = service('redis')
  t.match(redis.image, /^redis:\d+-/)
  t.same(redis.command?.slice(0, 5), ['redis-server', '--save', '', '--appendonly', 'no'])
  t.notOk(redis.volumes, 'no volume')
  t.equal(service('gateway').environment?.REDIS_URL, 'redis://redis:6379')
  t.ok(service('gateway').depends_on?.redis, 'the gateway waits for it')
})

t.test('every service has a healthcheck, a restart policy, resource limits and rotated logs', async (t) => {
  for (const [name, s] of Object.entries(services)) {
    t.ok(s.healthcheck?.test?.length, `${name} has a healthcheck`)
    t.match(s.restart, /^(always|unless-stopped|on-failure)/, `${name} restarts`)
    t.match(s.mem_limit, /^\d+[mg]$/, `${name} has a memory limit`)
    t.ok(typeof s.cpus === 'number' && s.cpus > 0, `${name} has a CPU limit`)
    t.equal(s.logging?.driver, 'json-file', `${name} logs to json-file`)
    t.match(s.logging?.options, { 'max-size': /^\d+m$/, 'max-file': /^\d+$/ }, `${name} rotates its logs`)
  }
  t.match(service('gateway').healthcheck?.test.join(' '), /127\.0\.0\.1:8080\/healthz/)
  t.match(service('task-service').healthcheck?.test.join(' '), /127\.0\.0\.1:3001\/healthz/)
  t.equal(service('gateway').read_only, true, 'gateway: read-only root file system')
  t.equal(service('task-service').read_only, true, 'task service: read-only root file system')
})

t.test('start order waits on health: postgres → task-service → gateway (and redis) → edge', async (t) => {
  t.same(service('task-service').depends_on, { postgres: { condition: 'service_healthy' } })
  t.same(service('gateway').depends_on, { 'task-service': { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } })
  t.same(service('edge').depends_on, { gateway: { condition: 'service_healthy' } })
})

t.test('the gateway stops within its grace: drain plus its own 10 s close', async (t) => {
  const drainMs = Number(service('gateway').environment?.SHUTDOWN_DRAIN_MS)
  const grace = Number(service('gateway').stop_grace_period?.replace(/s$/, ''))
  t.ok(drainMs > 0, 'drains')
  t.ok(grace * 1000 >= drainMs + 10_000, `stop_grace_period ${grace} s covers ${drainMs} ms + 10 s`)
})

// Every name the loader reads must be passed through; every name passed must be read (or be on the short lists of
// the pg driver's own variables and of settings in flight).
function comparePassThrough (t: Test, name: 'gateway' | 'task-service', read: Set<string>, notApplicable: Record<string, string>): void {
  const passed = new Set(Object.keys(service(name).environment ?? {}))
  for (const key of read) {
    if (key in notApplicable) { t.notOk(passed.has(key), `${key}: ${notApplicable[key]}`); continue }
    t.ok(passed.has(key), `${name}: ${key} (read by its config loader) is passed through`)
  }
  const allowed = new Set([...read, ...PENDING_KEYS[name], ...(name === 'task-service' ? PG_DRIVER_KEYS : [])])
  for (const key of passed) t.ok(allowed.has(key), `${name}: ${key} is a setting the service reads`)
}

t.test("every setting of the gateway's config loader reaches the gateway", async (t) => {
  const read = keysRead(loadGatewayConfig, fullGatewayEnvs)
  t.ok(read.has('RATE_LIMIT_USER_MAX') && read.has('SHUTDOWN_DRAIN_MS') && read.has('JWKS_TIMEOUT_MS'), 'the recording sees the limits and JWKS settings')
  comparePassThrough(t, 'gateway', read, {})
  // A value set in .env arrives as it is.
  const withEnv = loadCompose(composeText, { ...operatorEnv, RATE_LIMIT_USER_MAX: '77', SHUTDOWN_DRAIN_MS: '1234', REDIS_URL: 'redis://cache:6380' }) as Compose
  const config = loadGatewayConfig(withEnv.services.gateway!.environment ?? {})
  t.equal(config.limits?.rateLimit.userMax, 77)
  t.equal(config.limits?.server.shutdownDrainMs, 1234)
  t.equal(config.limits?.rateLimit.redisUrl, 'redis://cache:6380')
})

t.test("every setting of the task service's config loader reaches the task service", async (t) => {
  const read = keysRead(loadTaskServiceConfig, fullTaskServiceEnvs)
  t.ok(read.has('DATABASE_URL') && read.has('LOG_LEVEL'), 'the recording sees its settings')
  comparePassThrough(t, 'task-service', read, { DATA_DIR: 'PGlite only; compose runs PostgreSQL' })
  const withEnv = loadCompose(composeText, { ...operatorEnv, LOG_LEVEL: 'warn' }) as Compose
  t.equal(loadTaskServiceConfig(withEnv.services['task-service']!.environment ?? {}).logLevel, 'warn')
})

t.test('the database password travels as PGPASSWORD, never inside a URL', async (t) => {
  const environment = service('task-service').environment ?? {}
  const config = loadTaskServiceConfig(environment)
  const url = new URL(config.databaseUrl!)
  t.equal(url.hostname, 'postgres')
  t.equal(url.port, '5432')
  t.equal(url.pathname, '/tasks')
  t.equal(url.username, '', 'no user in the URL')
  t.equal(url.password, '', 'no password in the URL')
  t.equal(environment.PGUSER, service('postgres').environment?.POSTGRES_USER)
  t.equal(environment.PGPASSWORD, dbPassword, 'the password arrives unchanged, / @ # % : and all')
  t.equal(service('postgres').environment?.POSTGRES_PASSWORD, dbPassword)
  // What pg makes of it: the URL leaves user and password unset, so its libpq-style defaults (PGUSER,
  // PGPASSWORD) apply. pg-connection-string is the parser pg itself uses.
  const { parse } = await import('pg-connection-string')
  const parsed = parse(config.databaseUrl!)
  t.equal(parsed.host, 'postgres')
  t.equal(parsed.database, 'tasks')
  t.notOk(parsed.user, 'pg falls back to PGUSER')
  t.notOk(parsed.password, 'pg falls back to PGPASSWORD')
  t.notOk('BETTER_AUTH_SECRET' in environment, 'the task service never sees the auth secret')
  t.notOk('POSTGRES_PASSWORD' in (service('gateway').environment ?? {}), 'the gateway never sees the database password')
  t.notOk('PGPASSWORD' in (service('gateway').environment ?? {}))
  t.notOk('GATEWAY_ASSERTION_PRIVATE_KEY' in environment, "the task service never sees the gateway's private key")
  t.equal(config.assertionPublicKeys.length, 1, 'it verifies with the public key from .env')
  t.ok(config.allowedHosts.some((h) => h.startsWith('task-service')), 'and answers the name the gateway calls it by')
})

t.test("the gateway's environment is accepted by its own config and points at the task service", async (t) => {
  const environment = service('gateway').environment ?? {}
  const config = loadGatewayConfig(environment)
  t.equal(config.port, 8080, 'listens on the port the edge proxies to')
  t.equal(config.host, '0.0.0.0')
  t.equal(config.taskServiceUrl.replace(/\/$/, ''), 'http://task-service:3001')
  t.same(config.jwt.audience, ['https://app.example.com'])
  t.equal(config.limits?.rateLimit.ipMax, LIMIT_DEFAULTS.rateLimitIpMax, 'per-address failure budget on, keyed by the client the edge names')
  t.equal(config.limits?.rateLimit.redisUrl, 'redis://redis:6379', 'and shared by the replicas')
  t.notOk('DATABASE_URL' in environment, 'the gateway never sees the database')
  t.match(config.assertionPrivateKey, /^-----BEGIN PRIVATE KEY-----\n/, 'it signs with the private key from .env')
})

t.test('without the identity-assertion key pair in .env, neither service starts', async (t) => {
  const { GATEWAY_ASSERTION_PRIVATE_KEY: _private, GATEWAY_ASSERTION_PUBLIC_KEY: _public, ...noKeys } = operatorEnv
  const bare = loadCompose(composeText, noKeys) as Compose
  t.throws(() => loadGatewayConfig(bare.services.gateway?.environment ?? {}), /GATEWAY_ASSERTION_PRIVATE_KEY is not set: .*npm run keys/)
  t.throws(() => loadTaskServiceConfig(bare.services['task-service']?.environment ?? {}), /GATEWAY_ASSERTION_PUBLIC_KEY is not set: .*npm run keys/)
})

t.test('the gateway refuses to start from compose when no key source is configured', async (t) => {
  const bare = loadCompose(composeText, { POSTGRES_PASSWORD: 'x', GATEWAY_ASSERTION_PRIVATE_KEY: operatorEnv.GATEWAY_ASSERTION_PRIVATE_KEY }) as Compose
  t.throws(() => loadGatewayConfig(bare.services.gateway?.environment ?? {}), /JWT_SECRET|BETTER_AUTH_SECRET|JWKS_URL/)
})

t.test('compose refuses to run without the database password', async (t) => {
  t.throws(() => loadCompose(composeText, {}), /POSTGRES_PASSWORD/)
})

t.test('.env.example names every setting an operator must or may set for compose', async (t) => {
  const example = read('.env.example')
  for (const key of ['BETTER_AUTH_SECRET', 'BETTER_AUTH_URL', 'JWT_AUDIENCE', 'POSTGRES_PASSWORD', 'GATEWAY_PORT', 'GATEWAY_ASSERTION_PRIVATE_KEY',
    'GATEWAY_ASSERTION_PUBLIC_KEY', 'EDGE_IP_RATE_MAX', 'EDGE_IP_CONN_MAX', 'RATE_LIMIT_USER_MAX', 'RATE_LIMIT_IP_MAX', 'CORS_ORIGINS',
    'EDGE_SUBNET', 'EDGE_DYNAMIC_RANGE', 'EDGE_ADDRESS', 'TRUST_PROXY']) {
    t.match(example, new RegExp(`^#? ?${key}=`, 'm'), key)
  }
})

const supportedNode = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node
t.test('one supported Node range: engines, the Dockerfiles and the README agree', async (t) => {
  for (const workspace of ['gateway', 'task-service']) {
    t.equal((JSON.parse(read(`${workspace}/package.json`)) as { engines: { node: string } }).engines.node, supportedNode, `${workspace} engines`)
  }
  const majors = new Set(['gateway', 'task-service'].flatMap((w) => [...read(`${w}/Dockerfile`).matchAll(/^FROM node:(\d+)-/gm)].map((m) => m[1])))
  t.equal(majors.size, 1, 'one Node major in every stage of both Dockerfiles')
  const [major] = [...majors]
  const minimum = supportedNode.match(new RegExp(`\\^(${major}\\.\\d+)\\.\\d+`))
  t.ok(minimum, `the engines range (${supportedNode}) includes the Dockerfiles' Node ${major}`)
  t.match(read('README.md'), new RegExp(`Node\\.js ${minimum?.[1]?.replace('.', '\\.')}`), 'the README states the same minimum')
})

for (const workspace of ['gateway', 'task-service']) {
  t.test(`${workspace}/Dockerfile: multi-stage, lockfile install, production deps, non-root, healthcheck`, async (t) => {
    const dockerfile = read(`${workspace}/Dockerfile`)
    t.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage')
    t.match(dockerfile, /npm ci\b/, 'installs from the lockfile')
    t.match(dockerfile, /npm ci[^\n]*--omit=dev/, 'production dependencies only in the final image')
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
    t.match(finalStage, /^USER (?!root)\w+/m, 'runs as a non-root user')
    t.match(finalStage, /HEALTHCHECK[\s\S]*\/healthz/, 'HEALTHCHECK on /healthz')
    t.notMatch(finalStage, /npm ci(?![^\n]*--omit=dev)/, 'no dev install in the final stage')
    t.notMatch(dockerfile, /NODE_EXTRA_CA_CERTS|ca-certificates\.crt/, 'no CI certificate authority in a production image')
    t.same(service(workspace).build, { context: '.', dockerfile: `${workspace}/Dockerfile` })
  })
}

t.test("the gateway image sizes V8's heap in NODE_OPTIONS, and node honours it there", async (t) => {
  const nodeOptions = imageNodeOptions('gateway')
  t.match(nodeOptions, /(^| )--max-semi-space-size=\d+( |$)/, 'the young generation set in ENV NODE_OPTIONS of gateway/Dockerfile')
  t.match(nodeOptions, /(^| )--max-old-space-size=\d+( |$)/, 'and the old generation')
  const finalStage = read('gateway/Dockerfile').slice(read('gateway/Dockerfile').lastIndexOf('\nFROM '))
  t.ok(finalStage.includes(`ENV NODE_OPTIONS="${nodeOptions}"`), 'set in the runtime image, not only in a build stage')
  // Node refuses a V8 flag that it does not allow in NODE_OPTIONS; an allowed one sizes the heap as on the command line.
  const heapLimit = (args: string[], env: Record<string, string>): number => Number(execFileSync(process.execPath,
    [...args, '-p', "require('node:v8').getHeapStatistics().heap_size_limit"], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' }))
  t.equal(heapLimit([], { NODE_OPTIONS: nodeOptions }), heapLimit(nodeOptions.split(' '), {}), 'the same heap limit as the flags on the command line')
  t.not(heapLimit([], { NODE_OPTIONS: nodeOptions }), heapLimit([], {}), 'which is not the default one')
  // Compose passes through only the gateway's own settings (as the Kubernetes ConfigMap does), so nothing replaces it.
  t.notOk('NODE_OPTIONS' in (service('gateway').environment ?? {}), 'docker-compose.yml does not override it')
})

function composeCli (): string[] | undefined {
  for (const candidate of [['docker-compose'], ['docker', 'compose']]) {
    try {
      execFileSync(candidate[0]!, [...candidate.slice(1), 'version'], { stdio: 'ignore' })
      return candidate
    } catch {
      // not installed
    }
  }
  return undefined
}

const cli = composeCli()
t.test('docker compose config validates the file', { skip: cli ? false : 'no docker-compose CLI installed' }, async (t) => {
  const [command, ...prefix] = cli!
  const output = execFileSync(command!, [...prefix, '-f', 'docker-compose.yml', 'config', '--quiet'], {
    cwd: root,
    env: { ...process.env, ...operatorEnv },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.equal(output.trim(), '', 'valid, nothing to report')
})
