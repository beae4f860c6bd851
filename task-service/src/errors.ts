// One error shape for every non-2xx answer, the same as the gateway's own:
//   { "error": { "code": "<lower_snake_case>", "message": "<words a person understands>", "requestId": "<id>",
//                "details"?: [{ "field": "title", "message": "must be at most 200 characters" }] } }
// requestId is the X-Request-Id the gateway forwarded (or the one made here). No stack traces, SQL or parameters
// ever reach a response body.
import type { Socket } from 'node:net'
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static, type TUnsafe } from 'typebox'
import { isUnavailableError } from './db.js'

/** The schema's $id: registered once with addSchema, referenced by every route, one component in the OpenAPI document. */
export const ERROR_SCHEMA_ID = 'Error'

export const ErrorDetail = Type.Object(
  {
    field: Type.String({ description: 'The field or query parameter, e.g. "title"; "body" or "query" for the whole part.' }),
    message: Type.String({ description: 'What is wrong with it, e.g. "must be at most 200 characters".' })
  },
  { additionalProperties: false }
)
export type ErrorDetail = Static<typeof ErrorDetail>

export const ErrorResponse = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.String({ pattern: '^[a-z][a-z0-9]*(_[a-z0-9]+)*$', description: 'Stable machine-readable code, lower_snake_case, e.g. task_not_found.' }),
        message: Type.String({ description: 'Human-readable explanation; for validation errors every failing field as "field: why".' }),
        requestId: Type.String({ description: 'The X-Request-Id of this request (also in the response header and every log line).' }),
        details: Type.Optional(Type.Array(ErrorDetail, { description: 'Validation errors only: each field that failed and why.' }))
      },
      { additionalProperties: false }
    )
  },
  { $id: ERROR_SCHEMA_ID, title: 'Error', additionalProperties: false, description: 'Every error answer of the API.' }
)
export type ErrorResponse = Static<typeof ErrorResponse>

/** When each status is answered, and with which codes (the OpenAPI response descriptions). */
const ERROR_STATUSES: Record<number, string> = {
  400: 'Invalid request: `validation_error` (a field or query parameter; `details` names each), `invalid_json`, ' +
    '`invalid_cursor`, `user_id_not_allowed` (user_id/userId in the body or query), `invalid_content_length`.',
  401: '`missing_user_id` or `invalid_user_id`: the X-User-Id header set by the gateway is missing or unusable.',
  404: '`task_not_found`: no such task for this user (also another user\'s task, and an id that is not a UUID).',
  413: '`payload_too_large`: the body is over 64 KiB.',
  415: '`unsupported_media_type`: a body that is not application/json.',
  421: '`misdirected_request`: the Host header names a host this service does not answer for (ALLOWED_HOSTS), as a web ' +
    'page that rebinds its own DNS name to this service would send.',
  500: '`internal_error`: a bug (logged with its stack, never returned).',
  503: '`database_unavailable` (the database is unreachable) or `shutting_down`; with Retry-After: 1.'
}

/** Response-schema entries for these statuses, each pointing at the one shared Error schema. */
export function errorResponses<S extends number> (...statuses: S[]): Record<S, TUnsafe<ErrorResponse>> {
  const entries = statuses.map((s) => [s, Type.Unsafe<ErrorResponse>({ $ref: `${ERROR_SCHEMA_ID}#`, description: ERROR_STATUSES[s] ?? 'Error' })])
  return Object.fromEntries(entries) as Record<S, TUnsafe<ErrorResponse>>
}

export class HttpError extends Error {
  constructor (
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[]
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

export const notFound = (): HttpError => new HttpError(404, 'task_not_found', 'task not found')

/** A 400 for one field, with the message and details built the same way as schema validation errors. */
export function invalidField (field: string, message: string, code = 'validation_error'): HttpError {
  return new HttpError(400, code, `${field}: ${message}`, [{ field, message }])
}

export function errorBody (code: string, message: string, requestId: string, details?: ErrorDetail[]): ErrorResponse {
  return { error: { code, message, requestId, ...(details !== undefined && details.length > 0 ? { details } : {}) } }
}

interface ValidationIssue {
  keyword: string
  instancePath: string
  params: Record<string, unknown>
}

const PART_NAMES: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'headers' }
const UNKNOWN_FIELD: Record<string, string> = { body: 'unknown field', querystring: 'unknown query parameter' }
const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  null: 'null',
  object: 'a JSON object',
  array: 'an array'
}

const characters = (n: unknown): string => `${String(n)} character${n === 1 ? '' : 's'}`

/** One sentence for a constraint keyword (not type/const/anyOf, which are combined per field). */
function constraintMessage (issue: ValidationIssue): string | undefined {
  const p = issue.params
  switch (issue.keyword) {
    case 'maxLength': return `must be at most ${characters(p.limit)}`
    case 'minLength': return p.limit === 1 ? 'must not be empty' : `must be at least ${characters(p.limit)}`
    case 'pattern': return String(p.pattern).includes('\\u0000') ? 'must not contain the NUL character (U+0000)' : 'is not in the expected format'
    case 'format': return `must be a valid ${String(p.format)}`
    case 'minimum': return `must be at least ${String(p.limit)}`
    case 'maximum': return `must be at most ${String(p.limit)}`
    case 'exclusiveMinimum': return `must be greater than ${String(p.limit)}`
    case 'exclusiveMaximum': return `must be less than ${String(p.limit)}`
    case 'multipleOf': return `must be a multiple of ${String(p.multipleOf)}`
    case 'maxItems': return `must have at most ${String(p.limit)} items`
    case 'minItems': return `must have at least ${String(p.limit)} items`
    default: return undefined
  }
}

function joinAlternatives (words: string[]): string {
  if (words.length <= 1) return words[0] ?? ''
  return `${words.slice(0, -1).join(', ')} or ${words[words.length - 1] as string}`
}

/** The message for one field from all of its issues (a union reports one issue per alternative). */
function fieldMessage (issues: ValidationIssue[], value: unknown): string {
  for (const issue of issues) {
    const m = constraintMessage(issue)
    if (m !== undefined) return m
  }
  const allowed = issues.filter((i) => i.keyword === 'const' || i.keyword === 'enum')
    .flatMap((i) => (i.keyword === 'const' ? [i.params.allowedValue] : (i.params.allowedValues as unknown[] ?? [])))
  if (Array.isArray(value) && allowed.length > 0) return 'must be given only once'
  if (allowed.length > 0) return `must be one of: ${[...new Set(allowed.map(String))].join(', ')}`
  const types = [...new Set(issues.filter((i) => i.keyword === 'type').map((i) => String(i.params.type)))]
  if (Array.isArray(value) && types.length > 0 && !types.includes('array')) return 'must be given only once'
  if (types.length > 0) return `must be ${joinAlternatives(types.map((t) => TYPE_NAMES[t] ?? t))}`
  return 'is invalid'
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Schema validation issues → one detail per field, in words: "title: must be at most 200 characters",
 * "page: unknown query parameter", "title: is required". Only the names of the route's own schema and the
 * keys the client sent appear; values are never echoed.
 */
export function validationDetails (err: FastifyError, request?: FastifyRequest): ErrorDetail[] {
  const context = err.validationContext ?? 'body'
  const part = PART_NAMES[context] ?? context
  const issues = (err.validation ?? []) as unknown as ValidationIssue[]
  const input = request === undefined ? undefined : (request as unknown as Record<string, unknown>)[context === 'querystring' ? 'query' : context]
  const details: ErrorDetail[] = []
  const byField = new Map<string, ValidationIssue[]>()
  const unknown = new Set<string>()
  for (const issue of issues) {
    const path = (issue.instancePath ?? '').split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    if (path.length === 0) {
      // Issues about the part as a whole.
      if (issue.keyword === 'required') {
        for (const name of (issue.params.requiredProperties as string[] | undefined) ?? [String(issue.params.missingProperty)]) {
          details.push({ field: name, message: 'is required' })
        }
      } else if (issue.keyword === 'additionalProperties') {
        for (const name of (issue.params.additionalProperties as string[] | undefined) ?? [String(issue.params.additionalProperty)]) unknown.add(name)
      } else if (issue.keyword === 'minProperties') {
        const schema = request?.routeOptions.schema?.[context as 'body'] as { properties?: Record<string, unknown> } | undefined
        const names = Object.keys(schema?.properties ?? {})
        details.push({ field: part, message: names.length > 0 ? `must contain at least one of: ${names.join(', ')}` : 'must not be empty' })
      } else if (issue.keyword === 'type') {
        details.push({ field: part, message: context === 'body' ? 'must be a JSON object' : `must be ${TYPE_NAMES[String(issue.params.type)] ?? String(issue.params.type)}` })
      } else if (issue.keyword !== 'anyOf') {
        details.push({ field: part, message: constraintMessage(issue) ?? 'is invalid' })
      }
      continue
    }
    const field = path.join('.')
    if (issue.keyword === 'boolean' && issue.params !== undefined) {
      unknown.add(field)
      continue
    }
    const list = byField.get(field) ?? []
    list.push(issue)
    byField.set(field, list)
  }
  for (const [field, list] of byField) {
    const value = isRecord(input) ? input[field] : undefined
    details.push({ field, message: fieldMessage(list, value) })
  }
  for (const field of unknown) details.push({ field, message: UNKNOWN_FIELD[context] ?? 'is not allowed' })
  return details
}

/** The public status and body for anything thrown. Exported for unit tests. */
export function toError (err: unknown, requestId: string, request?: FastifyRequest): { status: number, body: ErrorResponse } {
  const made = (status: number, code: string, message: string, details?: ErrorDetail[]): { status: number, body: ErrorResponse } =>
    ({ status, body: errorBody(code, message, requestId, details) })
  if (err instanceof HttpError) return made(err.statusCode, err.code, err.message, err.details)
  if (isUnavailableError(err)) return made(503, 'database_unavailable', 'the database is unavailable; retry shortly')
  const e = err as FastifyError
  if (e.validation) {
    const details = validationDetails(e, request)
    const message = details.length > 0 ? details.map((d) => `${d.field}: ${d.message}`).join('; ') : 'the request is invalid'
    return made(400, 'validation_error', message, details)
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return made(413, 'payload_too_large', 'the request body is larger than 64 KiB')
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return made(400, 'invalid_json', 'the request body is not valid JSON')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return made(400, 'invalid_json', 'the request body is empty but Content-Type is application/json')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return made(415, 'unsupported_media_type', 'request bodies must be application/json')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return made(400, 'invalid_content_length', 'Content-Length does not match the body')
  }
  // JSON.parse failures surface as SyntaxError with a 400 status.
  if (err instanceof SyntaxError && e.statusCode === 400) return made(400, 'invalid_json', 'the request body is not valid JSON')
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500
  if (status >= 400 && status < 500) {
    const reason = STATUS_CODES[status] ?? 'Bad Request'
    return made(status, reason.toLowerCase().replace(/[^a-z]+/g, '_').replace(/^_|_$/g, ''), reason.toLowerCase())
  }
  return made(500, 'internal_error', 'internal server error')
}

/** What is safe to log about an error: never the SQL text or its parameters (they carry request bodies). */
export function loggableError (err: unknown): Record<string, unknown> {
  if (typeof err !== 'object' || err === null) return { message: String(err) }
  const e = err as { name?: unknown; code?: unknown; message?: unknown; stack?: unknown; cause?: unknown }
  const out: Record<string, unknown> = { type: e.name, code: e.code, message: e.message }
  if (typeof e.stack === 'string') out.stack = e.stack
  if (e.cause !== undefined) {
    const c = e.cause as { code?: unknown; message?: unknown }
    out.cause = { code: c.code, message: c.message }
  }
  return out
}

/**
 * Malformed HTTP (Node's parser refused the request before Fastify saw it): the same JSON shape. There is no
 * request id yet, hence "none".
 */
export function clientErrorHandler (err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  let status = 400
  let message = 'malformed HTTP request'
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408; message = 'request not received in time'
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431; message = 'request headers too large'
  }
  const body = JSON.stringify(errorBody('bad_request', message, 'none'))
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] as string}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

/**
 * Errors the router finds before any hook runs (malformed percent-encoding, a path parameter over the length
 * limit): Fastify's default answer has another shape and echoes the URL. Such a path names no route.
 */
export function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  request.log.info({ errCode: error.code }, 'unroutable URL')
  void reply.code(404).header('x-request-id', request.id).type('application/json; charset=utf-8')
    .send(errorBody('route_not_found', 'no such route', String(request.id)))
}

export function registerErrorHandling (app: FastifyInstance): void {
  app.addSchema(ErrorResponse)

  app.setErrorHandler((err, request, reply) => {
    const { status, body } = toError(err, String(request.id), request)
    if (status >= 500) {
      request.log.error({ err: loggableError(err) }, status === 503 ? 'database unavailable' : 'unhandled error')
    }
    if (status === 503) void reply.header('retry-after', '1')
    return reply.code(status).type('application/json; charset=utf-8').send(body)
  })

  // The message does not echo the path: behind the gateway, internal paths stay internal.
  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).type('application/json; charset=utf-8').send(errorBody('route_not_found', 'no such route', String(request.id)))
  })

  // Fastify's own answer while closing has another shape; this one answers new requests on open connections
  // (return503OnClosing is off in app.ts) with the error shape and Connection: close.
  let closing = false
  app.addHook('preClose', (done) => { closing = true; done() })
  app.addHook('onRequest', (request, reply, done) => {
    if (!closing) { done(); return }
    void reply.code(503).header('connection', 'close').header('retry-after', '1').header('x-request-id', request.id)
      .type('application/json; charset=utf-8')
      .send(errorBody('shutting_down', 'the service is shutting down; retry shortly', String(request.id)))
  })
}
