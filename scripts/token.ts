// `npm run token -- <user-id> [--ttl <seconds>]`: prints a short-lived HS256 development token for curl,
// signed with the same secret the local gateway uses (BETTER_AUTH_SECRET or JWT_SECRET, from the
// environment or .env) and carrying the issuer and audience it checks (derived by the gateway's own
// config code from JWT_ISSUER, JWT_AUDIENCE, BETTER_AUTH_URL). Not for production: real tokens come from
// Better Auth.
import { ConfigError, expectedIssuerAndAudience } from '../gateway/src/config.js'
import { effectiveEnv } from './dev-env.js'
import { DEFAULT_TTL_SECONDS, mintDevToken } from '../support/tokens.js'

const MAX_TTL_SECONDS = 24 * 60 * 60

function fail (message: string): never {
  process.stderr.write(`token: ${message}\n`)
  process.exit(2)
}

async function main (argv: string[]): Promise<void> {
  const args = [...argv]
  let ttlSeconds = DEFAULT_TTL_SECONDS
  const ttlAt = args.indexOf('--ttl')
  if (ttlAt !== -1) {
    ttlSeconds = Number(args[ttlAt + 1])
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS) {
      fail(`--ttl takes whole seconds from 1 to ${MAX_TTL_SECONDS}`)
    }
    args.splice(ttlAt, 2)
  }
  const subject = args[0]
  if (!subject || args.length !== 1) fail('usage: npm run token -- <user-id> [--ttl <seconds>]')
  // The gateway rejects the same subjects (RFC 7519 `sub`, our identity rules): fail early and say why.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (subject.length > 255 || /[\u0000-\u001f\u007f-\u009f]/u.test(subject)) {
    fail('the user id must be 1 to 255 characters with no control characters')
  }
  const env = effectiveEnv()
  const secret = env.JWT_SECRET || env.BETTER_AUTH_SECRET
  if (!secret) fail('no BETTER_AUTH_SECRET (or JWT_SECRET) in the environment or .env: run `npm start` once, or set one')
  let expected: ReturnType<typeof expectedIssuerAndAudience>
  try {
    expected = expectedIssuerAndAudience(env)
  } catch (err) {
    if (err instanceof ConfigError) fail(`the gateway would not start with this configuration: ${err.message}`)
    throw err
  }
  const token = await mintDevToken({
    secret,
    subject,
    ttlSeconds,
    issuer: expected.issuer,
    // JWT_AUDIENCE=* (any audience): the default development audience will do.
    audience: expected.audience?.[0]
  })
  process.stdout.write(token + '\n')
}

await main(process.argv.slice(2))
