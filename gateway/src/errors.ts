// One JSON error shape for every response the gateway itself produces:
//   { "error": { "code": "<stable_machine_code>", "message": "<human text>", "requestId": "<id>" } }
// No stack traces, paths, token text or internal host names ever appear in a body.
import type { FastifyReply } from 'fastify'

export type AuthErrorCode =
  | 'missing_token'
  | 'malformed_token'
  | 'unsupported_algorithm'
  | 'invalid_signature'
  | 'unknown_key'
  | 'keys_unavailable'
  | 'unsupported_critical_header'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'invalid_claims'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'invalid_subject'
  | 'invalid_token_type'

export type ErrorCode =
  | AuthErrorCode
  | 'forbidden_user'
  | 'not_found'
  | 'method_not_allowed'
  | 'upgrade_not_supported'
  | 'bad_request'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'not_ready'
  | 'internal_error'
  | 'rate_limited'
  | 'too_many_concurrent_requests'
  | 'overloaded'
  | 'shutting_down'
  | 'payload_too_large'
  | 'unsupported_media_type'

/** error_description for the WWW-Authenticate header (quoted-string safe: no quotes, no backslashes). */
export const AUTH_ERROR_DESCRIPTIONS: Record<AuthErrorCode, string> = {
  missing_token: 'bearer token required',
  malformed_token: 'malformed token',
  unsupported_algorithm: 'token algorithm not allowed',
  invalid_signature: 'invalid signature',
  unknown_key: 'unknown signing key',
  keys_unavailable: 'signing keys unavailable',
  unsupported_critical_header: 'unsupported critical header',
  token_expired: 'token expired',
  token_not_yet_valid: 'token not yet valid',
  invalid_claims: 'invalid claims',
  invalid_issuer: 'invalid issuer',
  invalid_audience: 'invalid audience',
  invalid_subject: 'invalid subject',
  invalid_token_type: 'token type not accepted'
}

export class AuthError extends Error {
  override name = 'AuthError'
  constructor (readonly code: AuthErrorCode) {
    super(AUTH_ERROR_DESCRIPTIONS[code])
  }
}

export interface ErrorBody {
  error: { code: ErrorCode, message: string, requestId: string }
}

export function errorBody (code: ErrorCode, message: string, requestId: string): ErrorBody {
  return { error: { code, message, requestId } }
}

export function sendError (reply: FastifyReply, status: number, code: ErrorCode, message: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(JSON.stringify(errorBody(code, message, String(reply.request.id))))
}

/**
 * 429 with Retry-After: the one way the gateway refuses a request for a limit (rate limits, the per-user
 * concurrency cap), so that every such refusal is answered — and can be counted — alike.
 */
export function sendTooManyRequests (reply: FastifyReply, code: 'rate_limited' | 'too_many_concurrent_requests', retryAfterSec: number, message: string): FastifyReply {
  return sendError(reply.header('retry-after', String(retryAfterSec)), 429, code, message)
}

/**
 * 401 with RFC 6750 §3 WWW-Authenticate. A missing token gets no `error` attribute;
 * any present-but-invalid token gets error="invalid_token" and an error_description.
 */
export function sendAuthError (reply: FastifyReply, code: AuthErrorCode): FastifyReply {
  const challenge = code === 'missing_token'
    ? 'Bearer realm="api"'
    : `Bearer realm="api", error="invalid_token", error_description="${AUTH_ERROR_DESCRIPTIONS[code]}"`
  reply.header('www-authenticate', challenge)
  return sendError(reply, 401, code, AUTH_ERROR_DESCRIPTIONS[code])
}
