// Key material and tokens for the benchmark, minted with jose before any load starts, so that minting
// never sits on the client path. Claims look like Better Auth's `jwt` plugin output (sub plus the user's
// email and name, iss and aud = the auth server's origin), so that the gateway parses realistic tokens.
import { randomBytes } from 'node:crypto'
import type { JWK } from 'jose'
import { startJwks, type JwksServer } from '../../support/jwks-server.js'
import { makeKey, signHs, signWith, type TestKey } from '../../support/tokens.js'

export interface BenchKeys {
  /** HS256 secret as a printable string: the gateway uses its UTF-8 bytes, HAProxy the raw string. */
  hmacSecret: string
  eddsa: TestKey
  eddsaPublicJwk: JWK
  es256: TestKey
  /** PEM public key for HAProxy's ES256 reference (it loads keys from files at start). */
  es256PublicPem: string
  issuer: string
  audience: string
}

export type TokenAlgorithm = 'HS256' | 'EdDSA' | 'ES256'

export async function createKeys (issuer: string): Promise<BenchKeys> {
  const eddsa = await makeKey('EdDSA', 'bench-ed25519')
  const es256 = await makeKey('ES256', 'bench-es256')
  return {
    // Hex keeps it free of characters that would need quoting in HAProxy's config; 64 bytes ≥ 32 required.
    hmacSecret: randomBytes(32).toString('hex'),
    eddsa,
    eddsaPublicJwk: eddsa.jwk,
    es256,
    es256PublicPem: es256.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    issuer,
    audience: issuer
  }
}

/** A JWKS server publishing fresh keys' EdDSA public key, the keys' issuer and audience being its origin. */
export async function startKeyServer (): Promise<{ jwks: JwksServer, keys: BenchKeys }> {
  const jwks = await startJwks()
  const keys = await createKeys(jwks.origin)
  jwks.keys = [keys.eddsaPublicJwk]
  return { jwks, keys }
}

/** The gateway settings that make it accept these keys' tokens. */
export function gatewayAuth (keys: BenchKeys, jwksUrl: string): { hmacSecret: string, jwksUrl: string, issuer: string, audience: string } {
  return { hmacSecret: keys.hmacSecret, jwksUrl, issuer: keys.issuer, audience: keys.audience }
}

export function userIdFor (index: number): string {
  return `bench-user-${index}`
}

/** `tokenId` sets a `jti`, so that one user's tokens minted in the same second still differ. */
export async function mintToken (keys: BenchKeys, alg: TokenAlgorithm, userIndex: number, tokenId?: string): Promise<string> {
  const sub = userIdFor(userIndex)
  const now = Math.floor(Date.now() / 1000)
  const claims = {
    sub,
    email: `${sub}@example.test`,
    name: `Bench User ${userIndex}`,
    emailVerified: true,
    iss: keys.issuer,
    aud: keys.audience,
    iat: now,
    // Long enough for the longest run; a token that expired mid-run would turn into 401s, counted as errors.
    exp: now + 2 * 3600,
    ...(tokenId !== undefined ? { jti: tokenId } : {})
  }
  if (alg === 'HS256') return signHs(claims, keys.hmacSecret, { typ: 'JWT' })
  if (alg === 'EdDSA') return signWith(keys.eddsa, claims, { typ: 'JWT' })
  // HAProxy's ES256 reference selects no key by kid: the token carries none.
  return signWith(keys.es256, claims, { typ: 'JWT', kid: undefined })
}

/**
 * `count` distinct tokens for users firstUser…firstUser+count-1, minted in parallel batches. With
 * `users`, the tokens cycle through users 0…users-1 instead, each with a `jti` from firstUser on: distinct
 * tokens (each one a verification-cache miss) for a bounded set of users.
 */
export async function mintPool (keys: BenchKeys, alg: TokenAlgorithm, count: number, firstUser = 0, users?: number): Promise<string[]> {
  const tokens: string[] = []
  const batch = 1000
  for (let start = 0; start < count; start += batch) {
    const size = Math.min(batch, count - start)
    const minted = await Promise.all(Array.from({ length: size }, (_, i) => users === undefined
      ? mintToken(keys, alg, firstUser + start + i)
      : mintToken(keys, alg, (start + i) % users, `t${firstUser + start + i}`)))
    tokens.push(...minted)
  }
  return tokens
}
