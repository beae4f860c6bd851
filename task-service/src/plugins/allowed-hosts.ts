// Host allow-list: the task service answers only the names it is reached by (ALLOWED_HOSTS). A web page that
// rebinds its own DNS name to 127.0.0.1 (or to a cluster address) sends its own name as Host and gets 421,
// so a browser can never be turned into a client of this service. /healthz and /readyz stay open to any Host:
// they reveal nothing, and Kubernetes probes address the pod by IP.
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { HttpError } from '../errors.js'

interface HostPattern {
  labels: string[]
  port: string | undefined
}

/** Splits a Host header (or an ALLOWED_HOSTS entry) into lower-case name and port; undefined when malformed. */
export function splitHost (value: string): { name: string; port: string | undefined } | undefined {
  const v = value.trim().toLowerCase()
  let name: string
  let port: string | undefined
  if (v.startsWith('[')) {
    const end = v.indexOf(']')
    if (end < 0) return undefined
    name = v.slice(0, end + 1)
    const rest = v.slice(end + 1)
    if (rest !== '') {
      if (!/^:\d{1,5}$/.test(rest)) return undefined
      port = rest.slice(1)
    }
  } else {
    const parts = v.split(':')
    if (parts.length > 2) return undefined
    name = parts[0] as string
    port = parts[1]
    if (port !== undefined && !/^\d{1,5}$/.test(port)) return undefined
    // A fully qualified name may end in a dot: "localhost." is "localhost".
    if (name.endsWith('.')) name = name.slice(0, -1)
  }
  if (name === '') return undefined
  return { name, port }
}

function compile (entry: string): HostPattern {
  const split = splitHost(entry) as { name: string; port: string | undefined }
  return { labels: split.name.startsWith('[') ? [split.name] : split.name.split('.'), port: split.port }
}

/** A matcher for the given ALLOWED_HOSTS patterns: an entry without a port allows any port. */
export function hostMatcher (patterns: readonly string[]): (host: string | undefined) => boolean {
  const compiled = patterns.map(compile)
  // Host values repeat (one per client): remember verdicts, bounded.
  const verdicts = new Map<string, boolean>()
  const check = (host: string): boolean => {
    const split = splitHost(host)
    if (split === undefined) return false
    const labels = split.name.startsWith('[') ? [split.name] : split.name.split('.')
    return compiled.some((p) =>
      (p.port === undefined || p.port === split.port) &&
      p.labels.length === labels.length &&
      p.labels.every((l, i) => l === '*' || l === labels[i])
    )
  }
  return (host) => {
    if (host === undefined || host === '') return false
    let verdict = verdicts.get(host)
    if (verdict === undefined) {
      verdict = check(host)
      if (verdicts.size < 1024) verdicts.set(host, verdict)
    }
    return verdict
  }
}

const OPEN_ROUTES = new Set(['/healthz', '/readyz'])

export const allowedHosts = fp<{ patterns: readonly string[] }>(async (app, opts) => {
  const allowed = hostMatcher(opts.patterns)
  app.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    if (OPEN_ROUTES.has(request.routeOptions.url ?? '') || allowed(request.headers.host)) {
      done()
      return
    }
    request.log.warn({ host: String(request.headers.host ?? '').slice(0, 255) }, 'request for a host this service does not serve')
    done(new HttpError(421, 'misdirected_request', 'This service does not answer for that Host (ALLOWED_HOSTS)'))
  })
}, { name: 'allowed-hosts' })
