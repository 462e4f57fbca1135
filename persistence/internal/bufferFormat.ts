/**
 * The on-disk format of the persistent buffer: file names, the segment header, frames, index
 * entries and cursor records. Pure functions over bytes; no I/O happens here.
 *
 * ```
 * segment  <first index, 20 digits>.segment   header (32 B) then frames, append only
 *   header  "SFBUFSEG" | version u32 | first index u64 | created ms u64 | crc32c u32
 *   frame   crc32c u32 | length u32 | payload      (crc over length and payload)
 * index    <first index, 20 digits>.index     entries of 16 B, append only, a sparse map
 *   entry   element index u64 | byte offset u32 | crc32c u32
 * cursor   consumer-<n>.cursor                two slots of 32 B, written alternately
 *   slot    "SFCU" | sequence u64 | next index u64 | reserved u64 | crc32c u32
 * lock     buffer.lock                        the holder's pid in decimal
 * ```
 *
 * Integers are little-endian; u64 fields hold safe integers (below 2^53). The frame checksum
 * covers the length so an all-zero region (unwritten pages after a power loss) is never a valid
 * empty frame. This module does not decide what a bad frame means; recovery does.
 */
import { crc32c } from "./bufferChecksum.js"

/** Bytes of the segment header; the first frame starts here. */
export const SEGMENT_HEADER_BYTES = 32
/** Bytes of a frame header (checksum and length). */
export const FRAME_HEADER_BYTES = 8
/** Bytes of one index entry. */
export const INDEX_ENTRY_BYTES = 16
/** Bytes of one cursor slot; a cursor file holds two. */
export const CURSOR_SLOT_BYTES = 32
/** The format version written in every segment header. */
export const FORMAT_VERSION = 1
/** The lock file's name. */
export const LOCK_FILE = "buffer.lock"

const SEGMENT_MAGIC = Buffer.from("SFBUFSEG", "latin1")
const CURSOR_MAGIC = 0x55434653 // "SFCU" read as a little-endian u32
const DIGITS = 20
const SEGMENT_NAME = /^(\d{20})\.segment$/
const INDEX_NAME = /^(\d{20})\.index$/
const CURSOR_NAME = /^consumer-(\d{1,6})\.cursor$/
const TWO_32 = 0x1_0000_0000

/** The segment file name of the segment starting at `firstIndex`. */
export const segmentName = (firstIndex: number): string => `${String(firstIndex).padStart(DIGITS, "0")}.segment`

/** The index file name of the segment starting at `firstIndex`. */
export const indexName = (firstIndex: number): string => `${String(firstIndex).padStart(DIGITS, "0")}.index`

/** The cursor file name of consumer `consumer`. */
export const cursorName = (consumer: number): string => `consumer-${consumer}.cursor`

/** What a directory entry is, by its name. */
export type FileKind =
  | { readonly _tag: "Segment"; readonly firstIndex: number }
  | { readonly _tag: "Index"; readonly firstIndex: number }
  | { readonly _tag: "Cursor"; readonly consumer: number }
  | { readonly _tag: "Other" }

/** Classifies a directory entry by its name. */
export const classify = (name: string): FileKind => {
  const segment = SEGMENT_NAME.exec(name)
  if (segment !== null) return { _tag: "Segment", firstIndex: Number(segment[1]) }
  const index = INDEX_NAME.exec(name)
  if (index !== null) return { _tag: "Index", firstIndex: Number(index[1]) }
  const cursor = CURSOR_NAME.exec(name)
  if (cursor !== null) return { _tag: "Cursor", consumer: Number(cursor[1]) }
  return { _tag: "Other" }
}

/** Reads a little-endian u32 without bounds checks (callers check). */
export const readU32 = (bytes: Uint8Array, at: number): number =>
  (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0

/** Writes a little-endian u32. */
export const writeU32 = (bytes: Uint8Array, at: number, value: number): void => {
  bytes[at] = value & 0xff
  bytes[at + 1] = (value >>> 8) & 0xff
  bytes[at + 2] = (value >>> 16) & 0xff
  bytes[at + 3] = (value >>> 24) & 0xff
}

/** Reads a little-endian u64 holding a safe integer. */
export const readU64 = (bytes: Uint8Array, at: number): number => readU32(bytes, at) + readU32(bytes, at + 4) * TWO_32

/** Writes a safe non-negative integer as a little-endian u64. */
export const writeU64 = (bytes: Uint8Array, at: number, value: number): void => {
  writeU32(bytes, at, value >>> 0)
  writeU32(bytes, at + 4, Math.floor(value / TWO_32) >>> 0)
}

/** A parsed segment header. */
export interface SegmentHeader {
  readonly firstIndex: number
  readonly createdMillis: number
}

/** Encodes a segment header. */
export const encodeSegmentHeader = (header: SegmentHeader): Buffer => {
  const out = Buffer.alloc(SEGMENT_HEADER_BYTES)
  SEGMENT_MAGIC.copy(out, 0)
  writeU32(out, 8, FORMAT_VERSION)
  writeU64(out, 12, header.firstIndex)
  writeU64(out, 20, header.createdMillis)
  writeU32(out, 28, crc32c(out, 0, 28))
  return out
}

/** Decodes a segment header, or says what is wrong with it. */
export const decodeSegmentHeader = (bytes: Uint8Array): SegmentHeader | string => {
  if (bytes.length < SEGMENT_HEADER_BYTES) return "segment header is truncated"
  if (!SEGMENT_MAGIC.equals(bytes.subarray(0, 8))) return "not a segment file (bad magic)"
  if (crc32c(bytes, 0, 28) !== readU32(bytes, 28)) return "segment header checksum mismatch"
  const version = readU32(bytes, 8)
  if (version !== FORMAT_VERSION) return `unsupported segment format version ${version}`
  return { firstIndex: readU64(bytes, 12), createdMillis: readU64(bytes, 20) }
}

/**
 * Completes the frame whose payload (`length` bytes) is already at `at + 8`: writes its length
 * and checksum. Returns the frame's total size.
 */
export const sealFrame = (bytes: Uint8Array, at: number, length: number): number => {
  writeU32(bytes, at + 4, length)
  writeU32(bytes, at, crc32c(bytes, at + 4, at + FRAME_HEADER_BYTES + length))
  return FRAME_HEADER_BYTES + length
}

/** The payload length a frame header at `at` declares. */
export const frameLength = (bytes: Uint8Array, at: number): number => readU32(bytes, at + 4)

/** Whether the whole frame at `at` (header and `length` payload bytes, all present) matches its checksum. */
export const frameIntact = (bytes: Uint8Array, at: number, length: number): boolean =>
  crc32c(bytes, at + 4, at + FRAME_HEADER_BYTES + length) === readU32(bytes, at)

/** One sparse index entry: the element `index` starts at byte `offset` of its segment. */
export interface IndexEntry {
  readonly index: number
  readonly offset: number
}

/** Encodes an index entry into `out` at `at`. */
export const encodeIndexEntry = (out: Uint8Array, at: number, entry: IndexEntry): void => {
  writeU64(out, at, entry.index)
  writeU32(out, at + 8, entry.offset)
  writeU32(out, at + 12, crc32c(out, at, at + 12))
}

/**
 * Decodes the valid prefix of an index file: entries stop at the first bad checksum, a short
 * tail, or an entry that does not move forward (a torn or stale index only costs a longer scan).
 */
export const decodeIndexEntries = (bytes: Uint8Array): Array<IndexEntry> => {
  const out: Array<IndexEntry> = []
  // Bounded by the bytes given, which the caller bounds by the segment's size.
  for (let at = 0; at + INDEX_ENTRY_BYTES <= bytes.length; at += INDEX_ENTRY_BYTES) {
    if (crc32c(bytes, at, at + 12) !== readU32(bytes, at + 12)) break
    const entry = { index: readU64(bytes, at), offset: readU32(bytes, at + 8) }
    const previous = out[out.length - 1]
    if (previous !== undefined && (entry.index <= previous.index || entry.offset <= previous.offset)) break
    out.push(entry)
  }
  return out
}

/** A cursor slot: `next` is the index of the first element not yet committed. */
export interface CursorRecord {
  readonly sequence: number
  readonly next: number
}

/** Encodes a cursor slot into `out` at `at`. */
export const encodeCursor = (out: Uint8Array, at: number, record: CursorRecord): void => {
  writeU32(out, at, CURSOR_MAGIC)
  writeU64(out, at + 4, record.sequence)
  writeU64(out, at + 12, record.next)
  writeU64(out, at + 20, 0)
  writeU32(out, at + 28, crc32c(out, at, at + 28))
}

/** The newest valid slot of a cursor file, or `undefined` when neither slot is valid. */
export const decodeCursor = (bytes: Uint8Array): CursorRecord | undefined => {
  let best: CursorRecord | undefined
  for (let at = 0; at + CURSOR_SLOT_BYTES <= bytes.length && at < 2 * CURSOR_SLOT_BYTES; at += CURSOR_SLOT_BYTES) {
    if (readU32(bytes, at) !== CURSOR_MAGIC || crc32c(bytes, at, at + 28) !== readU32(bytes, at + 28)) continue
    const record = { sequence: readU64(bytes, at + 4), next: readU64(bytes, at + 12) }
    if (best === undefined || record.sequence > best.sequence) best = record
  }
  return best
}
