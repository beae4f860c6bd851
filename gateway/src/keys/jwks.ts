// A resilient JWKS key store.
//
// - start() loads the set before readiness; after that a timer refreshes it every `refreshMs`
//   (after a failed fetch it retries sooner: every min(refreshMs, 30 s), never faster than `cooldownMs`).
// - An unknown `kid` triggers at most one fetch per `cooldownMs`, shared by every request waiting on it
//   (a flood of random kids costs one fetch per window); a request waits at most `timeoutMs` for it.
// - When the endpoint is down or answers garbage, the last good keys keep working until
//   lastSuccess + refreshMs + staleMaxMs; after that no asymmetric token is accepted until a fetch succeeds.
// - Each key is imported once (a CryptoKey for jose) and bound to its algorithm (see import.ts).
//   Key-set changes bump `generation` and notify listeners (the verification cache flushes).
// Failures never throw out of resolve(): callers get a reason code and answer 401.
import { request } from 'undici'
import type { AsymmetricAlg, JwksSettings } from '../config.js'
import { importJwk, type VerificationKey } from './import.js'

export interface JwksLogger {
  warn: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
}

export interface JwksKeyStoreOptions extends JwksSettings {
  algorithms: readonly AsymmetricAlg[]
  logger?: JwksLogger
  /** Max bytes accepted from the JWKS endpoint. */
  maxBytes?: number
}

export type ResolveResult = VerificationKey | 'unknown_key' | 'keys_unavailable'

const MAX_KEYS = 100
const noopLogger: JwksLogger = { warn () {}, info () {} }

export class JwksKeyStore {
  private byKid = new Map<string, VerificationKey[]>()
  private all: VerificationKey[] = []
  private fingerprint = ''
  private lastSuccessAt = 0
  private lastAttemptAt = Number.NEGATIVE_INFINITY
  private inflight: Promise<boolean> | undefined
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  private readonly listeners: Array<() => void> = []
  private readonly log: JwksLogger
  /** Incremented on every change of the key set. */
  generation = 0
  private fetches = 0
  private failures = 0

  constructor (private readonly opts: JwksKeyStoreOptions) {
    this.log = opts.logger ?? noopLogger
  }

  onChange (listener: () => void): void {
    this.listeners.push(listener)
  }

  /** First load (awaited by callers that want keys before serving), then background refresh. */
  async start (): Promise<boolean> {
    this.stopped = false
    const ok = await this.refresh()
    this.schedule(ok)
    return ok
  }

  stop (): void {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  /** True while a usable (possibly stale, but within bounds) key set is held. */
  isReady (): boolean {
    return this.all.length > 0 && !this.expired()
  }

  /** Counters and state for the metrics (read at scrape time). */
  stats (): { fetches: number, failures: number, keys: number, lastSuccessAt: number } {
    return { fetches: this.fetches, failures: this.failures, keys: this.all.length, lastSuccessAt: this.lastSuccessAt }
  }

  private expired (): boolean {
    return Date.now() > this.lastSuccessAt + this.opts.refreshMs + this.opts.staleMaxMs
  }

  private lookup (kid: string | undefined, alg: string): VerificationKey | undefined {
    if (this.all.length === 0 || this.expired()) return undefined
    if (kid === undefined) {
      let found: VerificationKey | undefined
      for (const k of this.all) {
        if (!k.algs.includes(alg as AsymmetricAlg)) continue
        if (found !== undefined) return undefined // ambiguous without a kid
        found = k
      }
      return found
    }
    const list = this.byKid.get(kid)
    if (list === undefined) return undefined
    for (const k of list) if (k.algs.includes(alg as AsymmetricAlg)) return k
    return undefined
  }

  /**
   * Finds the key for (kid, alg). Synchronous when the key is known; otherwise a Promise that settles
   * after at most one shared refetch (bounded by timeoutMs), or immediately during the cooldown.
   */
  resolve (kid: string | undefined, alg: string): ResolveResult | Promise<ResolveResult> {
    const k = this.lookup(kid, alg)
    if (k !== undefined) return k
    let pending = this.inflight
    if (pending === undefined) {
      if (Date.now() - this.lastAttemptAt < this.opts.cooldownMs) return this.missReason()
      pending = this.refresh()
    }
    return pending.then(() => this.lookup(kid, alg) ?? this.missReason())
  }

  private missReason (): 'unknown_key' | 'keys_unavailable' {
    return this.all.length === 0 || this.expired() ? 'keys_unavailable' : 'unknown_key'
  }

  private schedule (lastOk: boolean): void {
    if (this.stopped) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    const delay = lastOk
      ? this.opts.refreshMs
      : Math.max(this.opts.cooldownMs, Math.min(this.opts.refreshMs, 30_000))
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.refresh().then((ok) => { this.schedule(ok) })
    }, delay)
    this.timer.unref()
  }

  /** One fetch at a time; concurrent callers share it. Resolves true on success, never rejects. */
  refresh (): Promise<boolean> {
    if (this.inflight !== undefined) return this.inflight
    this.lastAttemptAt = Date.now()
    this.fetches++
    const p = this.fetchOnce().then((keys) => {
      this.install(keys)
      return true
    }, (err: unknown) => {
      this.failures++
      this.log.warn({ jwksError: err instanceof Error ? err.message : String(err), staleKeys: this.all.length, usable: this.isReady() }, 'JWKS fetch failed; keeping last good keys')
      return false
    }).finally(() => {
      this.inflight = undefined
    })
    this.inflight = p
    return p
  }

  private install (keys: VerificationKey[]): void {
    this.lastSuccessAt = Date.now()
    const fingerprint = keys.map((k) => k.fingerprint).sort().join('\n')
    if (fingerprint === this.fingerprint) return
    const byKid = new Map<string, VerificationKey[]>()
    for (const k of keys) {
      if (k.kid === undefined) continue
      const list = byKid.get(k.kid)
      if (list === undefined) byKid.set(k.kid, [k])
      else list.push(k)
    }
    this.byKid = byKid
    this.all = keys
    this.fingerprint = fingerprint
    this.generation++
    this.log.info({ jwksKeys: keys.map((k) => `${k.kid ?? '-'}:${k.algs.join('/')}`), generation: this.generation }, 'JWKS key set changed')
    for (const l of this.listeners) l()
  }

  private async fetchOnce (): Promise<VerificationKey[]> {
    const maxBytes = this.opts.maxBytes ?? 512 * 1024
    const signal = AbortSignal.timeout(this.opts.timeoutMs)
    const res = await request(this.opts.url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      headersTimeout: this.opts.timeoutMs,
      bodyTimeout: this.opts.timeoutMs,
      signal
    })
    if (res.statusCode !== 200) {
      res.body.resume()
      throw new Error(`JWKS endpoint answered ${res.statusCode}`)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > maxBytes) {
        res.body.destroy()
        throw new Error(`JWKS larger than ${maxBytes} bytes`)
      }
      chunks.push(chunk as Buffer)
    }
    let doc: unknown
    try {
      doc = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    } catch {
      throw new Error('JWKS is not valid JSON')
    }
    const list = typeof doc === 'object' && doc !== null ? (doc as { keys?: unknown }).keys : undefined
    if (!Array.isArray(list)) throw new Error('JWKS has no "keys" array')
    const keys: VerificationKey[] = []
    for (const jwk of list.slice(0, MAX_KEYS)) {
      const k = await importJwk(jwk, this.opts.algorithms)
      if (typeof k === 'string') {
        this.log.warn({ reason: k }, 'JWKS key skipped')
        continue
      }
      keys.push(k)
    }
    if (keys.length === 0) throw new Error('JWKS holds no usable key')
    return keys
  }
}

/**
 * A warning when keys would be fetched over plain HTTP from a host that is not loopback: anyone on the
 * network path could insert their own keys and mint tokens for any `sub`. Not refused, because compose
 * setups reach Better Auth as http://frontend:3000 inside a private network. Undefined when fine.
 */
export function plaintextJwksWarning (jwksUrl: string): string | undefined {
  let u: URL
  try {
    u = new URL(jwksUrl)
  } catch {
    return undefined
  }
  if (u.protocol !== 'http:') return undefined
  const host = u.hostname.toLowerCase()
  if (host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return undefined
  return `signing keys are fetched over plain HTTP from ${u.host}: anyone on that network path can insert keys and forge tokens. Use https, or keep this hop on a private network you trust.`
}
