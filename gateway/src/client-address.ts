// The key a per-address limit counts a client under: its IPv4 address (an IPv4-mapped IPv6 address
// included), or for IPv6 its /64 — one host usually holds a whole /64, so counting single IPv6
// addresses would let it take 2^64 budgets.
import { isIPv4, isIPv6 } from 'node:net'

export function addressKey (address: string): string {
  // No colon: neither IPv6 nor IPv4-mapped, the key is the address as it is (the common IPv4 case, without
  // running isIPv6's pattern on every request).
  if (!address.includes(':')) return address
  if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) return address.slice(7)
  const bare = address.split('%')[0] as string
  if (!isIPv6(bare)) return address
  const [head = '', tail] = bare.split('::')
  const groups = (s: string): string[] => s === '' ? [] : s.split(':').flatMap((g) => isIPv4(g) ? ['0', '0'] : [g])
  const h = groups(head)
  const full = tail === undefined ? h : [...h, ...Array(8 - h.length - groups(tail).length).fill('0'), ...groups(tail)]
  return full.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':') + '::/64'
}
