// The "B" engine of the forwarder A/B (bench/forwarder-ab.ts): forwarding with @fastify/reply-from's
// reply.from() on the same undici pool the dispatcher forwarder uses, behind the same gateway pipeline
// (normalization, authentication, route table, header allow-list) and with the same response-header
// rules. Retries are off (a request reaches the task service at most once, a 503 is never retried).
// Used only by the bench; gateway/README.md ("Forwarder") has the figures and the decision.
import replyFrom from '@fastify/reply-from'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { sendError } from '../../gateway/src/errors.js'
import { createUpstreamPool, type Forwarder, type ForwardOptions } from '../../gateway/src/pipeline/forward.js'
import { createReadinessProbe } from '../../gateway/src/pipeline/readiness.js'
import { appendUpstreamHeaders, referenceRules } from '../../gateway/src/pipeline/response-rewrite.js'

export async function registerReplyFromForwarder (app: FastifyInstance, opts: ForwardOptions): Promise<Forwarder> {
  const origin = new URL(opts.origin).origin
  const pool = createUpstreamPool(origin, opts)
  const rules = referenceRules(origin, opts.publicUrl)
  await app.register(replyFrom, {
    base: origin,
    undici: pool,
    retryMethods: [],
    maxRetriesOn503: 0,
    disableRequestLogging: true
  })
  app.addHook('onClose', async () => { await pool.close() })
  return {
    forward (request, reply, route, headers) {
      const prefix = route.publicPrefix
      void reply.from(route.query === '' ? route.upstreamPath : route.upstreamPath + '?' + route.query, {
        retriesCount: 0,
        rewriteRequestHeaders: () => headers,
        rewriteHeaders: (upstream) => {
          const flat: string[] = []
          appendUpstreamHeaders(flat, upstream, prefix, rules, (name) => name !== 'vary' && reply.hasHeader(name))
          const out: Record<string, string | string[]> = {}
          for (let i = 0; i < flat.length; i += 2) {
            const name = flat[i] as string
            const prev = out[name]
            out[name] = prev === undefined ? flat[i + 1] as string : [...(Array.isArray(prev) ? prev : [prev]), flat[i + 1] as string]
          }
          return out
        },
        onError: (r, { error }) => {
          const timeout = (error as { statusCode?: number }).statusCode === 504
          if (timeout) sendError(r as FastifyReply, 504, 'upstream_timeout', 'the task service did not answer in time')
          else sendError(r as FastifyReply, 502, 'upstream_unavailable', 'the task service is unavailable')
        }
      })
    },
    upstreamReady: createReadinessProbe(pool)
  }
}
