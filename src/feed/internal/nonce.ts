/**
 * Nonces: non-negative integers up to 2^128-1, given as a number, a decimal string or a bigint,
 * held as bigint, stored as minimal big-endian bytes and returned as decimal strings.
 */
import { InvalidArgument } from "../../../persistence/StoreError.js"

/** The largest nonce, 2^128-1. */
export const NONCE_MAX = (1n << 128n) - 1n
/** Its decimal digits (39): a nonce of more is too large whatever they are. */
export const NONCE_DIGITS_MAX = NONCE_MAX.toString().length

/** Parses a nonce, or names the field it came from. */
export const parse = (input: unknown, field: string): bigint | InvalidArgument => {
  let value: bigint
  if (typeof input === "bigint") value = input
  else if (typeof input === "number") {
    if (!Number.isInteger(input)) return new InvalidArgument({ field, message: "must be an integer" })
    // Above 2^53 a JSON number has already lost digits: only a decimal string carries it exactly.
    if (!Number.isSafeInteger(input)) return new InvalidArgument({ field, message: "above 2^53-1 must be sent as a decimal string" })
    value = BigInt(input)
  } else if (typeof input === "string") {
    if (!/^(0|[1-9][0-9]*)$/.test(input)) return new InvalidArgument({ field, message: "must be a decimal integer string without sign or leading zeros" })
    // Longer than 2^128-1 is too large, and never made into a bigint.
    if (input.length > NONCE_DIGITS_MAX) return new InvalidArgument({ field, message: "must be at most 2^128-1" })
    value = BigInt(input)
  } else return new InvalidArgument({ field, message: "must be a non-negative integer (number or decimal string)" })
  if (value < 0n) return new InvalidArgument({ field, message: "must not be negative" })
  if (value > NONCE_MAX) return new InvalidArgument({ field, message: "must be at most 2^128-1" })
  return value
}

const SAFE_LIMIT = BigInt(Number.MAX_SAFE_INTEGER)

/** Minimal big-endian bytes of a nonce (0 is one zero byte). */
export const toBytes = (nonce: bigint): Uint8Array => {
  if (nonce <= SAFE_LIMIT) {
    // Most nonces are sequence numbers or timestamps: plain number arithmetic, no BigInt per byte.
    let rest = Number(nonce)
    let length = 1
    for (let probe = Math.floor(rest / 256); probe > 0; probe = Math.floor(probe / 256)) length++
    const out = new Uint8Array(length)
    for (let i = length - 1; i >= 0; i--) {
      out[i] = rest % 256
      rest = Math.floor(rest / 256)
    }
    return out
  }
  const out: Array<number> = []
  let rest = nonce
  do {
    out.push(Number(rest & 0xffn))
    rest >>= 8n
  } while (rest > 0n)
  return Uint8Array.from(out.reverse())
}

/** Reads big-endian bytes as a nonce. */
export const fromBytes = (bytes: Uint8Array, start = 0, length = bytes.length): bigint => {
  if (length <= 6) {
    // Up to 48 bits fit a number exactly.
    let value = 0
    for (let i = start; i < start + length; i++) value = value * 256 + bytes[i]!
    return BigInt(value)
  }
  let value = 0n
  for (let i = start; i < start + length; i++) value = (value << 8n) | BigInt(bytes[i]!)
  return value
}
