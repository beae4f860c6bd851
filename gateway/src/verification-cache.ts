// Bounded LRU of successful verifications, keyed by the exact token string.
//
// - Only successes are stored (the authenticator never calls set() for a failure).
// - An entry expires at the token's `exp` at the latest (checked on every get()).
// - clear() is called whenever the key set changes (JWKS rotation), so a key that disappears from
//   the JWKS stops authenticating cached tokens at the next refresh.
// - Memory bound: maxEntries × (token ≤ maxTokenLength chars + ~200 bytes of bookkeeping).
//   Defaults: 10,000 × (≤ 2,048 + 200) bytes ≈ 22 MB worst case; typical Better Auth tokens are ~500
//   bytes, so ≈ 7 MB. Longer tokens are verified every time, never cached.
// - Order and eviction are RecencyMap's (recency-map.ts): a logged-in user's repeated token is one Map
//   lookup, and eviction is LRU to within half the capacity.

import { RecencyMap } from './recency-map.js'

export interface CachedVerification {
  /** The verified identity, frozen: handed out as is on every hit. */
  identity: Readonly<{ sub: string }>
  /** Epoch milliseconds after which the entry must not be used (token exp, at the latest). */
  expiresAtMs: number
  /** True when verified with a JWKS key: such an entry is only served while the key set is usable. */
  viaJwks: boolean
}

export class VerificationCache {
  private readonly entries: RecencyMap<CachedVerification>
  private hits = 0
  private misses = 0

  constructor (
    readonly maxEntries: number = 10_000,
    readonly maxTokenLength: number = 2_048,
    private readonly now: () => number = Date.now
  ) {
    this.entries = new RecencyMap(maxEntries)
  }

  get size (): number {
    return this.entries.size
  }

  get (token: string): CachedVerification | undefined {
    const slot = this.entries.lookup(token)
    if (slot === undefined) {
      this.misses++
      return undefined
    }
    if (this.now() >= slot.value.expiresAtMs) {
      this.entries.delete(token)
      this.misses++
      return undefined
    }
    this.hits++
    this.entries.used(token, slot)
    return slot.value
  }

  set (token: string, entry: CachedVerification): void {
    if (this.maxEntries <= 0 || token.length > this.maxTokenLength) return
    if (this.now() >= entry.expiresAtMs) return
    this.entries.set(token, entry)
  }

  /** Lookups so far and the current size, for the metrics (read at scrape time). */
  stats (): { hits: number, misses: number, size: number, maxEntries: number } {
    return { hits: this.hits, misses: this.misses, size: this.entries.size, maxEntries: this.maxEntries }
  }

  clear (): void {
    this.entries.clear()
  }
}
