// What the pipeline knows about one request, carried on `request.access` from stage to stage: written by
// authenticate (who: the identity) and authorize (where to: the route), read by the stages after them
// (rewrite headers, forward), the per-user rate limit and the access log. Null until authenticated.
import type { Identity } from './authenticate.js'
import type { AuthorizedRoute } from './authorize.js'

export interface Access {
  readonly identity: Identity
  /** Null until authorization has passed. */
  route: AuthorizedRoute | null
}

declare module 'fastify' {
  interface FastifyRequest {
    access: Access | null
  }
}
