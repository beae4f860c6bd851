// TRUST_PROXY: which peers may tell the gateway who the client is (X-Forwarded-For, -Proto, -Host).
//
// Off by default: the gateway is then the public endpoint and the client address is the socket's;
// client-sent X-Forwarded-* are ignored. Otherwise, Fastify's `trustProxy` semantics
// (@fastify/proxy-addr): walking X-Forwarded-For from the right, each address is taken as a proxy while
// it is trusted; the first one that is not is the client (request.ip). That address is what the
// per-address limits key on, what the access log shows and what the task service receives as
// X-Forwarded-For.
//  - `true`: every peer and every hop is trusted: the client is the left-most X-Forwarded-For entry;
//  - a hop count `n`: the n hops nearest the gateway are trusted, whatever their address (Fastify 5.12
//    refuses a bare number because it cannot check the peer; the gateway implements the classic
//    proxy-addr semantics itself and warns at start that the peer is not checked);
//  - a comma list of addresses, CIDRs and the names `loopback`, `linklocal`, `uniquelocal`: only those
//    peers (and hops) are trusted — the recommended form.
import { isIP } from 'node:net'
import proxyAddr from '@fastify/proxy-addr'
import { ConfigError } from './env-readers.js'

export type TrustProxySetting =
  | { kind: 'off' }
  | { kind: 'all' }
  | { kind: 'hops', hops: number }
  | { kind: 'addresses', addresses: string[] }

export type TrustFunction = (address: string, hop: number) => boolean

const NAMED = new Set(['loopback', 'linklocal', 'uniquelocal'])

export function parseTrustProxy (raw: string | undefined): TrustProxySetting {
  if (raw === undefined) return { kind: 'off' }
  const l = raw.toLowerCase()
  if (l === 'false' || l === '0') return { kind: 'off' }
  if (l === 'true') return { kind: 'all' }
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw)
    if (hops > 32) throw new ConfigError(`TRUST_PROXY hop count must be between 0 and 32, got ${hops}`)
    return { kind: 'hops', hops }
  }
  const addresses = raw.split(',').map((s) => s.trim())
  for (const a of addresses) {
    if (a === '') throw new ConfigError(`TRUST_PROXY has an empty entry in "${raw}"; list addresses/CIDRs separated by single commas`)
    if (NAMED.has(a)) continue
    try {
      // proxy-addr also takes legacy spellings such as "1.2.3" (read as 1.2.0.3): only canonical ones here.
      if (isIP(a.split('/')[0] as string) === 0) throw new Error('not an address')
      proxyAddr.compile(a)
    } catch {
      throw new ConfigError(`TRUST_PROXY must be "true", "false", a hop count, or a comma list of IP addresses/CIDRs (or loopback, linklocal, uniquelocal); "${a}" is none of these`)
    }
  }
  return { kind: 'addresses', addresses }
}

/** The trust function for `setting` (hop 0 is the socket's peer), or undefined when nothing is trusted. */
export function trustFunction (setting: TrustProxySetting): TrustFunction | undefined {
  switch (setting.kind) {
    case 'off': return undefined
    case 'all': return () => true
    case 'hops': { const n = setting.hops; return (_a, hop) => hop < n }
    case 'addresses': return proxyAddr.compile(setting.addresses)
  }
}

/** Fastify's `trustProxy` server option for `setting`. */
export function fastifyTrustProxy (setting: TrustProxySetting): boolean | TrustFunction {
  return trustFunction(setting) ?? false
}
