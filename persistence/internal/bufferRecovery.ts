/**
 * Recovery of a buffer directory at open: lists segments, checks every segment header, finds the
 * end of the last segment by scanning forward from its last index entry, cuts a torn tail, and
 * reads each consumer's cursor. It runs once, under the lock, before anything is written.
 *
 * The rule that tells a torn tail from corruption: index entries are written only after the data
 * they point at reached the durability point of the policy. So the frame at the last index entry
 * must be intact (otherwise `BufferCorrupt`), and only frames after it can be torn. Sealed
 * segments are not scanned here (that would read the whole buffer); readers verify every frame's
 * checksum and fail with `BufferCorrupt` when one does not match.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { BufferCorrupt, BufferIoError } from "../BufferError.js"
import { attempt, readSmallFile } from "./bufferFiles.js"
import {
  classify,
  CURSOR_SLOT_BYTES,
  cursorName,
  decodeCursor,
  decodeIndexEntries,
  decodeSegmentHeader,
  FRAME_HEADER_BYTES,
  frameIntact,
  frameLength,
  INDEX_ENTRY_BYTES,
  type IndexEntry,
  indexName,
  SEGMENT_HEADER_BYTES,
  segmentName
} from "./bufferFormat.js"
import type { ResolvedOptions } from "./bufferOptions.js"

/** A segment file as the engine tracks it. */
export interface SegmentInfo {
  readonly firstIndex: number
  /** File size in bytes (header and frames). */
  bytes: number
  readonly createdMillis: number
}

/** The state recovery hands to the engine. */
export interface Recovered {
  /** Segments in index order; the last one is the active segment, appended to next. */
  readonly segments: Array<SegmentInfo>
  readonly nextIndex: number
  /** Byte offset of the last index entry of the active segment, or of its first frame when it has none. */
  readonly lastIndexedOffset: number
  readonly tornTail: TornTail | undefined
  /** Per consumer, the next index to deliver, and a note when it had to be moved. */
  readonly cursors: ReadonlyArray<{ readonly next: number; readonly note: string | undefined }>
}

type Failure = BufferCorrupt | BufferIoError

interface Listing {
  readonly segments: Array<number>
  readonly indexes: Set<number>
}

const list = (directory: string): Listing | BufferIoError => {
  const names = attempt(directory, "list directory", () => Fs.readdirSync(directory))
  if (names instanceof BufferIoError) return names
  const segments: Array<number> = []
  const indexes = new Set<number>()
  for (const name of names) {
    // A segment being created when the process died: it never had a name of its own yet.
    if (name.endsWith(".segment.tmp")) {
      const removed = attempt(directory, "remove unfinished segment", () => Fs.rmSync(Path.join(directory, name), { force: true }))
      if (removed instanceof BufferIoError) return removed
      continue
    }
    const kind = classify(name)
    if (kind._tag === "Segment") segments.push(kind.firstIndex)
    else if (kind._tag === "Index") indexes.add(kind.firstIndex)
  }
  segments.sort((a, b) => a - b)
  return { segments, indexes }
}

/**
 * Creates an empty segment (header only) atomically: the header is written (and under a durable
 * policy fsynced) aside, then linked into place, so a crash never leaves a segment without a
 * whole header. `replace` overwrites an existing segment whose header was torn.
 */
export const createSegment = (directory: string, firstIndex: number, header: Buffer, durable: boolean, replace = false): SegmentInfo | BufferIoError =>
  attempt(directory, `create ${segmentName(firstIndex)}`, () => {
    const path = Path.join(directory, segmentName(firstIndex))
    const aside = `${path}.tmp`
    // The index file first: a segment without an index is fine (recovery scans from the start).
    Fs.writeFileSync(Path.join(directory, indexName(firstIndex)), new Uint8Array(0))
    const fd = Fs.openSync(aside, "w")
    try {
      Fs.writeSync(fd, header, 0, header.length, 0)
      if (durable) Fs.fsyncSync(fd)
    } finally {
      Fs.closeSync(fd)
    }
    if (replace) Fs.renameSync(aside, path)
    else {
      Fs.linkSync(aside, path)
      Fs.rmSync(aside)
    }
    return { firstIndex, bytes: header.length, createdMillis: Date.now() }
  })

type TornTail = { readonly file: string; readonly offset: number; readonly bytesCut: number }

/**
 * Reads and checks the header of every segment; returns their infos. The last segment may have
 * a torn header only if it holds no frame (a power loss right after its creation): its header is
 * then written again, and reported as a torn tail. Any other bad header is `BufferCorrupt`.
 */
const readHeaders = <A>(options: ResolvedOptions<A>, firstIndexes: ReadonlyArray<number>, newHeader: (firstIndex: number) => Buffer) => {
  const { directory } = options
  const out: Array<SegmentInfo> = []
  let torn: TornTail | undefined
  for (const firstIndex of firstIndexes) {
    const name = segmentName(firstIndex)
    const info = attempt(directory, `read ${name}`, () => {
      const fd = Fs.openSync(Path.join(directory, name), "r")
      try {
        const header = Buffer.alloc(SEGMENT_HEADER_BYTES)
        const read = Fs.readSync(fd, header, 0, SEGMENT_HEADER_BYTES, 0)
        return { header: header.subarray(0, read), bytes: Fs.fstatSync(fd).size }
      } finally {
        Fs.closeSync(fd)
      }
    })
    if (info instanceof BufferIoError) return info
    const header = decodeSegmentHeader(info.header)
    if (typeof header === "string" && firstIndex === firstIndexes[firstIndexes.length - 1] && info.bytes <= SEGMENT_HEADER_BYTES) {
      const rewritten = createSegment(directory, firstIndex, newHeader(firstIndex), options.durability !== "none", true)
      if (rewritten instanceof BufferIoError) return rewritten
      torn = { file: name, offset: 0, bytesCut: info.bytes }
      out.push(rewritten)
      continue
    }
    if (typeof header === "string") return new BufferCorrupt({ directory, file: name, offset: 0, reason: header })
    if (header.firstIndex !== firstIndex) {
      return new BufferCorrupt({ directory, file: name, offset: 0, reason: `header says first index ${header.firstIndex}` })
    }
    out.push({ firstIndex, bytes: info.bytes, createdMillis: header.createdMillis })
  }
  return { segments: out, torn }
}

interface TailScan {
  readonly count: number
  readonly end: number
}

/**
 * Counts the intact frames of a segment from `offset` (where element `index` starts) to the first
 * frame that is short, too long or fails its checksum; reads `chunkBytes` at a time.
 */
export const scanFrames = (
  fd: number,
  offset: number,
  fileBytes: number,
  chunkBytes: number,
  elementBytesMax: number
): TailScan => {
  let chunk = Buffer.allocUnsafe(chunkBytes)
  let chunkStart = offset
  let chunkLength = 0
  let at = offset
  let count = 0
  // Each round handles one frame; the loop ends at the end of the file at the latest.
  while (at < fileBytes) {
    let need = FRAME_HEADER_BYTES
    for (let pass = 0; pass < 2; pass++) {
      if (at + need > chunkStart + chunkLength) {
        if (need > chunk.length) chunk = Buffer.allocUnsafe(need)
        chunkStart = at
        chunkLength = Fs.readSync(fd, chunk, 0, Math.min(chunk.length, fileBytes - at), at)
        if (chunkLength < need) return { count, end: at }
      }
      if (pass === 0) {
        const length = frameLength(chunk, at - chunkStart)
        if (length > elementBytesMax) return { count, end: at }
        need = FRAME_HEADER_BYTES + length
      }
    }
    if (!frameIntact(chunk, at - chunkStart, need - FRAME_HEADER_BYTES)) return { count, end: at }
    at += need
    count++
  }
  return { count, end: at }
}

/**
 * The valid entries of a segment's index file, or `undefined` when it has none. The file is
 * bounded by the segment's size (at most one entry per 4 KiB, the smallest spacing), and entries
 * stop at the first one that is damaged or outside the segment.
 */
export const readIndexEntries = (directory: string, segment: SegmentInfo): { entries: Array<IndexEntry>; fileBytes: number } | BufferIoError => {
  const bytes = readSmallFile(directory, indexName(segment.firstIndex), (Math.floor(segment.bytes / 4096) + 2) * INDEX_ENTRY_BYTES)
  if (bytes instanceof BufferIoError) return bytes
  if (bytes === undefined) return { entries: [], fileBytes: 0 }
  const entries = decodeIndexEntries(bytes)
  const inside = entries.findIndex((entry) => entry.offset < SEGMENT_HEADER_BYTES || entry.index < segment.firstIndex)
  return { entries: inside === -1 ? entries : entries.slice(0, inside), fileBytes: bytes.length }
}

/** Finds the end of the active segment, cuts a torn tail, and trims a torn index file. */
const recoverTail = <A>(options: ResolvedOptions<A>, segment: SegmentInfo) => {
  const { directory } = options
  const name = segmentName(segment.firstIndex)
  const index = readIndexEntries(directory, segment)
  if (index instanceof BufferIoError) return index
  const { entries } = index
  const last = entries[entries.length - 1] ?? { index: segment.firstIndex, offset: SEGMENT_HEADER_BYTES }
  const scanned = attempt(directory, `recover ${name}`, () => {
    const fd = Fs.openSync(Path.join(directory, name), "r+")
    try {
      const scan = scanFrames(fd, last.offset, segment.bytes, options.readChunkBytes, options.elementBytesMax)
      if (scan.end < segment.bytes) Fs.ftruncateSync(fd, scan.end)
      if (index.fileBytes !== entries.length * INDEX_ENTRY_BYTES) {
        Fs.truncateSync(Path.join(directory, indexName(segment.firstIndex)), entries.length * INDEX_ENTRY_BYTES)
      }
      return scan
    } finally {
      Fs.closeSync(fd)
    }
  })
  if (scanned instanceof BufferIoError) return scanned
  if (entries.length > 0 && scanned.count === 0) {
    return new BufferCorrupt({ directory, file: name, offset: last.offset, reason: "the frame at the last durable index entry is damaged" })
  }
  const tornTail = scanned.end < segment.bytes ? { file: name, offset: scanned.end, bytesCut: segment.bytes - scanned.end } : undefined
  segment.bytes = scanned.end
  return { nextIndex: last.index + scanned.count, lastIndexedOffset: last.offset, tornTail }
}

/** Reads each consumer's cursor and moves it into the retained range `[firstIndex, nextIndex]`. */
const readCursors = (directory: string, consumers: number, firstIndex: number, nextIndex: number) => {
  const out: Array<{ next: number; note: string | undefined }> = []
  for (let consumer = 0; consumer < consumers; consumer++) {
    const bytes = readSmallFile(directory, cursorName(consumer), 2 * CURSOR_SLOT_BYTES)
    if (bytes instanceof BufferIoError) return bytes
    const record = bytes === undefined ? undefined : decodeCursor(bytes)
    if (record === undefined) {
      // An empty file: the consumer was created and killed before its first write, a fresh start.
      const unreadable = bytes !== undefined && bytes.length > 0
      out.push({ next: firstIndex, note: unreadable ? "cursor file unreadable; starting at the first retained element" : undefined })
    } else if (record.next < firstIndex) {
      out.push({ next: firstIndex, note: `cursor ${record.next} was behind the retained elements; moved to ${firstIndex}` })
    } else if (record.next > nextIndex) {
      out.push({ next: nextIndex, note: `cursor ${record.next} was past the last element (lost in a machine crash?); moved to ${nextIndex}` })
    } else out.push({ next: record.next, note: undefined })
  }
  return out
}

/** Recovers the directory (already locked): the segments, the next index, the cursors. */
export const recover = <A>(options: ResolvedOptions<A>, newHeader: (firstIndex: number) => Buffer): Recovered | Failure => {
  const { directory } = options
  const listing = list(directory)
  if (listing instanceof BufferIoError) return listing
  // An index without its segment is the leftover of an interrupted space reclaim.
  for (const firstIndex of listing.indexes) {
    if (!listing.segments.includes(firstIndex)) {
      const removed = attempt(directory, "remove orphan index", () => Fs.rmSync(Path.join(directory, indexName(firstIndex)), { force: true }))
      if (removed instanceof BufferIoError) return removed
    }
  }
  let segments: Array<SegmentInfo>
  let tornHeader: TornTail | undefined
  if (listing.segments.length === 0) {
    const start = readCursors(directory, options.consumers, 0, Number.MAX_SAFE_INTEGER)
    if (start instanceof BufferIoError) return start
    // Never reuse indexes that cursors have already passed, even when the segments are gone.
    const firstIndex = start.reduce((max, cursor) => Math.max(max, cursor.next), 0)
    const created = createSegment(directory, firstIndex, newHeader(firstIndex), options.durability !== "none")
    if (created instanceof BufferIoError) return created
    segments = [created]
  } else {
    const headers = readHeaders(options, listing.segments, newHeader)
    if (headers instanceof BufferIoError || headers instanceof BufferCorrupt) return headers
    segments = headers.segments
    tornHeader = headers.torn
  }
  const active = segments[segments.length - 1]!
  const tail = recoverTail(options, active)
  if (tail instanceof BufferIoError || tail instanceof BufferCorrupt) return tail
  const cursors = readCursors(directory, options.consumers, segments[0]!.firstIndex, tail.nextIndex)
  if (cursors instanceof BufferIoError) return cursors
  return { segments, nextIndex: tail.nextIndex, lastIndexedOffset: tail.lastIndexedOffset, tornTail: tornHeader ?? tail.tornTail, cursors }
}
