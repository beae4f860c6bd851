// The trivial fast upstream: answers every request with the same ~200-byte JSON, as fast as Node's `http`
// allows. It stands in for the task service so that the benchmark measures the proxy, not a database.
// Run as its own process (so it does not share an event loop with the load generator); the same script,
// pinned to the proxy's core, is the "Node http hello-world" floor from the issue.
import { createServer } from 'node:http'

const port = Number(process.env.PORT ?? 0)
const host = process.env.HOST ?? '127.0.0.1'

const body = Buffer.from(
  JSON.stringify([
    {
      id: '0b7e6f8a-2f1c-4a57-9a57-6f0f6c1d2e3f',
      user_id: 'bench-user',
      title: 'Benchmark task',
      description: null,
      completed: false,
      created_at: '2026-01-01T00:00:00.000Z',
      updated_at: '2026-01-01T00:00:00.000Z'
    }
  ])
)
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
