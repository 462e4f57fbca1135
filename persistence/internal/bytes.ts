/**
 * Byte helpers for keys: UTF-8 conversion, bytewise comparison, fixed-width big-endian integers
 * (so that numeric order equals byte order) and prefix successors for prefix scans.
 */

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: false })

/** UTF-8 bytes of a string, or the bytes themselves. */
export const toBytes = (key: string | Uint8Array): Uint8Array =>
  typeof key === "string" ? encoder.encode(key) : key

/** Decodes UTF-8 (invalid sequences become U+FFFD). */
export const fromBytes = (bytes: Uint8Array): string => decoder.decode(bytes)

/** The byte length of a string in UTF-8 without allocating. */
export const utf8Length = (text: string): number => {
  let length = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) length += 1
    else if (code < 0x800) length += 2
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      length += 4
      i++
    } else length += 3
  }
  return length
}

/** Bytewise comparison, as LevelDB and Redis order keys. */
export const compare = (left: Uint8Array, right: Uint8Array): number => {
  const length = Math.min(left.length, right.length)
  for (let i = 0; i < length; i++) {
    const difference = left[i]! - right[i]!
    if (difference !== 0) return difference
  }
  return left.length - right.length
}

/** Equality of two byte arrays. */
export const equals = (left: Uint8Array, right: Uint8Array): boolean =>
  left.length === right.length && compare(left, right) === 0

/** Concatenates byte arrays. */
export const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  let length = 0
  for (const part of parts) length += part.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

/** Writes a non-negative safe integer as 8 bytes big-endian. */
export const writeUint64 = (target: Uint8Array, offset: number, value: number): void => {
  const high = Math.floor(value / 0x1_0000_0000)
  const low = value >>> 0
  target[offset] = high >>> 24
  target[offset + 1] = (high >>> 16) & 0xff
  target[offset + 2] = (high >>> 8) & 0xff
  target[offset + 3] = high & 0xff
  target[offset + 4] = low >>> 24
  target[offset + 5] = (low >>> 16) & 0xff
  target[offset + 6] = (low >>> 8) & 0xff
  target[offset + 7] = low & 0xff
}

/** Reads 8 bytes big-endian as a number (exact up to 2^53). */
export const readUint64 = (source: Uint8Array, offset: number): number => {
  const high = ((source[offset]! << 24) | (source[offset + 1]! << 16) | (source[offset + 2]! << 8) | source[offset + 3]!) >>> 0
  const low = ((source[offset + 4]! << 24) | (source[offset + 5]! << 16) | (source[offset + 6]! << 8) | source[offset + 7]!) >>> 0
  return high * 0x1_0000_0000 + low
}

/** A non-negative safe integer as 8 bytes big-endian. */
export const uint64 = (value: number): Uint8Array => {
  const out = new Uint8Array(8)
  writeUint64(out, 0, value)
  return out
}

/**
 * The smallest byte string greater than every string starting with `prefix`, or `undefined`
 * when there is none (the prefix is empty or all 0xff).
 */
export const prefixSuccessor = (prefix: Uint8Array): Uint8Array | undefined => {
  let end = prefix.length
  while (end > 0 && prefix[end - 1] === 0xff) end--
  if (end === 0) return undefined
  // A copy: `slice` of a Buffer is a view, and incrementing it would change the caller's prefix.
  const out = Uint8Array.prototype.slice.call(prefix, 0, end)
  out[end - 1]! += 1
  return out
}

/** Latin-1 view of bytes: a string whose code-unit order equals the bytes' order. */
export const toLatin1 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1")

/** Inverse of `toLatin1`. */
export const fromLatin1 = (text: string): Uint8Array => {
  const buffer = Buffer.from(text, "latin1")
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}
