/**
 * Request bodies as JSON, with one care JSON.parse lacks: nonces may be integers up to 2^128-1
 * sent as JSON numbers, which JavaScript numbers cannot hold above 2^53. Before parsing, every
 * number literal that is the nonce of an appended item (`items[i].nonce`, at the top of the body
 * or in a message's payload, `message.payload.items[i].nonce`) and an integer of more than 15
 * digits, however it is written (`12345678901234567`, `1.2345678901234567e16`, `1e20`,
 * `12345678901234567.0`), is turned into its exact decimal string, so it reaches the feed
 * exactly; other literals parse as numbers (a fraction is then refused as not an integer), and a
 * `"nonce"` key anywhere else (inside an entry's value, a search document) is left alone. Keys
 * such as `__proto__` stay plain data: JSON.parse makes them own properties, and no handler
 * merges request objects into others.
 */
import { NONCE_DIGITS_MAX } from "../feed/internal/nonce.js"

/** A JSON object (not null, not an array): what a request body or a nested message must be. */
export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Body text that is not JSON. */
export class MalformedJson {
  readonly _tag = "MalformedJson"
  constructor(readonly message: string) {}
}

const isDigit = (code: number) => code >= 48 && code <= 57

/**
 * Where a long nonce literal may be: `"nonce"`, a colon and 16 digits, or a number with a
 * fraction or an exponent. The regular expression runs natively and rules out most bodies; a
 * match (even inside a string value) only means the exact scan below runs, so it cannot change
 * an answer.
 */
const MAYBE_LONG_NONCE = /"nonce"[ \t\r\n]*:[ \t\r\n]*(?:[0-9]{16}|[0-9]+(?:\.[0-9]*)?[eE.])/

/**
 * The exact decimal integer a JSON number literal (`int frac? exp?`, no sign) stands for, when it
 * is one of more than 15 digits; undefined when it is not an integer or short enough to parse
 * exactly. An exponent too large gives 40 digits (refused as above 2^128-1) without computing it.
 */
const longInteger = (int: string, frac: string, exp: number): string | undefined => {
  // value = digits × 10^shift
  let digits = (int + frac).replace(/^0+(?=.)/, "")
  let shift = exp - frac.length
  if (/^0+$/.test(digits)) return undefined
  if (shift < 0) {
    // An integer only if the last -shift digits are zeros: they go.
    const zeros = digits.length - digits.replace(/0+$/, "").length
    if (zeros < -shift) return undefined
    digits = digits.slice(0, digits.length + shift)
    shift = 0
  }
  // An exponent past 39 digits is not written out (1e999999): 40 digits say "too large" as well.
  if (shift > 0 && digits.length + shift > NONCE_DIGITS_MAX) return "1" + "0".repeat(NONCE_DIGITS_MAX)
  const value = digits + "0".repeat(shift)
  return value.length > 15 ? value : undefined
}

/** Where item nonces are: `*` is any array index. */
const NONCE_PATHS: ReadonlyArray<ReadonlyArray<string>> = [
  ["items", "*", "nonce"],
  ["message", "payload", "items", "*", "nonce"]
]

/** One open container while scanning: an array, or an object and the key being read. */
interface Frame {
  readonly array: boolean
  key: string | undefined
}

/** Whether the open containers put the value being read at an item nonce. */
const atNoncePath = (stack: ReadonlyArray<Frame>): boolean =>
  NONCE_PATHS.some((path) =>
    path.length === stack.length && stack.every((frame, i) => (frame.array ? path[i] === "*" : path[i] === frame.key)))

/** Quotes long integer literals that are item nonces (see `NONCE_PATHS`). */
export const quoteLongNonces = (text: string): string => {
  if (!MAYBE_LONG_NONCE.test(text)) return text
  let out = ""
  let copied = 0
  let lastString = ""
  let afterKeyColon = false
  // Bounded by the text's length; JSON.parse refuses whatever nesting is malformed afterwards.
  const stack: Array<Frame> = []
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code === 34) {
      // A string: find its end, honouring escapes.
      let j = i + 1
      while (j < text.length && text.charCodeAt(j) !== 34) j += text.charCodeAt(j) === 92 ? 2 : 1
      lastString = text.slice(i + 1, j)
      afterKeyColon = false
      i = j
      continue
    }
    if (code === 123 || code === 91) {
      stack.push({ array: code === 91, key: undefined })
      afterKeyColon = false
      continue
    }
    if (code === 125 || code === 93) {
      stack.pop()
      afterKeyColon = false
      continue
    }
    if (code === 58) {
      const top = stack[stack.length - 1]
      if (top !== undefined && !top.array) top.key = lastString
      afterKeyColon = lastString === "nonce"
      continue
    }
    if (isDigit(code) && afterKeyColon) {
      // A JSON number literal: int, then maybe `.digits`, then maybe `e[+-]digits`.
      let j = i
      while (j < text.length && isDigit(text.charCodeAt(j))) j++
      const int = text.slice(i, j)
      let frac = ""
      if (text.charCodeAt(j) === 46) {
        const start = ++j
        while (j < text.length && isDigit(text.charCodeAt(j))) j++
        frac = text.slice(start, j)
      }
      let exp = 0
      if (text.charCodeAt(j) === 101 || text.charCodeAt(j) === 69) {
        let k = j + 1
        const sign = text.charCodeAt(k) === 45 ? -1 : 1
        if (text.charCodeAt(k) === 43 || text.charCodeAt(k) === 45) k++
        const start = k
        while (k < text.length && isDigit(text.charCodeAt(k))) k++
        // Digits of the exponent past 6 only make it absurd: bounded either way.
        if (k > start) {
          exp = sign * Math.min(Number(text.slice(start, Math.min(k, start + 7))), 1_000_000)
          j = k
        }
      }
      const exact = atNoncePath(stack) ? longInteger(int, frac, exp) : undefined
      if (exact !== undefined) {
        out += text.slice(copied, i) + "\"" + exact + "\""
        copied = j
      }
      afterKeyColon = false
      i = j - 1
      continue
    }
    if (code !== 32 && code !== 9 && code !== 10 && code !== 13) afterKeyColon = false
  }
  return copied === 0 ? text : out + text.slice(copied)
}

/** Parses a request body. */
export const parse = (text: string): unknown | MalformedJson => {
  try {
    return JSON.parse(quoteLongNonces(text))
  } catch (error) {
    return new MalformedJson(error instanceof Error ? error.message : "malformed JSON")
  }
}
