// Mints short-lived HS256 development tokens, shaped like the ones the gateway accepts.
import { SignJWT } from 'jose'

export const DEFAULT_TTL_SECONDS = 15 * 60

export interface DevTokenOptions {
  secret: string
  subject: string
  ttlSeconds?: number
  issuer?: string | undefined
  audience?: string | undefined
}

export async function mintDevToken (options: DevTokenOptions): Promise<string> {
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.subject)
    .setIssuedAt()
    .setExpirationTime(`${options.ttlSeconds ?? DEFAULT_TTL_SECONDS}s`)
  if (options.issuer) jwt.setIssuer(options.issuer)
  if (options.audience) jwt.setAudience(options.audience)
  return jwt.sign(new TextEncoder().encode(options.secret))
}
