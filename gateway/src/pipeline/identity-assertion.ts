// The identity assertion: for each forwarded request, a compact JWS the task service verifies before it
// believes X-User-Id (task-service/src/plugins/gateway-assertion.ts holds the other half of the contract):
//   protected header { alg: "EdDSA", typ: "gateway-assertion+jwt" },
//   claims { iss: "gateway", aud: "task-service", sub: <the X-User-Id value>, iat, exp: iat + 300 }.
// One assertion per user is reused until REFRESH_BEFORE_EXPIRY_SEC before it expires, so a request for a user
// seen recently costs a map lookup; signing (≈ one Ed25519 signature) happens once per user per 4 minutes.
// The cache is a bounded LRU (recency-map.ts); concurrent first requests of one user share one signature.
import { importPKCS8, SignJWT, type CryptoKey } from 'jose'
import { RecencyMap } from '../recency-map.js'

export const ASSERTION_HEADER = 'x-gateway-assertion'
export const ASSERTION_TYP = 'gateway-assertion+jwt'
/** exp − iat. The task service refuses assertions valid for longer. */
export const ASSERTION_LIFETIME_SEC = 300
/**
 * A cached assertion is replaced this long before its exp, so every assertion the gateway sends is still valid
 * for at least a minute: margin for the upstream timeout and clock skew between the two hosts.
 */
export const REFRESH_BEFORE_EXPIRY_SEC = 60

interface Entry {
  value: string | Promise<string>
  /** Epoch ms after which this entry is replaced. */
  refreshAtMs: number
}

export class IdentityAssertionSigner {
  private readonly cache: RecencyMap<Entry>

  private constructor (
    private readonly key: CryptoKey,
    readonly maxEntries: number,
    private readonly now: () => number
  ) {
    this.cache = new RecencyMap(maxEntries)
  }

  /** Imports the PKCS#8 PEM once. */
  static async create (privateKeyPem: string, options: { maxEntries?: number, now?: () => number } = {}): Promise<IdentityAssertionSigner> {
    const key = await importPKCS8(privateKeyPem, 'EdDSA')
    return new IdentityAssertionSigner(key, options.maxEntries ?? 10_000, options.now ?? Date.now)
  }

  get size (): number {
    return this.cache.size
  }

  /** The assertion for sub: a string when one is cached (the common case), else a promise of a new one. */
  assertionFor (sub: string): string | Promise<string> {
    const nowMs = this.now()
    const slot = this.cache.lookup(sub)
    if (slot !== undefined && nowMs < slot.value.refreshAtMs) {
      this.cache.used(sub, slot)
      return slot.value.value
    }
    const iat = Math.floor(nowMs / 1000)
    const signing = new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', typ: ASSERTION_TYP })
      .setIssuer('gateway')
      .setAudience('task-service')
      .setSubject(sub)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ASSERTION_LIFETIME_SEC)
      .sign(this.key)
    const fresh: Entry = { value: signing, refreshAtMs: (iat + ASSERTION_LIFETIME_SEC - REFRESH_BEFORE_EXPIRY_SEC) * 1000 }
    this.cache.set(sub, fresh)
    signing.then((token) => {
      if (this.cache.lookup(sub)?.value === fresh) fresh.value = token
    }, () => {
      if (this.cache.lookup(sub)?.value === fresh) this.cache.delete(sub)
    })
    return signing
  }
}
