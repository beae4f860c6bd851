/** A user id is at most this many characters (Unicode code points). */
export declare const MAX_USER_ID_LENGTH: 255

/** True when the string holds a Unicode control character (Cc: U+0000–U+001F, U+007F–U+009F). */
export declare function hasControlCharacter (value: string): boolean

/** True when the string is longer than MAX_USER_ID_LENGTH code points. */
export declare function tooLongUserId (value: string): boolean

/**
 * A token's `sub` the gateway forwards: a non-empty string of at most 255 characters (code points) without
 * control characters and well-formed Unicode (no lone surrogate). Leading or trailing whitespace is refused
 * too: HTTP header parsing trims it, so " alice" would reach the task service as "alice" — another user.
 */
export declare function validSubject (sub: unknown): sub is string

/** An X-Request-Id is kept only when well-formed: 1–128 of [A-Za-z0-9._:-]. */
export declare function wellFormedRequestId (value: unknown): value is string
