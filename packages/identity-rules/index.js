// The identity rules both services apply: the gateway to a token's `sub` before forwarding it as X-User-Id,
// the task service to the X-User-Id it receives; and the X-Request-Id both keep. Plain JavaScript with a
// declaration file (index.d.ts), so that each service's build imports it without compiling it: their
// tsconfig.build.json keeps rootDir at src.

/** A user id is at most this many characters (Unicode code points). */
export const MAX_USER_ID_LENGTH = 255

// Unicode general category Cc: U+0000–U+001F and U+007F–U+009F. Matching control characters is the point here.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
// With the u flag a surrogate pair is one code point; only a lone surrogate matches (= !isWellFormed()).
const LONE_SURROGATE = /\p{Cs}/u
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export function hasControlCharacter (value) {
  return CONTROL.test(value)
}

export function tooLongUserId (value) {
  // .length counts UTF-16 units, never fewer than code points: only a long string needs counting.
  return value.length > MAX_USER_ID_LENGTH && [...value].length > MAX_USER_ID_LENGTH
}

export function validSubject (sub) {
  if (typeof sub !== 'string' || sub.length === 0) return false
  if (tooLongUserId(sub)) return false
  if (hasControlCharacter(sub)) return false
  // A lone UTF-16 surrogate cannot be encoded as UTF-8: it would reach the task service as U+FFFD,
  // so "alice\ud800" and "alice\udfff" would both become "alice\ufffd" — one user.
  if (LONE_SURROGATE.test(sub)) return false
  return sub.trim() === sub
}

export function wellFormedRequestId (value) {
  return typeof value === 'string' && REQUEST_ID.test(value)
}
