// The metrics listener: GET /metrics in the Prometheus text format, on its own port (METRICS_PORT), so the API
// port never serves it and the two can be exposed to different networks. Nothing else is served here.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import type { Registry } from 'prom-client'
import { errorBody } from './errors.js'

export interface MetricsListener {
  /** The bound port (useful with port 0). */
  readonly port: number
  close: () => Promise<void>
}

function json (code: string, message: string): string {
  return JSON.stringify(errorBody(code, message, randomUUID()))
}

/** Starts the listener; rejects when the port cannot be bound (the caller exits with a message). */
export async function listenMetrics (registry: Registry, opts: { port: number, host: string }): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' }).end(json('route_not_found', 'only /metrics is served here'))
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'application/json; charset=utf-8', allow: 'GET, HEAD' }).end(json('method_not_allowed', 'only GET and HEAD are served here'))
      return
    }
    registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : text)
    }, () => {
      res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' }).end(json('internal_error', 'metrics collection failed'))
    })
  })
  // A scrape is one short request; idle keep-alive connections must not hold a shutdown up.
  server.keepAliveTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve() })
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => { resolve() })
      server.closeAllConnections()
    })
  }
}
