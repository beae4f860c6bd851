// Keys and tokens for tests, benchmarks and scripts. Tokens are signed with jose (an independent
// implementation of the gateway's verifier); forged shapes are assembled by hand.
import { createHmac, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto'
import { SignJWT, exportJWK, importPKCS8, type JWK } from 'jose'

export const DEFAULT_TTL_SECONDS = 15 * 60

export const SECRET = 'test-secret-that-is-long-enough-0123456789abcdef'
/** The audience of the local stack: `npm start` writes JWT_AUDIENCE=todo-api into a new .env. */
export const DEV_AUDIENCE = 'todo-api'
/** The audience test gateways check (startGateway's default) and test tokens carry unless told otherwise. */
export const AUDIENCE = DEV_AUDIENCE

export interface TestKey {
  kid: string
  alg: 'EdDSA' | 'Ed25519' | 'ES256' | 'ES512' | 'RS256' | 'PS256'
  privateKey: KeyObject
  publicKey: KeyObject
  jwk: JWK
}

export async function makeKey (alg: TestKey['alg'], kid: string): Promise<TestKey> {
  const pair = alg === 'EdDSA' || alg === 'Ed25519'
    ? generateKeyPairSync('ed25519')
    : alg === 'ES256' || alg === 'ES512'
      ? generateKeyPairSync('ec', { namedCurve: alg === 'ES256' ? 'P-256' : 'P-521' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' }
  return { kid, alg, privateKey: pair.privateKey, publicKey: pair.publicKey, jwk }
}

export interface Claims {
  sub?: unknown
  exp?: unknown
  nbf?: unknown
  iss?: unknown
  aud?: unknown
  [k: string]: unknown
}

const now = (): number => Math.floor(Date.now() / 1000)

function defaults (claims: Claims): Claims {
  return { sub: 'user-1', aud: AUDIENCE, exp: now() + 600, iat: now(), ...claims }
}

type SigningKey = Parameters<SignJWT['sign']>[0]

/** The one minting path: jose signs `claims` (fields set to undefined removed) under `header`. */
export async function sign (claims: Claims, header: Record<string, unknown> & { alg: string }, key: SigningKey): Promise<string> {
  const payload = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined))
  return new SignJWT(payload).setProtectedHeader(header).sign(key)
}

/** Signs with jose. `claims` fields set to undefined are removed. */
export async function signWith (key: TestKey, claims: Claims = {}, header: Record<string, unknown> = {}): Promise<string> {
  return sign(defaults(claims), { alg: key.alg, kid: key.kid, ...header }, key.privateKey)
}

export async function signHs (claims: Claims = {}, secret: string = SECRET, header: Record<string, unknown> = {}): Promise<string> {
  return sign(defaults(claims), { alg: 'HS256', ...header }, new TextEncoder().encode(secret))
}

export function bearer (token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

export const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

/** Hand-assembled HMAC token (for forged headers such as HS256-with-a-public-key). */
export function rawHmac (header: object, claims: Claims, secret: Buffer | string, hash = 'sha256'): string {
  const input = `${b64(header)}.${b64(defaults(claims))}`
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`
}

/** Hand-assembled asymmetric token with an arbitrary header (e.g. an embedded jwk). */
export function rawSigned (header: object, claims: Claims, key: KeyObject, alg: 'EdDSA' | 'ES256' | 'RS256'): string {
  const input = `${b64(header)}.${b64(defaults(claims))}`
  const sig = alg === 'EdDSA'
    ? nodeSign(null, Buffer.from(input), key)
    : alg === 'ES256'
      ? nodeSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
      : nodeSign('sha256', Buffer.from(input), key)
  return `${input}.${sig.toString('base64url')}`
}

export function unsigned (claims: Claims = {}): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(defaults(claims))}.`
}

/**
 * The gateway's identity-assertion key pair (made once per process) for tests, benchmarks and scripts: gateways
 * they start sign X-Gateway-Assertion with the private half, task services they start trust the public half.
 */
export const ASSERTION_KEYS = (() => {
  const pair = generateKeyPairSync('ed25519')
  return {
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    privateKeyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  }
})()

/** The key every gateway configuration needs. */
export const ASSERTION_ENV = { GATEWAY_ASSERTION_PRIVATE_KEY: ASSERTION_KEYS.privateKeyPem }
/** The key every task-service configuration needs: it trusts the gateways these helpers start. */
export const ASSERTION_PUBLIC_ENV = { GATEWAY_ASSERTION_PUBLIC_KEY: ASSERTION_KEYS.publicKeyPem }

export interface AssertionOverrides {
  header?: Record<string, unknown>
  claims?: Record<string, unknown>
  /** Signing key (default: ASSERTION_KEYS' private half). */
  key?: SigningKey
}

// Imported once, as the gateway does (signing with a KeyObject would convert it on every call).
const assertionSigningKey = importPKCS8(ASSERTION_KEYS.privateKeyPem, 'EdDSA')

/** An identity assertion for sub, as the gateway makes it; overrides make the variants the task service refuses. */
export async function signAssertion (sub: string, overrides: AssertionOverrides = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return sign(
    { iss: 'gateway', aud: 'task-service', sub, iat: now, exp: now + 300, ...overrides.claims },
    { alg: 'EdDSA', typ: 'gateway-assertion+jwt', ...overrides.header },
    overrides.key ?? await assertionSigningKey
  )
}

export interface DevTokenOptions {
  secret: string
  subject: string
  ttlSeconds?: number
  issuer?: string | undefined
  /** Default: DEV_AUDIENCE. */
  audience?: string | string[] | undefined
}

/** A short-lived HS256 token shaped like the ones the gateway accepts (`npm run token`, e2e and compose checks). */
export async function mintDevToken (options: DevTokenOptions): Promise<string> {
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.subject)
    .setIssuedAt()
    .setExpirationTime(`${options.ttlSeconds ?? DEFAULT_TTL_SECONDS}s`)
  if (options.issuer) jwt.setIssuer(options.issuer)
  jwt.setAudience(options.audience ?? DEV_AUDIENCE)
  return jwt.sign(new TextEncoder().encode(options.secret))
}
