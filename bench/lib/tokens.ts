// Key material and tokens for the benchmark, minted with jose before any load starts, so that minting
// never sits on the client path. Claims look like Better Auth's `jwt` plugin output (sub plus the user's
// email and name, iss and aud = the auth server's origin), so that the gateway parses realistic tokens.
import { randomBytes } from 'node:crypto'
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK } from 'jose'

export interface BenchKeys {
  /** HS256 secret as a printable string: the gateway uses its UTF-8 bytes, HAProxy the raw string. */
  hmacSecret: string
  eddsaPrivate: CryptoKey
  eddsaPublicJwk: JWK
  es256Private: CryptoKey
  /** PEM public key for HAProxy's ES256 reference (it loads keys from files at start). */
  es256PublicPem: string
  issuer: string
  audience: string
}

export type TokenAlgorithm = 'HS256' | 'EdDSA' | 'ES256'

export async function createKeys (issuer: string): Promise<BenchKeys> {
  const eddsa = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  const es256 = await generateKeyPair('ES256', { extractable: true })
  const eddsaPublicJwk = { ...(await exportJWK(eddsa.publicKey)), kid: 'bench-ed25519', alg: 'EdDSA', use: 'sig' }
  return {
    // Hex keeps it free of characters that would need quoting in HAProxy's config; 64 bytes ≥ 32 required.
    hmacSecret: randomBytes(32).toString('hex'),
    eddsaPrivate: eddsa.privateKey,
    eddsaPublicJwk,
    es256Private: es256.privateKey,
    es256PublicPem: await exportSPKI(es256.publicKey),
    issuer,
    audience: issuer
  }
}

export function userIdFor (index: number): string {
  return `bench-user-${index}`
}

export async function mintToken (keys: BenchKeys, alg: TokenAlgorithm, userIndex: number): Promise<string> {
  const sub = userIdFor(userIndex)
  const jwt = new SignJWT({ email: `${sub}@example.test`, name: `Bench User ${userIndex}`, emailVerified: true })
    .setSubject(sub)
    .setIssuer(keys.issuer)
    .setAudience(keys.audience)
    .setIssuedAt()
    // Long enough for the longest run; a token that expired mid-run would turn into 401s, counted as errors.
    .setExpirationTime('2h')
  if (alg === 'HS256') return jwt.setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(keys.hmacSecret))
  if (alg === 'EdDSA') return jwt.setProtectedHeader({ alg, kid: 'bench-ed25519', typ: 'JWT' }).sign(keys.eddsaPrivate)
  return jwt.setProtectedHeader({ alg, typ: 'JWT' }).sign(keys.es256Private)
}

/** `count` distinct tokens for users firstUser…firstUser+count-1, minted in parallel batches. */
export async function mintPool (keys: BenchKeys, alg: TokenAlgorithm, count: number, firstUser = 0): Promise<string[]> {
  const tokens: string[] = []
  const batch = 1000
  for (let start = 0; start < count; start += batch) {
    const size = Math.min(batch, count - start)
    const minted = await Promise.all(Array.from({ length: size }, (_, i) => mintToken(keys, alg, firstUser + start + i)))
    tokens.push(...minted)
  }
  return tokens
}
