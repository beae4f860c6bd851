// The trivial fast upstream: answers every request with the same ~200-byte JSON, as fast as Node's `http`
// allows. It stands in for the task service so that the benchmark measures the proxy, not a database.
// Run as its own process (so it does not share an event loop with the load generator); the same script,
// pinned to the proxy's core, is the "Node http hello world" reference row. bench/lib/nginx.ts serves the
// same body when nginx is the upstream.
import { createServer } from 'node:http'
import { UPSTREAM_BODY } from './upstream-body.js'

const port = Number(process.env.PORT ?? 0)
const host = process.env.HOST ?? '127.0.0.1'

const body = Buffer.from(UPSTREAM_BODY)
const contentLength = String(body.length)

const server = createServer((req, res) => {
  // Echo the identity the proxy forwarded, so the harness can check, before measuring, that each proxy
  // really verified the token and set X-User-Id (a benchmark of 401s would be worthless).
  const userId = req.headers['x-user-id']
  if (typeof userId === 'string') res.setHeader('x-upstream-saw-user', userId)
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': contentLength })
  res.end(body)
})
server.keepAliveTimeout = 60_000
server.listen(port, host)

process.on('SIGTERM', () => server.close(() => process.exit(0)))
