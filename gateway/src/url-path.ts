// The path of a request target, without its query: what the access log records and what the rate
// limiter and the drain compare against their fixed paths. (Routing itself normalizes the path in
// pipeline/authorize.ts; this is only the raw text before '?'.)
export function pathWithoutQuery (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
