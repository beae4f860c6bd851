// No Docker engine runs on our machines, so the compose topology is checked statically: which services
// publish ports, which networks each joins, that the private network is internal, that every environment
// variable compose passes is one the service's own config accepts, and that each image is built the way
// production needs. When a `docker-compose` (v1) or `docker compose` CLI is installed, it validates the file too.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { loadConfig as loadGatewayConfig } from '../gateway/src/config.js'
import { loadConfig as loadTaskServiceConfig } from '../task-service/src/config.js'
import { loadCompose } from './helpers/compose-interpolate.js'

const root = new URL('../', import.meta.url)
const composeText = readFileSync(new URL('docker-compose.yml', root), 'utf8')

// What an operator's .env holds (see .env.example); used to resolve the ${...} substitutions.
const operatorEnv = {
  POSTGRES_PASSWORD: 'example-password',
  BETTER_AUTH_SECRET: 'an-operator-secret-of-at-least-32-bytes!',
  CORS_ORIGINS: 'https://app.example.com'
}

interface Service {
  image?: string
  build?: { context: string, dockerfile: string }
  ports?: string[]
  networks?: string[]
  environment?: Record<string, string>
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] }
  restart?: string
  volumes?: string[]
}
interface Compose {
  services: Record<string, Service>
  networks: Record<string, { internal?: boolean }>
  volumes: Record<string, unknown>
}

const compose = loadCompose(composeText, operatorEnv) as Compose
const { services } = compose

function service (name: string): Service {
  const found = services[name]
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`)
  return found
}

t.test('has exactly the three services of the topology', async (t) => {
  t.same(Object.keys(services).sort(), ['gateway', 'postgres', 'task-service'])
})

t.test('only the gateway publishes a port', async (t) => {
  t.same(service('gateway').ports, ['8080:8080'])
  t.notOk(service('task-service').ports, 'task-service publishes nothing')
  t.notOk(service('postgres').ports, 'postgres publishes nothing')
  for (const [name, s] of Object.entries(services)) {
    t.notOk((s as Record<string, unknown>).expose && name !== 'gateway', `${name} exposes nothing extra`)
    t.notOk((s as Record<string, unknown>).network_mode, `${name} does not use host networking`)
  }
})

t.test('the private network is internal and only the gateway also joins the public one', async (t) => {
  t.equal(compose.networks.internal?.internal, true, 'internal: true')
  t.notOk(compose.networks.public?.internal, 'public network reaches out')
  t.same(service('postgres').networks, ['internal'])
  t.same(service('task-service').networks, ['internal'])
  t.same([...(service('gateway').networks ?? [])].sort(), ['internal', 'public'])
})

t.test('postgres 17 keeps its data in a named volume and has a healthcheck', async (t) => {
  const postgres = service('postgres')
  t.match(postgres.image, /^postgres:17/)
  t.same(postgres.volumes, ['pgdata:/var/lib/postgresql/data'])
  t.ok('pgdata' in compose.volumes, 'pgdata is a named volume')
  t.match(postgres.healthcheck?.test.join(' '), /pg_isready/)
})

t.test('every service has a healthcheck and a restart policy', async (t) => {
  for (const [name, s] of Object.entries(services)) {
    t.ok(s.healthcheck?.test?.length, `${name} has a healthcheck`)
    t.match(s.restart, /^(always|unless-stopped|on-failure)/, `${name} restarts`)
  }
  t.match(service('gateway').healthcheck?.test.join(' '), /127\.0\.0\.1:8080\/healthz/)
  t.match(service('task-service').healthcheck?.test.join(' '), /127\.0\.0\.1:3001\/healthz/)
})

t.test('start order waits on health: postgres → task-service → gateway', async (t) => {
  t.same(service('task-service').depends_on, { postgres: { condition: 'service_healthy' } })
  t.same(service('gateway').depends_on, { 'task-service': { condition: 'service_healthy' } })
})

t.test("the task service's environment is accepted by its own config and points at postgres", async (t) => {
  const environment = service('task-service').environment ?? {}
  const config = loadTaskServiceConfig(environment) as unknown as Record<string, unknown>
  t.equal(config.port, 3001)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.databaseUrl, 'postgres://todo:example-password@postgres:5432/tasks')
  t.notOk('BETTER_AUTH_SECRET' in environment, 'the task service never sees the auth secret')
})

t.test("the gateway's environment is accepted by its own config and points at the task service", async (t) => {
  const environment = service('gateway').environment ?? {}
  const config = loadGatewayConfig(environment) as unknown as Record<string, unknown>
  t.equal(config.port, 8080, 'listens on the published container port')
  t.equal(config.host, '0.0.0.0')
  t.equal(String(config.taskServiceUrl).replace(/\/$/, ''), 'http://task-service:3001')
  t.notOk('DATABASE_URL' in environment, 'the gateway never sees the database')
})

t.test('the gateway refuses to start from compose when no key source is configured', async (t) => {
  const bare = loadCompose(composeText, { POSTGRES_PASSWORD: 'x' }) as Compose
  t.throws(() => loadGatewayConfig(bare.services.gateway?.environment ?? {}), /JWT_SECRET|BETTER_AUTH_SECRET|JWKS_URL/)
})

t.test('compose refuses to run without the database password', async (t) => {
  t.throws(() => loadCompose(composeText, {}), /POSTGRES_PASSWORD/)
})

for (const workspace of ['gateway', 'task-service']) {
  t.test(`${workspace}/Dockerfile: multi-stage, lockfile install, production deps, non-root, healthcheck`, async (t) => {
    const dockerfile = readFileSync(new URL(`${workspace}/Dockerfile`, root), 'utf8')
    t.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage')
    t.match(dockerfile, /npm ci\b/, 'installs from the lockfile')
    t.match(dockerfile, /npm ci[^\n]*--omit=dev/, 'production dependencies only in the final image')
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
    t.match(finalStage, /^USER (?!root)\w+/m, 'runs as a non-root user')
    t.match(finalStage, /HEALTHCHECK[\s\S]*\/healthz/, 'HEALTHCHECK on /healthz')
    t.notMatch(finalStage, /npm ci(?![^\n]*--omit=dev)/, 'no dev install in the final stage')
    t.same(service(workspace).build, { context: '.', dockerfile: `${workspace}/Dockerfile` })
  })
}

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
