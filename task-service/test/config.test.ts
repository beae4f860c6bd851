// loadConfig: defaults, every accepted form, and an error message that says what to fix for each bad value.
import t from 'tap'
import { loadConfig, redactDatabaseUrl } from '../src/config.js'

t.test('defaults', async (t) => {
  t.same(loadConfig({}), { port: 3001, host: '127.0.0.1', databaseUrl: undefined, dataDir: './data', logLevel: 'info' })
})

t.test('every variable is read', async (t) => {
  t.same(
    loadConfig({
      PORT: '8081',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgresql://u:p@db:5432/tasks',
      DATA_DIR: '/var/lib/tasks',
      LOG_LEVEL: 'DEBUG'
    }),
    { port: 8081, host: '0.0.0.0', databaseUrl: 'postgresql://u:p@db:5432/tasks', dataDir: '/var/lib/tasks', logLevel: 'debug' }
  )
  t.equal(loadConfig({ PORT: '0' }).port, 0, 'port 0 (ephemeral) is allowed')
  t.equal(loadConfig({ PORT: '65535' }).port, 65535)
})

t.test('empty values count as unset', async (t) => {
  t.same(loadConfig({ PORT: '', DATABASE_URL: '  ', DATA_DIR: '', LOG_LEVEL: '', HOST: '' }), loadConfig({}))
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
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"$/]
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
