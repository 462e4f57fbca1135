/**
 * Byte encoding for the search engine's records: a growable writer and a reader of unsigned
 * varints (LEB128, exact up to 2^53), float64 and raw bytes, plus UTF-8 and big-endian helpers.
 * It deliberately knows nothing about what the records mean (see `layout.ts`, `postings.ts`).
 */

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: false })

/** UTF-8 bytes of a string. */
export const utf8 = (text: string): Uint8Array => encoder.encode(text)

/** A string from UTF-8 bytes (invalid sequences become U+FFFD). */
export const fromUtf8 = (bytes: Uint8Array): string => decoder.decode(bytes)

/** Latin-1 view of bytes: a string whose code-unit order equals the bytes' order (map keys). */
export const latin1 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1")

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

/** Writes a non-negative safe integer as 8 bytes big-endian at `offset`. */
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

/** Reads 8 bytes big-endian at `offset` as a number (exact up to 2^53). */
export const readUint64 = (source: Uint8Array, offset: number): number => {
  const high = ((source[offset]! << 24) | (source[offset + 1]! << 16) | (source[offset + 2]! << 8) | source[offset + 3]!) >>> 0
  const low = ((source[offset + 4]! << 24) | (source[offset + 5]! << 16) | (source[offset + 6]! << 8) | source[offset + 7]!) >>> 0
  return high * 0x1_0000_0000 + low
}

/**
 * The smallest byte string greater than every string starting with `prefix`, or `undefined`
 * when there is none (empty or all 0xff).
 */
export const prefixSuccessor = (prefix: Uint8Array): Uint8Array | undefined => {
  let end = prefix.length
  while (end > 0 && prefix[end - 1] === 0xff) end--
  if (end === 0) return undefined
  const out = prefix.slice(0, end)
  out[end - 1]! += 1
  return out
}

/** The number of bytes of `value` as a LEB128 varint. */
export const varintSize = (value: number): number => {
  let size = 1
  for (let v = value; v >= 0x80; v = Math.floor(v / 0x80)) size++
  return size
}

/** Writes `value` as a LEB128 varint at `offset`; returns the offset after it. */
export const putVarint = (target: Uint8Array, offset: number, value: number): number => {
  let at = offset
  let v = value
  while (v >= 0x80) {
    target[at++] = (v % 0x80) | 0x80
    v = Math.floor(v / 0x80)
  }
  target[at++] = v
  return at
}

/** Copies `parts` into `target` from `offset`; returns the offset after them. */
export const putParts = (target: Uint8Array, offset: number, parts: ReadonlyArray<Uint8Array>): number => {
  let at = offset
  for (const part of parts) {
    target.set(part, at)
    at += part.length
  }
  return at
}

/** A growable byte buffer that appends varints, float64 values and bytes. */
export class ByteWriter {
  private buffer: Uint8Array
  private dataView: DataView | undefined
  length = 0

  constructor(capacity = 64) {
    this.buffer = new Uint8Array(Math.max(16, capacity))
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return
    let capacity = this.buffer.length * 2
    while (capacity < this.length + extra) capacity *= 2
    const next = new Uint8Array(capacity)
    next.set(this.buffer.subarray(0, this.length))
    this.buffer = next
    this.dataView = undefined
  }

  /** Appends an unsigned integer (0 to 2^53 - 1) as a LEB128 varint. */
  uint(value: number): this {
    this.reserve(8)
    let v = value
    if (v < 0x8000_0000) {
      // The common case stays on 32-bit integer arithmetic.
      while (v >= 0x80) {
        this.buffer[this.length++] = (v & 0x7f) | 0x80
        v >>>= 7
      }
      this.buffer[this.length++] = v
      return this
    }
    while (v >= 0x80) {
      this.buffer[this.length++] = (v % 0x80) | 0x80
      v = Math.floor(v / 0x80)
    }
    this.buffer[this.length++] = v
    return this
  }

  /** Appends a float64, little-endian. */
  float64(value: number): this {
    this.reserve(8)
    this.dataView ??= new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength)
    this.dataView.setFloat64(this.length, value, true)
    this.length += 8
    return this
  }

  /** Appends raw bytes. */
  bytes(bytes: Uint8Array): this {
    this.reserve(bytes.length)
    this.buffer.set(bytes, this.length)
    this.length += bytes.length
    return this
  }

  /** Appends a length-prefixed byte string. */
  blob(bytes: Uint8Array): this {
    return this.uint(bytes.length).bytes(bytes)
  }

  /** A copy of the bytes written so far. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length)
  }

  /** Forgets what was written, keeping the buffer (for scratch writers). */
  reset(): void {
    this.length = 0
  }

  /** The bytes written so far, without copying (valid until the next write). */
  view(): Uint8Array {
    return this.buffer.subarray(0, this.length)
  }

  /** Appends several byte arrays as one length-prefixed byte string. */
  blobOf(parts: ReadonlyArray<Uint8Array>): this {
    let length = 0
    for (const part of parts) length += part.length
    this.uint(length)
    for (const part of parts) this.bytes(part)
    return this
  }
}

/** Reads what `ByteWriter` wrote. Reading past the end is a defect (a corrupt record). */
export class ByteReader {
  offset: number
  private view: DataView | undefined

  constructor(readonly bytes: Uint8Array, offset = 0) {
    this.offset = offset
  }

  get done(): boolean {
    return this.offset >= this.bytes.length
  }

  uint(): number {
    let result = 0
    let multiplier = 1
    for (let i = 0; i < 8; i++) {
      const byte = this.bytes[this.offset++]
      if (byte === undefined) throw new Error("search record: varint past the end")
      result += (byte & 0x7f) * multiplier
      if ((byte & 0x80) === 0) return result
      multiplier *= 0x80
    }
    throw new Error("search record: varint longer than 8 bytes")
  }

  float64(): number {
    if (this.offset + 8 > this.bytes.length) throw new Error("search record: float64 past the end")
    this.view ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength)
    const value = this.view.getFloat64(this.offset, true)
    this.offset += 8
    return value
  }

  raw(length: number): Uint8Array {
    if (this.offset + length > this.bytes.length) throw new Error("search record: bytes past the end")
    const out = this.bytes.subarray(this.offset, this.offset + length)
    this.offset += length
    return out
  }

  blob(): Uint8Array {
    return this.raw(this.uint())
  }
}
