// The metrics listener: GET /metrics in the Prometheus text format, on its own port (METRICS_PORT), so the
// service's own port never serves it and the two can face different networks. Nothing else is served here. A
// plain node:http server: no pipeline, no logging, no tracing of scrapes.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'

const JSON_TYPE = 'application/json; charset=utf-8'

function refuse (res, status, headers, code, message) {
  const body = JSON.stringify({ error: { code, message, requestId: randomUUID() } })
  res.writeHead(status, { 'content-type': JSON_TYPE, 'cache-control': 'no-store', ...headers }).end(body)
}

export async function listenMetrics (registry, { port, host, notFoundCode }) {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    if (path !== '/metrics') {
      refuse(res, 404, {}, notFoundCode, 'only /metrics is served here')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      refuse(res, 405, { allow: 'GET, HEAD' }, 'method_not_allowed', `method ${req.method ?? ''} not allowed: only GET and HEAD are served here`)
      return
    }
    registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : text)
    }, () => {
      refuse(res, 500, {}, 'internal_error', 'metrics collection failed')
    })
  })
  // A scrape is one short request; idle keep-alive connections must not hold a shutdown up.
  server.keepAliveTimeout = 5_000
  server.headersTimeout = 10_000
  server.requestTimeout = 10_000
  try {
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => { server.off('error', reject); resolve() })
    })
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new Error(`could not listen for metrics on ${host}:${port} (METRICS_PORT, METRICS_HOST; METRICS_PORT=0 turns metrics off): ${reason}`, { cause: err })
  }
  return {
    port: server.address().port,
    close: () => new Promise((resolve) => {
      server.close(() => { resolve() })
      server.closeAllConnections()
    })
  }
}
