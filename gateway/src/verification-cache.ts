// Bounded LRU of successful verifications, keyed by the exact token string.
//
// - Only successes are stored (the authenticator never calls set() for a failure).
// - An entry expires at the token's `exp` at the latest (checked on every get()).
// - clear() is called whenever the key set changes (JWKS rotation), so a key that disappears from
//   the JWKS stops authenticating cached tokens at the next refresh.
// - Memory bound: maxEntries × (token ≤ maxTokenLength chars + ~200 bytes of bookkeeping).
//   Defaults: 10,000 × (≤ 2,048 + 200) bytes ≈ 22 MB worst case; typical Better Auth tokens are ~500
//   bytes, so ≈ 7 MB. Longer tokens are verified every time, never cached.
// A JavaScript Map iterates in insertion order, which gives LRU by delete-and-reinsert. A hit moves its
// entry to the most-recently-used end only when the entry sits in the older half of that order: one in the
// younger half cannot be evicted before maxEntries / 2 more insertions, and a later hit moves it then. A
// logged-in user's repeated token is then a single Map lookup instead of three (delete and set each hash
// the whole token again), and eviction stays LRU to within half the capacity.

export interface CachedVerification {
  /** The verified identity, frozen: handed out as is on every hit. */
  identity: Readonly<{ sub: string }>
  /** Epoch milliseconds after which the entry must not be used (token exp, at the latest). */
  expiresAtMs: number
  /** True when verified with a JWKS key: such an entry is only served while the key set is usable. */
  viaJwks: boolean
}

/** An entry and where it stands in the map's order (its position stamp: higher is more recent). */
interface Slot {
  entry: CachedVerification
  stamp: number
}

export class VerificationCache {
  private readonly map = new Map<string, Slot>()
  /** Stamp of the most recent insertion or move. */
  private stamp = 0
  private hits = 0
  private misses = 0

  constructor (
    readonly maxEntries: number = 10_000,
    readonly maxTokenLength: number = 2_048,
    private readonly now: () => number = Date.now
  ) {}

  get size (): number {
    return this.map.size
  }

  get (token: string): CachedVerification | undefined {
    const slot = this.map.get(token)
    if (slot === undefined) {
      this.misses++
      return undefined
    }
    if (this.now() >= slot.entry.expiresAtMs) {
      this.map.delete(token)
      this.misses++
      return undefined
    }
    this.hits++
    if (this.stamp - slot.stamp >= this.maxEntries / 2) {
      // In the older half: move to the most-recently-used end.
      this.map.delete(token)
      slot.stamp = ++this.stamp
      this.map.set(token, slot)
    }
    return slot.entry
  }

  set (token: string, entry: CachedVerification): void {
    if (this.maxEntries <= 0 || token.length > this.maxTokenLength) return
    if (this.now() >= entry.expiresAtMs) return
    this.map.delete(token)
    while (this.map.size >= this.maxEntries) {
      const oldest = this.map.keys().next()
      if (oldest.done === true) break
      this.map.delete(oldest.value)
    }
    this.map.set(token, { entry, stamp: ++this.stamp })
  }

  /** Lookups so far and the current size, for the metrics (read at scrape time). */
  stats (): { hits: number, misses: number, size: number, maxEntries: number } {
    return { hits: this.hits, misses: this.misses, size: this.map.size, maxEntries: this.maxEntries }
  }

  clear (): void {
    this.map.clear()
  }
}
