// The bare Node proxy floor: the least a Node process can do for the gateway's job. node:http in front,
// an undici Pool behind (Pool.stream, the response body piped straight to the client), a synchronous
// HS256 check (signature, alg, exp, iss), X-User-Id from `sub`, Authorization and client identity headers
// dropped, /api/tasks mapped to /tasks. No logging, no metrics, no request ids, no error bodies beyond a
// status: whatever the gateway spends above this row's CPU per request is the cost of everything else.
// Configured by its environment: PORT, HOST, UPSTREAM_URL, JWT_SECRET, JWT_ISSUER.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { Pool } from 'undici'

const secret = process.env.JWT_SECRET ?? ''
const issuer = process.env.JWT_ISSUER ?? ''
const pool = new Pool(process.env.UPSTREAM_URL ?? 'http://127.0.0.1:1', { connections: 128, pipelining: 1 })
const DROPPED = /^(authorization|x-user-|x-auth-|x-forwarded-user|x-remote-user|remote-user|host|connection|keep-alive)/

/** The token's `sub` when it is a valid HS256 token of this issuer, else undefined. */
function verify (authorization: string | undefined): string | undefined {
  if (authorization === undefined || !authorization.startsWith('Bearer ')) return undefined
  const token = authorization.slice(7)
  const dot1 = token.indexOf('.')
  const dot2 = token.indexOf('.', dot1 + 1)
  if (dot1 < 0 || dot2 < 0) return undefined
  const expected = createHmac('sha256', secret).update(token.slice(0, dot2)).digest()
  const given = Buffer.from(token.slice(dot2 + 1), 'base64url')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, dot1), 'base64url').toString()) as { alg?: unknown }
    const claims = JSON.parse(Buffer.from(token.slice(dot1 + 1, dot2), 'base64url').toString()) as { sub?: unknown, exp?: unknown, iss?: unknown }
    if (header.alg !== 'HS256' || claims.iss !== issuer || typeof claims.sub !== 'string') return undefined
    if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000) return undefined
    return claims.sub
  } catch {
    return undefined
  }
}

const server = createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok')
  const sub = verify(req.headers.authorization)
  if (sub === undefined || !req.url?.startsWith('/api/tasks')) {
    res.statusCode = sub === undefined ? 401 : 404
    return res.end()
  }
  const headers: IncomingHttpHeaders = { 'x-user-id': sub }
  for (const name in req.headers) if (!DROPPED.test(name)) headers[name] = req.headers[name]
  pool.stream({ method: 'GET', path: req.url.slice(4), headers: headers as Record<string, string> }, ({ statusCode, headers: upstreamHeaders }) => {
    res.writeHead(statusCode, upstreamHeaders as Record<string, string>)
    return res
  }, (error) => {
    if (error && !res.headersSent) {
      res.statusCode = 502
      res.end()
    }
  })
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1')

process.on('SIGTERM', () => server.close(() => process.exit(0)))
