// The public API as clients see it (served at GET /openapi.json): every status each operation can answer, the
// request bodies as the task service enforces them, and ONE error schema (components.schemas.Error) for every
// error — the gateway's own and the task service's, which pass through unchanged. The Error schema is the task
// service's (task-service/src/errors.ts); a test holds the two documents to the same one.

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` })
const json = (schema: object): object => ({ 'application/json': { schema } })
const response = (name: string): { $ref: string } => ({ $ref: `#/components/responses/${name}` })

const NO_NUL = '^[^\\u0000]*$'
const Title = { type: 'string', minLength: 1, maxLength: 200, pattern: NO_NUL, description: 'Trimmed before validation; 1..200 Unicode code points.' }
const Description = { anyOf: [{ type: 'string', maxLength: 1000, pattern: NO_NUL }, { type: 'null' }], description: 'Up to 1000 Unicode code points, or null.' }

const schemas = {
  Task: {
    type: 'object',
    required: ['id', 'user_id', 'title', 'description', 'completed', 'created_at', 'updated_at'],
    properties: {
      id: { type: 'string', format: 'uuid' },
      user_id: { type: 'string', description: 'The owner: the token\'s sub.' },
      title: { type: 'string' },
      description: { type: ['string', 'null'] },
      completed: { type: 'boolean' },
      created_at: { type: 'string', format: 'date-time', description: 'RFC 3339, UTC, millisecond precision.' },
      updated_at: { type: 'string', format: 'date-time', description: 'RFC 3339, UTC, millisecond precision.' }
    }
  },
  TaskInput: {
    type: 'object',
    description: 'POST and PUT. PUT replaces the whole record: an omitted description becomes null, an omitted completed false. ' +
      'Unknown fields (user_id, id, …) are refused with 400.',
    required: ['title'],
    additionalProperties: false,
    properties: { title: Title, description: Description, completed: { type: 'boolean' } }
  },
  TaskPatch: {
    type: 'object',
    description: 'PATCH: only the fields given change; at least one. Unknown fields are refused with 400.',
    minProperties: 1,
    additionalProperties: false,
    properties: { title: Title, description: Description, completed: { type: 'boolean' } }
  },
  Readiness: {
    type: 'object',
    required: ['status', 'checks'],
    properties: {
      status: { enum: ['ready', 'not_ready', 'draining'] },
      checks: { type: 'object', additionalProperties: { type: 'string' } }
    }
  },
  // Identical to the task service's Error schema (a test compares the two documents).
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message', 'requestId'],
        properties: {
          code: { type: 'string', pattern: '^[a-z][a-z0-9]*(_[a-z0-9]+)*$', description: 'Stable machine-readable code, lower_snake_case, e.g. task_not_found.' },
          message: { type: 'string', description: 'Human-readable explanation; for validation errors every failing field as "field: why".' },
          requestId: { type: 'string', description: 'The X-Request-Id of this request (also in the response header and every log line).' },
          details: {
            type: 'array',
            items: {
              type: 'object',
              required: ['field', 'message'],
              properties: {
                field: { type: 'string', description: 'The field or query parameter, e.g. "title"; "body" or "query" for the whole part.' },
                message: { type: 'string', description: 'What is wrong with it, e.g. "must be at most 200 characters".' }
              },
              additionalProperties: false
            },
            description: 'Validation errors only: each field that failed and why.'
          }
        },
        additionalProperties: false
      }
    },
    title: 'Error',
    additionalProperties: false,
    description: 'Every error answer of the API.'
  }
}

const requestIdHeader = { description: 'The request id (the client\'s X-Request-Id when well-formed, else a UUID); also error.requestId.', schema: { type: 'string' } }
const retryAfter = { description: 'Seconds to wait before retrying.', schema: { type: 'integer', minimum: 1 } }
const rateLimitHeaders = {
  'RateLimit-Limit': { description: 'Requests allowed per window (of the limit with fewer requests left).', schema: { type: 'integer' } },
  'RateLimit-Remaining': { description: 'Requests left in this window.', schema: { type: 'integer' } },
  'RateLimit-Reset': { description: 'Seconds until the window resets.', schema: { type: 'integer' } }
}

const errorResponse = (description: string, headers: Record<string, object> = {}): object =>
  ({ description, headers: { 'X-Request-Id': requestIdHeader, ...headers }, content: json(ref('Error')) })

const responses = {
  BadRequest: errorResponse(
    'Invalid request. From the gateway: `bad_request` (malformed HTTP, characters not allowed in the query string), ' +
    '`upgrade_not_supported`. From the task service: `validation_error` (`details` names each field: unknown field or ' +
    'query parameter, a value out of range), `invalid_json`, `invalid_cursor`, `user_id_not_allowed` (user_id/userId ' +
    'in the body or query), `invalid_content_length`.'
  ),
  Unauthorized: errorResponse(
    'No valid bearer token: `missing_token`, `malformed_token`, `unsupported_algorithm`, `invalid_signature`, ' +
    '`unknown_key`, `keys_unavailable`, `unsupported_critical_header`, `token_expired`, `token_not_yet_valid`, ' +
    '`invalid_claims`, `invalid_issuer`, `invalid_audience`, `invalid_subject`.',
    { 'WWW-Authenticate': { description: 'Bearer realm="api"[, error="invalid_token", error_description="…"] (RFC 6750).', schema: { type: 'string' } } }
  ),
  Forbidden: errorResponse('`forbidden_user`: the user in the path is not the token\'s sub.'),
  NotFound: errorResponse('`task_not_found` (no such task for this user: also another user\'s task, or an id that is not a UUID), or `not_found` (a path outside the route table).'),
  MethodNotAllowed: errorResponse('`method_not_allowed`: the route does not serve this method.', { Allow: { description: 'The methods the route serves.', schema: { type: 'string' } } }),
  PayloadTooLarge: errorResponse('`payload_too_large`: a Content-Length over the gateway\'s MAX_BODY_BYTES (checked before authentication), or a chunked body growing past it (the connection is closed in both cases), or a body over the task service\'s 64 KiB.'),
  UnsupportedMediaType: errorResponse('`unsupported_media_type`: a body that is not application/json, or whose Content-Type is not a media type at all.'),
  TooManyRequests: errorResponse('`rate_limited`: the per-user limit (requests with a valid token) or the per-address limit (requests without one; once used up, refused before the token is verified) refused the request; `too_many_concurrent_requests`: the caller already has MAX_CONCURRENT_REQUESTS_PER_USER requests in flight (Retry-After: 1).', { 'Retry-After': retryAfter, ...rateLimitHeaders }),
  InternalError: errorResponse('`internal_error`: a bug (logged, never detailed in the body).'),
  BadGateway: errorResponse('`upstream_unavailable`: the task service refused the connection, reset it or answered garbage.'),
  ServiceUnavailable: errorResponse(
    '`overloaded` (load shedding), `shutting_down` (a request on an open connection while the process stops), or from ' +
    'the task service `database_unavailable` / `shutting_down`.',
    { 'Retry-After': retryAfter }
  ),
  GatewayTimeout: errorResponse('`upstream_timeout`: the task service did not answer within UPSTREAM_TIMEOUT_MS.')
}

/** Refusals any /api request can meet, whatever the operation. */
const ALWAYS = { 400: response('BadRequest'), 401: response('Unauthorized'), 413: response('PayloadTooLarge'), 429: response('TooManyRequests'), 500: response('InternalError'), 503: response('ServiceUnavailable') }
/** Once forwarded. */
const FORWARDED = { 502: response('BadGateway'), 504: response('GatewayTimeout') }

const idParam = { name: 'id', in: 'path', required: true, description: 'The task id (a UUID; anything else is 404).', schema: { type: 'string' } }
const userParam = { name: 'user_id', in: 'path', required: true, description: 'Must equal the token\'s sub, else 403.', schema: { type: 'string' } }
const listParams = [
  { name: 'status', in: 'query', schema: { enum: ['all', 'pending', 'completed'], default: 'all' } },
  { name: 'sort', in: 'query', schema: { enum: ['created', 'updated', 'title'], default: 'created' } },
  { name: 'order', in: 'query', schema: { enum: ['asc', 'desc'], default: 'asc' } },
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
  { name: 'cursor', in: 'query', description: 'Opaque; copy it from the Link rel="next" header.', schema: { type: 'string', minLength: 1, maxLength: 2048 } }
]
const body = (name: string): object => ({ required: true, content: json(ref(name)) })
const taskResult = (description: string, headers: Record<string, object> = {}): object =>
  ({ description, headers: { 'X-Request-Id': requestIdHeader, ...headers }, content: json(ref('Task')) })

type Kind = 'collection' | 'item' | 'complete'
const SERVED: Record<Kind, string[]> = { collection: ['get', 'post'], item: ['get', 'put', 'patch', 'delete'], complete: ['patch'] }
const METHODS = ['get', 'put', 'post', 'patch', 'delete']

function operations (kind: Kind, compat: boolean): Record<string, object> {
  const params = compat ? [userParam] : []
  const itemParams = kind === 'collection' ? params : [...params, idParam]
  const r403 = compat ? { 403: response('Forbidden') } : {}
  const r404 = kind === 'collection' && !compat ? {} : { 404: response('NotFound') }
  const common = { ...ALWAYS, ...r403, ...r404, ...FORWARDED }
  const withBody = { ...common, 415: response('UnsupportedMediaType') }
  const prefix = compat ? 'compat' : ''
  const id = (name: string): string => prefix === '' ? name : `${prefix}${name[0]?.toUpperCase() ?? ''}${name.slice(1)}`
  const ops: Record<Kind, Record<string, object>> = {
    collection: {
      get: {
        operationId: id('listTasks'),
        summary: 'List the caller\'s tasks',
        description: 'A bare JSON array. When more tasks follow, `Link: </api/tasks?…&cursor=…>; rel="next"` names the next page. Unknown query parameters → 400.',
        parameters: [...params, ...listParams],
        responses: { 200: { description: 'Tasks', headers: { 'X-Request-Id': requestIdHeader, Link: { description: 'rel="next" when more tasks follow.', schema: { type: 'string' } } }, content: json({ type: 'array', items: ref('Task') }) }, ...common }
      },
      post: {
        operationId: id('createTask'),
        summary: 'Create a task',
        parameters: params,
        requestBody: body('TaskInput'),
        responses: { 201: taskResult('Created', { Location: { description: 'The new task: a path on the gateway\'s origin, or an absolute URL when PUBLIC_URL is set.', schema: { type: 'string' } } }), ...withBody }
      }
    },
    item: {
      get: { operationId: id('getTask'), summary: 'Read a task', parameters: itemParams, responses: { 200: taskResult('The task'), ...common } },
      put: { operationId: id('replaceTask'), summary: 'Replace a task', parameters: itemParams, requestBody: body('TaskInput'), responses: { 200: taskResult('The task'), ...withBody } },
      patch: { operationId: id('updateTask'), summary: 'Change some fields of a task', parameters: itemParams, requestBody: body('TaskPatch'), responses: { 200: taskResult('The task'), ...withBody } },
      delete: { operationId: id('deleteTask'), summary: 'Delete a task', parameters: itemParams, responses: { 204: { description: 'Deleted; no body', headers: { 'X-Request-Id': requestIdHeader } }, ...withBody } }
    },
    complete: {
      patch: { operationId: id('toggleTask'), summary: 'Toggle completed', description: 'Flips completed atomically. Takes no body.', parameters: itemParams, responses: { 200: taskResult('The task'), ...withBody } }
    }
  }
  const out: Record<string, object> = { ...ops[kind] }
  // Methods the route does not serve: after authentication, 405 with Allow (a client learns nothing else).
  for (const m of METHODS) {
    if (SERVED[kind].includes(m)) continue
    out[m] = {
      operationId: id(`${m}${kind[0]?.toUpperCase() ?? ''}${kind.slice(1)}NotAllowed`),
      summary: `${m.toUpperCase()} is not served here`,
      description: `Answered 405 with Allow: ${SERVED[kind].map((s) => s.toUpperCase()).join(', ')}${SERVED[kind].includes('get') ? ', HEAD' : ''}.`,
      parameters: itemParams,
      responses: { 405: response('MethodNotAllowed'), 400: response('BadRequest'), 401: response('Unauthorized'), 413: response('PayloadTooLarge'), 429: response('TooManyRequests'), 503: response('ServiceUnavailable') }
    }
  }
  return out
}

export const openapiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Todo API (gateway)',
    version: '1.0.0',
    description: 'Every /api route requires Authorization: Bearer <JWT>. Every error, the gateway\'s and the task ' +
      'service\'s alike, is {"error":{"code","message","requestId","details"?}} (components.schemas.Error). ' +
      'A path outside the route table is 401 without a valid token, else 404 not_found. HEAD is served wherever GET is. ' +
      'Location and Link are relative to the gateway\'s origin (absolute URLs on PUBLIC_URL when it is set).'
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    schemas,
    responses
  },
  security: [{ bearer: [] }],
  paths: {
    '/api/tasks': operations('collection', false),
    '/api/tasks/{id}': operations('item', false),
    '/api/tasks/{id}/complete': operations('complete', false),
    '/api/{user_id}/tasks': operations('collection', true),
    '/api/{user_id}/tasks/{id}': operations('item', true),
    '/api/{user_id}/tasks/{id}/complete': operations('complete', true),
    '/healthz': {
      get: {
        operationId: 'healthz',
        security: [],
        summary: 'Liveness',
        description: 'Never rate-limited or shed.',
        responses: { 200: { description: 'The process serves', content: json({ type: 'object', required: ['status'], properties: { status: { const: 'ok' } } }) }, 413: response('PayloadTooLarge'), 503: response('ServiceUnavailable') }
      }
    },
    '/readyz': {
      get: {
        operationId: 'readyz',
        security: [],
        summary: 'Readiness',
        description: 'Never rate-limited; shed under load (503 overloaded).',
        responses: {
          200: { description: 'Task service ready and signing keys loaded', content: json(ref('Readiness')) },
          413: response('PayloadTooLarge'),
          503: { description: 'Not ready (`not_ready`: the checks say which part), draining, overloaded or shutting down', headers: { 'Retry-After': retryAfter }, content: json({ oneOf: [ref('Readiness'), ref('Error')] }) }
        }
      }
    },
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        security: [],
        summary: 'This document',
        responses: { 200: { description: 'OpenAPI 3.1', content: json({ type: 'object' }) }, 413: response('PayloadTooLarge'), 429: response('TooManyRequests'), 503: response('ServiceUnavailable') }
      }
    }
  }
}
