/**
 * Request bodies as JSON, with one care JSON.parse lacks: nonces may be integers up to 2^128-1
 * sent as JSON numbers, which JavaScript numbers cannot hold above 2^53. Before parsing, every
 * integer literal longer than 15 digits that is the value of a `"nonce"` key is turned into a
 * decimal string, so it reaches the feed exactly. Keys such as `__proto__` stay plain data:
 * JSON.parse makes them own properties, and no handler merges request objects into others.
 */

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
 * Where a long nonce literal may be: `"nonce"`, a colon and 16 digits. The regular expression runs
 * natively and rules out most bodies; a match (even inside a string value) only means the exact
 * scan below runs, so it cannot change an answer.
 */
const MAYBE_LONG_NONCE = /"nonce"[ \t\r\n]*:[ \t\r\n]*[0-9]{16}/

/** Quotes long integer literals that are values of `"nonce"` keys. */
export const quoteLongNonces = (text: string): string => {
  if (!MAYBE_LONG_NONCE.test(text)) return text
  let out = ""
  let copied = 0
  let lastString = ""
  let afterKeyColon = false
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
    if (code === 58) {
      afterKeyColon = lastString === "nonce"
      continue
    }
    if (isDigit(code) && afterKeyColon) {
      let j = i
      while (j < text.length && isDigit(text.charCodeAt(j))) j++
      const next = text.charCodeAt(j)
      const integer = next !== 46 && next !== 101 && next !== 69
      if (integer && j - i > 15) {
        out += text.slice(copied, i) + "\"" + text.slice(i, j) + "\""
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
