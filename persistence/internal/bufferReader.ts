/**
 * One consumer of the persistent buffer: its read position, its commit cursor (persisted in its
 * own file), and the reading of frames from segment files `readChunkBytes` at a time. Every frame
 * is checked against its checksum and every sealed segment must end exactly at its last element
 * (assertions on the read side); a mismatch is `BufferCorrupt`.
 *
 * It does not know which elements are published; the engine passes that bound in. Reading is
 * synchronous (page-cache copies), so a take never leaves the reader half-moved.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { BufferCorrupt, BufferIoError, CommitOrder, ElementDecodeError, InvalidArgument } from "../BufferError.js"
import { CodecFailure } from "./bufferCodec.js"
import { attempt, ioError } from "./bufferFiles.js"
import {
  CURSOR_SLOT_BYTES,
  cursorName,
  decodeCursor,
  encodeCursor,
  FRAME_HEADER_BYTES,
  frameIntact,
  frameLength,
  SEGMENT_HEADER_BYTES,
  segmentName
} from "./bufferFormat.js"
import type { ResolvedOptions } from "./bufferOptions.js"
import { readIndexEntries, type SegmentInfo } from "./bufferRecovery.js"

/** Elements read in one call: `values[i]` is element `first + i`. */
export interface ReadBatch<A> {
  readonly first: number
  readonly values: Array<A>
}

/** Errors of reading. */
export type ReadError = BufferCorrupt | BufferIoError | ElementDecodeError

/** A consumer's position and cursor. All methods are synchronous. */
export class ConsumerReader<A> {
  /** The index of the next element this consumer reads. */
  next: number
  /** Elements below this index are committed (in memory). */
  committed: number
  /** The committed position last written to the cursor file. */
  persisted: number
  /** The persisted position known to be durable (fsynced, or written under `"none"`). */
  durable: number
  /** Whether the cursor file has writes not yet fsynced. */
  dirty = false
  private segment: SegmentInfo | undefined = undefined
  private segmentEnd = Number.POSITIVE_INFINITY
  private fd: number | undefined = undefined
  private chunk: Buffer
  private chunkStart = 0
  private chunkLength = 0
  private at = 0
  private sequence: number
  private readonly slot = Buffer.alloc(CURSOR_SLOT_BYTES)

  private constructor(
    private readonly options: ResolvedOptions<A>,
    private readonly segments: ReadonlyArray<SegmentInfo>,
    readonly consumer: number,
    private readonly cursorFd: number,
    next: number,
    sequence: number
  ) {
    this.next = next
    this.committed = next
    this.persisted = next
    this.durable = next
    this.sequence = sequence
    this.chunk = Buffer.allocUnsafe(options.readChunkBytes)
  }

  /** Opens consumer `consumer` at `next`, creating its cursor file when missing. */
  static open<A>(
    options: ResolvedOptions<A>,
    segments: ReadonlyArray<SegmentInfo>,
    consumer: number,
    next: number
  ): ConsumerReader<A> | BufferIoError {
    const path = Path.join(options.directory, cursorName(consumer))
    const opened = attempt(options.directory, `open ${cursorName(consumer)}`, () => {
      const fd = Fs.openSync(path, Fs.existsSync(path) ? "r+" : "w+")
      const bytes = Buffer.alloc(2 * CURSOR_SLOT_BYTES)
      Fs.readSync(fd, bytes, 0, bytes.length, 0)
      return { fd, sequence: decodeCursor(bytes)?.sequence ?? 0 }
    })
    if (opened instanceof BufferIoError) return opened
    const reader = new ConsumerReader(options, segments, consumer, opened.fd, next, opened.sequence)
    // Write the (possibly moved) starting position at once, so the file always holds a valid slot.
    reader.persisted = -1
    const persisted = reader.persist()
    return persisted instanceof BufferIoError ? persisted : reader
  }

  /**
   * Reads up to `max` elements below `published`, decoding each. When an element fails after
   * others were read, the others are returned and the failure comes at the next call.
   */
  read(max: number, published: number, decode: ResolvedOptions<A>["codec"]["decode"]): ReadBatch<A> | ReadError {
    const first = this.next
    const values: Array<A> = []
    const limit = Math.min(max, published - this.next)
    while (values.length < limit) {
      const start = this.frame()
      if (typeof start !== "number") return values.length > 0 ? { first, values } : start
      const length = frameLength(this.chunk, start)
      const value = decode(this.chunk, start + FRAME_HEADER_BYTES, start + FRAME_HEADER_BYTES + length)
      if (value instanceof CodecFailure) {
        const error = new ElementDecodeError({
          directory: this.options.directory,
          codec: this.options.codec.name,
          consumer: this.consumer,
          index: this.next,
          detail: value.detail
        })
        return values.length > 0 ? { first, values } : error
      }
      values.push(value)
      this.at += FRAME_HEADER_BYTES + length
      this.next++
    }
    return { first, values }
  }

  /** Positions at element `next` and returns the chunk offset of its intact frame. */
  private frame(): number | BufferCorrupt | BufferIoError {
    if (this.segment === undefined || this.next >= this.currentEnd()) {
      const moved = this.openFor(this.next)
      if (moved !== undefined) return moved
    }
    const header = this.ensure(FRAME_HEADER_BYTES)
    if (header !== undefined) return header
    const start = this.at - this.chunkStart
    const length = frameLength(this.chunk, start)
    if (length > this.options.elementBytesMax) return this.corrupt(`frame length ${length} exceeds elementBytesMax`)
    const body = this.ensure(FRAME_HEADER_BYTES + length)
    if (body !== undefined) return body
    const at = this.at - this.chunkStart
    return frameIntact(this.chunk, at, length) ? at : this.corrupt("frame checksum mismatch")
  }

  /** The first index past the current segment; infinite while it is the active one. */
  private currentEnd(): number {
    if (this.segmentEnd === Number.POSITIVE_INFINITY && this.segments[this.segments.length - 1] !== this.segment) {
      const after = this.segments.find((segment) => segment.firstIndex > this.segment!.firstIndex)
      if (after !== undefined) this.segmentEnd = after.firstIndex
    }
    return this.segmentEnd
  }

  /** Makes `need` bytes from `at` available in the chunk, reading from the segment file. */
  private ensure(need: number): void | BufferCorrupt | BufferIoError {
    if (this.at + need <= this.chunkStart + this.chunkLength) return
    // A frame larger than the chunk gets a buffer of its own size, bounded by elementBytesMax.
    if (need > this.chunk.length) this.chunk = Buffer.allocUnsafe(need)
    else if (this.chunk.length > this.options.readChunkBytes) this.chunk = Buffer.allocUnsafe(this.options.readChunkBytes)
    this.chunkStart = this.at
    try {
      this.chunkLength = 0
      // Loop for short reads; stops at the end of the file.
      while (this.chunkLength < need) {
        const read = Fs.readSync(this.fd!, this.chunk, this.chunkLength, this.chunk.length - this.chunkLength, this.at + this.chunkLength)
        if (read === 0) break
        this.chunkLength += read
      }
    } catch (cause) {
      return ioError(this.options.directory, `read ${segmentName(this.segment!.firstIndex)}`, cause)
    }
    if (this.chunkLength < need) return this.corrupt("segment ends inside a published element")
  }

  private corrupt(reason: string): BufferCorrupt {
    return new BufferCorrupt({ directory: this.options.directory, file: segmentName(this.segment!.firstIndex), offset: this.at, reason })
  }

  /** Opens the segment holding `index` and positions at its frame (via the sparse index). */
  private openFor(index: number): void | BufferCorrupt | BufferIoError {
    if (this.segment !== undefined && this.segmentEnd === index && this.at !== this.segment.bytes) {
      return this.corrupt(`a sealed segment has bytes past its last element (${this.segment.bytes - this.at})`)
    }
    this.closeSegment()
    let found: SegmentInfo | undefined
    for (let i = this.segments.length - 1; i >= 0 && found === undefined; i--) {
      if (this.segments[i]!.firstIndex <= index) found = this.segments[i]
    }
    if (found === undefined) {
      return new BufferCorrupt({ directory: this.options.directory, file: "", offset: 0, reason: `no segment holds element ${index}` })
    }
    const segment = found
    const fd = attempt(this.options.directory, `open ${segmentName(segment.firstIndex)}`, () =>
      Fs.openSync(Path.join(this.options.directory, segmentName(segment.firstIndex)), "r"))
    if (fd instanceof BufferIoError) return fd
    this.segment = segment
    this.fd = fd
    this.segmentEnd = Number.POSITIVE_INFINITY
    this.chunkStart = 0
    this.chunkLength = 0
    this.at = SEGMENT_HEADER_BYTES
    if (index === segment.firstIndex) return
    return this.seek(segment, index)
  }

  /** Moves from the nearest index entry to element `index`, checking each frame skipped. */
  private seek(segment: SegmentInfo, index: number): void | BufferCorrupt | BufferIoError {
    const entries = readIndexEntries(this.options.directory, segment)
    if (entries instanceof BufferIoError) return entries
    let current = segment.firstIndex
    for (const entry of entries.entries) {
      if (entry.index > index) break
      current = entry.index
      this.at = entry.offset
    }
    // Bounded by the index spacing plus one write batch when the index is intact, by the segment otherwise.
    while (current < index) {
      const header = this.ensure(FRAME_HEADER_BYTES)
      if (header !== undefined) return header
      const length = frameLength(this.chunk, this.at - this.chunkStart)
      if (length > this.options.elementBytesMax) return this.corrupt(`frame length ${length} exceeds elementBytesMax`)
      const body = this.ensure(FRAME_HEADER_BYTES + length)
      if (body !== undefined) return body
      if (!frameIntact(this.chunk, this.at - this.chunkStart, length)) return this.corrupt("frame checksum mismatch")
      this.at += FRAME_HEADER_BYTES + length
      current++
    }
  }

  private closeSegment(): void {
    if (this.fd !== undefined) Fs.closeSync(this.fd)
    this.fd = undefined
    this.segment = undefined
  }

  /**
   * Commits element `index` (delivered to this consumer). Strict order: it must be the next
   * uncommitted index. Lenient: a later index moves the cursor past it (treating the skipped ones
   * as done), an earlier one is ignored.
   */
  commit(index: number, strict: boolean): void | CommitOrder | InvalidArgument {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.next) {
      return new InvalidArgument({ field: "index", message: `${index} was not delivered to consumer ${this.consumer}` })
    }
    if (strict && index !== this.committed) {
      return new CommitOrder({ directory: this.options.directory, consumer: this.consumer, expected: this.committed, received: index })
    }
    if (index >= this.committed) this.committed = index + 1
  }

  /** Writes the committed position to the cursor file when it moved (one 32-byte positional write). */
  persist(): void | BufferIoError {
    if (this.committed === this.persisted) return
    this.sequence++
    encodeCursor(this.slot, 0, { sequence: this.sequence, next: this.committed })
    const written = attempt(this.options.directory, `write ${cursorName(this.consumer)}`, () => {
      // Alternate slots: a torn write damages only the slot being written, never the last good one.
      Fs.writeSync(this.cursorFd, this.slot, 0, CURSOR_SLOT_BYTES, (this.sequence % 2) * CURSOR_SLOT_BYTES)
    })
    if (written instanceof BufferIoError) return written
    this.persisted = this.committed
    this.dirty = true
    if (this.options.durability === "none") this.durable = this.persisted
  }

  /** The cursor file's descriptor, for fsync. */
  get fileDescriptor(): number {
    return this.cursorFd
  }

  /** Closes the segment and cursor files (the engine persists first). */
  close(): void {
    this.closeSegment()
    Fs.closeSync(this.cursorFd)
  }
}
