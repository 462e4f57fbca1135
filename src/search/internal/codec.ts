/**
 * Byte encoding for the search engine's records: a growable writer and a reader of unsigned
 * varints (LEB128, exact up to 2^53), float64 and raw bytes; the UTF-8 and big-endian helpers are
 * the store's (`persistence/internal/bytes.ts`), re-exported.
 * It deliberately knows nothing about what the records mean (see `layout.ts`, `postings.ts`).
 */

import { fromBytes, toBytes } from "../../../persistence/internal/bytes.js"

// UTF-8, latin-1 views, concatenation, big-endian integers and prefix successors are the store's own.
export { concat, prefixSuccessor, readUint64, toLatin1 as latin1, writeUint64 } from "../../../persistence/internal/bytes.js"

/** UTF-8 bytes of a string. */
export const utf8 = (text: string): Uint8Array => toBytes(text)

/** A string from UTF-8 bytes (invalid sequences become U+FFFD). */
export const fromUtf8: (bytes: Uint8Array) => string = fromBytes

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
