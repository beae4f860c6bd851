// `npm run token -- <user-id> [--ttl <seconds>]`: prints a short-lived HS256 development token for curl,
// signed with the same secret the local gateway uses (BETTER_AUTH_SECRET or JWT_SECRET, from the
// environment or .env). Not for production: real tokens come from Better Auth.
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
  const token = await mintDevToken({
    secret,
    subject,
    ttlSeconds,
    issuer: env.JWT_ISSUER || undefined,
    audience: env.JWT_AUDIENCE || undefined
  })
  process.stdout.write(token + '\n')
}

await main(process.argv.slice(2))
