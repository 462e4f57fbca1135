/**
 * The order of sorted-set members: bytewise over their UTF-8 encoding, as Redis compares members
 * with `memcmp`. Members stay JavaScript strings in memory; this module compares them without
 * encoding them, and measures and checks them for the engine's input validation.
 *
 * It does not decide what a valid member is (the engine does); it only answers questions.
 */

const SURROGATE_FIRST = 0xd800
const PRIVATE_USE_FIRST = 0xe000
const LONE_SURROGATE = /\p{Surrogate}/u

/**
 * Maps a UTF-16 code unit of at least U+D800 so that code-unit order becomes code-point order.
 * Surrogates (U+D800–U+DFFF) encode code points above U+FFFF, which UTF-8 orders after
 * U+E000–U+FFFF, while UTF-16 orders them before: shift the surrogates above and the rest below.
 */
const fixUp = (code: number): number => (code >= PRIVATE_USE_FIRST ? code - 0x800 : code + 0x2000)

/**
 * Compares two well-formed strings as Redis compares their UTF-8 bytes (negative, zero or
 * positive). UTF-8 byte order equals code-point order, which differs from JavaScript's `<` only
 * where a surrogate meets a code unit of U+E000 or above.
 */
export const compareMembers = (left: string, right: string): number => {
  if (left === right) return 0
  const length = left.length < right.length ? left.length : right.length
  for (let i = 0; i < length; i++) {
    const a = left.charCodeAt(i)
    const b = right.charCodeAt(i)
    if (a !== b) return a >= SURROGATE_FIRST && b >= SURROGATE_FIRST ? fixUp(a) - fixUp(b) : a - b
  }
  return left.length - right.length
}

/** The number of bytes of `text` in UTF-8. */
export const utf8Length = (text: string): number => Buffer.byteLength(text, "utf8")

/** Whether `text` takes more than `max` bytes in UTF-8, counting only when it could. */
export const utf8LongerThan = (text: string, max: number): boolean =>
  // A UTF-16 code unit takes at most 3 UTF-8 bytes, so most members need no count at all.
  text.length * 3 > max && utf8Length(text) > max

/**
 * Whether `text` holds a lone surrogate. Such a string has no exact UTF-8 form (an encoder
 * replaces the surrogate with U+FFFD), so two different strings would be one Redis member.
 */
export const hasLoneSurrogate = (text: string): boolean => LONE_SURROGATE.test(text)
