// What the pipeline knows about one request, carried on `request.access` from stage to stage: written by
// authenticate (who: the identity) and authorize (where to: the route), read by the stages after them
// (rewrite headers, forward), the per-user rate limit and the access log. Null until authenticated.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Identity } from './authenticate.js'
import type { AuthorizedRoute } from './authorize.js'

export interface Access {
  readonly identity: Identity
  /** Null until authorization has passed. */
  route: AuthorizedRoute | null
}

/**
 * What a stage calls to let the request go on: with the request, its reply and the value the caller gave the
 * stage. Stages take a module-level function and that value rather than a closure, so a request's way through
 * them makes no new functions.
 */
export type Proceed<C> = (request: FastifyRequest, reply: FastifyReply, context: C) => void

declare module 'fastify' {
  interface FastifyRequest {
    access: Access | null
  }
}
