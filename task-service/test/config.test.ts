// loadConfig: defaults, every accepted form, and an error message that says what to fix for each bad value.
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { DEFAULT_ALLOWED_HOSTS, loadConfig as load, loadTracingConfig, redactDatabaseUrl } from '../src/config.js'
import { ASSERTION_KEYS } from '../../support/tokens.js'

const PUBLIC = ASSERTION_KEYS.publicKeyPem
/** loadConfig with the required public key (tests of the key itself call `load`). */
const loadConfig = (env: NodeJS.ProcessEnv): ReturnType<typeof load> => load({ GATEWAY_ASSERTION_PUBLIC_KEY: PUBLIC, ...env })
const keyed = { assertionPublicKeys: [PUBLIC], allowedHosts: [...DEFAULT_ALLOWED_HOSTS] }

t.test('defaults', async (t) => {
  t.same(loadConfig({}), { port: 3001, host: '127.0.0.1', databaseUrl: undefined, dataDir: './data', logLevel: 'info', metricsPort: 9465, metricsHost: '127.0.0.1', ...keyed })
})

t.test('every variable is read', async (t) => {
  t.same(
    loadConfig({
      PORT: '8081',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgresql://u:p@db:5432/tasks',
      DATA_DIR: '/var/lib/tasks',
      LOG_LEVEL: 'DEBUG',
      METRICS_PORT: '9100',
      METRICS_HOST: '0.0.0.0'
    }),
    { port: 8081, host: '0.0.0.0', databaseUrl: 'postgresql://u:p@db:5432/tasks', dataDir: '/var/lib/tasks', logLevel: 'debug', metricsPort: 9100, metricsHost: '0.0.0.0', ...keyed }
  )
  t.equal(loadConfig({ METRICS_PORT: '0' }).metricsPort, 0, 'METRICS_PORT=0 turns metrics off')
  t.equal(loadConfig({ PORT: '0' }).port, 0, 'port 0 (ephemeral) is allowed')
  t.equal(loadConfig({ PORT: '65535' }).port, 65535)
})

t.test('empty values count as unset', async (t) => {
  t.same(loadConfig({ PORT: '', DATABASE_URL: '  ', DATA_DIR: '', LOG_LEVEL: '', HOST: '', METRICS_PORT: '', METRICS_HOST: ' ' }), loadConfig({}))
})

t.test('bad values → an Error naming the variable and what it should be', async (t) => {
  const cases: [NodeJS.ProcessEnv, RegExp][] = [
    [{ PORT: 'eighty' }, /^PORT must be an integer between 0 and 65535, got "eighty"$/],
    [{ PORT: '65536' }, /^PORT must be an integer/],
    [{ PORT: '-1' }, /^PORT must be an integer/],
    [{ PORT: '30.5' }, /^PORT must be an integer/],
    [{ HOST: 'local host' }, /^HOST must be a host name or IP address/],
    [{ DATABASE_URL: 'not a url' }, /^DATABASE_URL must be a URL such as postgres:\/\/user:password@host:5432\/dbname/],
    [{ DATABASE_URL: 'mysql://db/tasks' }, /^DATABASE_URL must use the postgres:\/\/ or postgresql:\/\/ scheme, got "mysql:"$/],
    [{ DATABASE_URL: 'postgres:///tasks' }, /^DATABASE_URL must name a host/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"$/],
    [{ METRICS_PORT: 'ninety' }, /^METRICS_PORT must be an integer between 0 and 65535, got "ninety"$/],
    [{ METRICS_PORT: '70000' }, /^METRICS_PORT must be an integer/],
    [{ PORT: '9000', METRICS_PORT: '9000' }, /^METRICS_PORT must differ from PORT \(9000\)/],
    [{ METRICS_HOST: 'metrics host' }, /^METRICS_HOST must be a host name or IP address/]
  ]
  for (const [env, message] of cases) t.throws(() => loadConfig(env), message, JSON.stringify(env))
})

t.test('a bad DATABASE_URL error never echoes the value (it may hold a password)', async (t) => {
  let message = ''
  try {
    loadConfig({ DATABASE_URL: 'hunter2 is my password' })
  } catch (err) {
    message = (err as Error).message
  }
  t.match(message, /^DATABASE_URL must be a URL/)
  t.notMatch(message, /hunter2/)
})

t.test('redactDatabaseUrl hides the password and options', async (t) => {
  t.equal(redactDatabaseUrl('postgres://app:s3cret@db:5432/tasks?sslmode=require'), 'postgres://app:***@db:5432/tasks')
  t.equal(redactDatabaseUrl('postgres://app@db/tasks'), 'postgres://app@db/tasks')
  t.equal(redactDatabaseUrl('::'), '(unparseable DATABASE_URL)')
})

t.test('tracing: on only with an OTLP endpoint, which must be an http(s) URL', async (t) => {
  t.same(loadTracingConfig({}), { otlpEndpoint: undefined, serviceName: 'task-service' })
  t.same(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SERVICE_NAME: 'tasks-eu' }), { otlpEndpoint: 'http://collector:4318', serviceName: 'tasks-eu' })
  t.equal(loadTracingConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://c/v1/traces' }).otlpEndpoint, 'https://c/v1/traces')
  t.equal(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }).otlpEndpoint, undefined, 'OTEL_SDK_DISABLED wins')
  t.throws(() => loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), /^OTEL_EXPORTER_OTLP_ENDPOINT must use http or https/)
  t.throws(() => loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }), /^OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL/)
  t.throws(() => loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), /^OTEL_EXPORTER_OTLP_PROTOCOL must be http\/protobuf/)
  t.equal(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }).otlpEndpoint, 'http://c:4318')
})

t.test('GATEWAY_ASSERTION_PUBLIC_KEY: required; Ed25519 SPKI PEM; real newlines or \\n escapes; two during a rotation', async (t) => {
  t.throws(() => load({}), /^GATEWAY_ASSERTION_PUBLIC_KEY is not set: .*`npm run keys`.*openssl genpkey -algorithm ed25519/)
  t.same(load({ GATEWAY_ASSERTION_PUBLIC_KEY: PUBLIC.replace(/\n/g, '\\n') }).assertionPublicKeys, [PUBLIC], 'docker env file form')
  t.same(load({ GATEWAY_ASSERTION_PUBLIC_KEY: PUBLIC.replace(/\n/g, '\r\n') }).assertionPublicKeys, [PUBLIC], 'CRLF')
  const next = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString()
  t.same(load({ GATEWAY_ASSERTION_PUBLIC_KEY: PUBLIC + next }).assertionPublicKeys, [PUBLIC, next], 'two blocks')
  t.same(load({ GATEWAY_ASSERTION_PUBLIC_KEY: (PUBLIC + '\n' + next).replace(/\n/g, '\\n') }).assertionPublicKeys, [PUBLIC, next], 'two blocks, escaped')
  const third = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString()
  t.throws(() => load({ GATEWAY_ASSERTION_PUBLIC_KEY: PUBLIC + next + third }), /holds 3 keys; it takes one, or two/)
  t.throws(() => load({ GATEWAY_ASSERTION_PUBLIC_KEY: ASSERTION_KEYS.privateKeyPem }), /must be a public key .*got a PRIVATE KEY; the private key belongs to the gateway only/)
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  t.throws(() => load({ GATEWAY_ASSERTION_PUBLIC_KEY: rsa }), /must be an Ed25519 key, got rsa/)
  t.throws(() => load({ GATEWAY_ASSERTION_PUBLIC_KEY: 'ssh-ed25519 AAAA' }), /must hold PEM text/)
  t.throws(() => load({ GATEWAY_ASSERTION_PUBLIC_KEY: PUBLIC + 'trailing' }), /must hold PEM text/)
  t.throws(() => load({ GATEWAY_ASSERTION_PUBLIC_KEY: PUBLIC.replace(/\n[A-Za-z0-9+/]{6}/, '\nAAAAAA') }), /GATEWAY_ASSERTION_PUBLIC_KEY/)
})

t.test('ALLOWED_HOSTS: defaults fit npm start, compose and Kubernetes; entries are validated', async (t) => {
  t.same(loadConfig({}).allowedHosts, ['127.0.0.1', 'localhost', '[::1]', 'task-service', 'task-service.*', 'task-service.*.svc', 'task-service.*.svc.cluster.local'])
  t.same(loadConfig({ ALLOWED_HOSTS: 'Tasks.Internal:8443, 10.0.0.7 ,[fd00::1]:3001' }).allowedHosts, ['tasks.internal:8443', '10.0.0.7', '[fd00::1]:3001'])
  for (const bad of ['http://x', 'a b', 'x:99999', 'x/y', ',']) t.throws(() => loadConfig({ ALLOWED_HOSTS: bad }), /^ALLOWED_HOSTS/, bad)
})
