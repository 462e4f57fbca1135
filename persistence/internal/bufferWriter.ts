/**
 * The append side of the persistent buffer: frames are encoded straight into one reusable batch
 * buffer and written to the active segment with one positional write per batch; segments roll
 * by size (never past `segmentBytesMax`) or age; sparse index entries are written once the data
 * they point at is durable. It does not decide when to fsync or acknowledge (the engine does).
 *
 * Why one batch buffer and `writeSync`: measured on this machine with 108-byte frames, copying
 * into a 1 MiB buffer and writing it synchronously reached 15-22M frames/s into the page cache;
 * the same with two buffers and asynchronous writes was no faster (10-19M), `writev` of one
 * buffer per frame reached 3-4M (an allocation per frame, 1,024 vectors per call), and a write
 * stream 1.3-3M. Node has no mmap. A synchronous page-cache write also keeps every state change
 * atomic on the event loop; only fsync, which can take milliseconds, runs off it.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { BufferIoError } from "../BufferError.js"
import { attempt, ioError, syncDirectory } from "./bufferFiles.js"
import {
  encodeIndexEntry,
  encodeSegmentHeader,
  FRAME_HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  type IndexEntry,
  indexName,
  sealFrame,
  SEGMENT_HEADER_BYTES,
  segmentName
} from "./bufferFormat.js"
import type { ResolvedOptions } from "./bufferOptions.js"
import { createSegment, type SegmentInfo } from "./bufferRecovery.js"

/** What the writer tells the engine. */
export interface WriterHooks {
  /** Frames below `count` were just written to the operating system. */
  readonly written: (count: number) => void
  /** Everything below `count` was just made durable by a synchronous fsync (at a roll). */
  readonly durableThrough: (count: number) => void
  /** A segment was sealed; older segments may now be reclaimable. */
  readonly rolled: () => void
}

/** Index entries waiting for their data to become durable; more are dropped (only the index gets sparser). */
const INDEX_CANDIDATES_MAX = 1024

/** The segment header of a new segment. */
export const newSegmentHeader = (firstIndex: number): Buffer => encodeSegmentHeader({ firstIndex, createdMillis: Date.now() })

/** Appends frames to the active segment. All methods run synchronously on the event loop. */
export class SegmentWriter<A> {
  private fd: number
  private indexFd: number
  private indexBytes: number
  private readonly batch: Buffer
  private used = 0
  private batchFirstIndex: number
  /** A staged frame too large for the batch buffer, with its header space. */
  private large: Buffer | undefined = undefined
  private lastIndexedOffset: number
  private readonly candidates: Array<IndexEntry> = []
  /** File descriptors of sealed segments whose close waits for an fsync in flight. */
  private readonly retired: Array<number> = []
  /** Index of the next frame committed. */
  nextIndex: number
  /** Frames below this index have been written to the operating system. */
  writtenIndex: number
  /** Whether an fsync in flight may still use retired descriptors. */
  syncInFlight = false

  private constructor(
    private readonly options: ResolvedOptions<A>,
    private readonly segments: Array<SegmentInfo>,
    private readonly hooks: WriterHooks,
    fds: { readonly fd: number; readonly indexFd: number; readonly indexBytes: number },
    nextIndex: number,
    lastIndexedOffset: number
  ) {
    this.fd = fds.fd
    this.indexFd = fds.indexFd
    this.indexBytes = fds.indexBytes
    this.batch = Buffer.allocUnsafe(options.writeBatchBytes)
    this.nextIndex = nextIndex
    this.writtenIndex = nextIndex
    this.batchFirstIndex = nextIndex
    this.lastIndexedOffset = lastIndexedOffset
  }

  /** Opens the active (last) segment for appending. */
  static open<A>(
    options: ResolvedOptions<A>,
    segments: Array<SegmentInfo>,
    hooks: WriterHooks,
    nextIndex: number,
    lastIndexedOffset: number
  ): SegmentWriter<A> | BufferIoError {
    const fds = openSegment(options.directory, segments[segments.length - 1]!)
    if (fds instanceof BufferIoError) return fds
    return new SegmentWriter(options, segments, hooks, fds, nextIndex, lastIndexedOffset)
  }

  /** The segment being appended to. */
  get active(): SegmentInfo {
    return this.segments[this.segments.length - 1]!
  }

  /** The descriptor of the active segment, for fsync. */
  get activeFd(): number {
    return this.fd
  }

  /** Bytes staged in memory and not yet written. */
  get pendingBytes(): number {
    return this.used
  }

  /**
   * Places an element's payload after the batch (flushing first when it may not fit) and returns
   * its length in bytes. Nothing is committed: `commitStaged` does that, or the next `stage`
   * overwrites it. A payload longer than `elementBytesMax` is measured but not staged.
   */
  stage(payload: Uint8Array | string): number | BufferIoError {
    this.large = undefined
    const capacity = this.batch.length - FRAME_HEADER_BYTES
    if (typeof payload === "string") {
      // UTF-8 needs at most 3 bytes per UTF-16 unit: when that fits, encode without measuring.
      if (this.used + payload.length * 3 <= capacity) return this.batch.write(payload, this.used + FRAME_HEADER_BYTES, "utf8")
      const length = Buffer.byteLength(payload, "utf8")
      if (length > this.options.elementBytesMax) return length
      const room = this.makeRoom(length)
      if (room instanceof BufferIoError) return room
      if (length <= capacity) return this.batch.write(payload, this.used + FRAME_HEADER_BYTES, "utf8")
      this.large = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length)
      this.large.write(payload, FRAME_HEADER_BYTES, "utf8")
      return length
    }
    const length = payload.length
    if (length > this.options.elementBytesMax) return length
    const room = this.makeRoom(length)
    if (room instanceof BufferIoError) return room
    if (length <= capacity) {
      this.batch.set(payload, this.used + FRAME_HEADER_BYTES)
      return length
    }
    this.large = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length)
    this.large.set(payload, FRAME_HEADER_BYTES)
    return length
  }

  private makeRoom(length: number): void | BufferIoError {
    if (this.used + FRAME_HEADER_BYTES + length > this.batch.length) return this.flush()
  }

  /** Whether a frame of `frameBytes` would push the active segment past its maximum (when it holds any frame). */
  needsRoll(frameBytes: number): boolean {
    const size = this.active.bytes + this.used
    return size > SEGMENT_HEADER_BYTES && size + frameBytes > this.options.segmentBytesMax
  }

  /** Whether the active segment holds frames and is older than `segmentRollMillis`. */
  isOld(nowMillis: number): boolean {
    const rollMillis = this.options.segmentRollMillis
    return rollMillis !== undefined && this.active.bytes + this.used > SEGMENT_HEADER_BYTES &&
      nowMillis - this.active.createdMillis >= rollMillis
  }

  /** Commits the staged payload of `length` bytes as the frame of element `nextIndex`. */
  commitStaged(length: number): void | BufferIoError {
    if (this.large !== undefined) {
      const large = this.large
      this.large = undefined
      const flushed = this.flush()
      if (flushed instanceof BufferIoError) return flushed
      sealFrame(large, 0, length)
      this.nextIndex++
      return this.writeOut(large, large.length)
    }
    sealFrame(this.batch, this.used, length)
    this.used += FRAME_HEADER_BYTES + length
    this.nextIndex++
  }

  /** Writes the batch to the active segment. */
  flush(): void | BufferIoError {
    if (this.used === 0) return
    const bytes = this.used
    this.used = 0
    return this.writeOut(this.batch, bytes)
  }

  private writeOut(source: Buffer, bytes: number): void | BufferIoError {
    const segment = this.active
    const offset = segment.bytes
    // Asserted before the write: rolls keep every segment within its maximum (a bug otherwise).
    if (offset + bytes > this.options.segmentBytesMax) {
      throw new Error(`PersistentBuffer invariant broken: ${segmentName(segment.firstIndex)} would reach ${offset + bytes} bytes`)
    }
    try {
      writeFully(this.fd, source, bytes, offset)
    } catch (cause) {
      return ioError(this.options.directory, `write ${segmentName(segment.firstIndex)}`, cause)
    }
    segment.bytes += bytes
    if (offset - this.lastIndexedOffset >= this.options.indexSpacingBytes && this.candidates.length < INDEX_CANDIDATES_MAX) {
      this.candidates.push({ index: this.batchFirstIndex, offset })
      this.lastIndexedOffset = offset
    }
    this.batchFirstIndex = this.nextIndex
    this.writtenIndex = this.nextIndex
    this.hooks.written(this.writtenIndex)
  }

  /** Appends the index entries whose frames are below `durableIndex` (that is, durable). */
  writeIndexEntries(durableIndex: number): void | BufferIoError {
    let count = 0
    while (count < this.candidates.length && this.candidates[count]!.index < durableIndex) count++
    if (count === 0) return
    const out = Buffer.allocUnsafe(count * INDEX_ENTRY_BYTES)
    for (let i = 0; i < count; i++) encodeIndexEntry(out, i * INDEX_ENTRY_BYTES, this.candidates[i]!)
    this.candidates.splice(0, count)
    const written = attempt(this.options.directory, `write ${indexName(this.active.firstIndex)}`, () =>
      writeFully(this.indexFd, out, out.length, this.indexBytes))
    if (written instanceof BufferIoError) return written
    this.indexBytes += out.length
  }

  /**
   * Seals the active segment and starts a new one at `nextIndex`, keeping a payload of
   * `stagedLength` bytes staged (0 when none). Under `interval` and `batch`
   * the sealed segment is fsynced first and the new file's directory entry after, so that after a
   * machine crash only the last segment can have a torn tail (recovery scans only that one).
   */
  roll(stagedLength: number): void | BufferIoError {
    const staged = this.used
    const flushed = this.flush()
    if (flushed instanceof BufferIoError) return flushed
    // A payload staged after the batch moves to the front of the emptied buffer.
    if (this.large === undefined && stagedLength > 0) {
      this.batch.copyWithin(FRAME_HEADER_BYTES, staged + FRAME_HEADER_BYTES, staged + FRAME_HEADER_BYTES + stagedLength)
    }
    const durable = this.options.durability !== "none"
    const sealed = attempt(this.options.directory, `seal ${segmentName(this.active.firstIndex)}`, () => {
      if (durable) Fs.fsyncSync(this.fd)
    })
    if (sealed instanceof BufferIoError) return sealed
    if (durable) this.hooks.durableThrough(this.writtenIndex)
    // Every frame of the sealed segment is durable now (or, under "none", as durable as it gets).
    const indexed = this.writeIndexEntries(Number.MAX_SAFE_INTEGER)
    if (indexed instanceof BufferIoError) return indexed
    this.retire(this.fd)
    this.retire(this.indexFd)
    const segment = createSegment(this.options.directory, this.nextIndex, newSegmentHeader(this.nextIndex), durable)
    if (segment instanceof BufferIoError) return segment
    this.segments.push(segment)
    const fds = openSegment(this.options.directory, segment)
    if (fds instanceof BufferIoError) return fds
    this.fd = fds.fd
    this.indexFd = fds.indexFd
    this.indexBytes = 0
    this.lastIndexedOffset = SEGMENT_HEADER_BYTES
    this.batchFirstIndex = this.nextIndex
    if (durable) {
      const synced = syncDirectory(this.options.directory)
      if (synced instanceof BufferIoError) return synced
    }
    this.hooks.rolled()
  }

  private retire(fd: number): void {
    if (this.syncInFlight) this.retired.push(fd)
    else Fs.closeSync(fd)
  }

  /** Closes descriptors retired while an fsync was in flight. */
  closeRetired(): void {
    for (const fd of this.retired.splice(0)) Fs.closeSync(fd)
  }

  /** Closes the active segment's descriptors (after a final flush and fsync by the engine). */
  close(): void {
    this.closeRetired()
    Fs.closeSync(this.fd)
    Fs.closeSync(this.indexFd)
  }
}

/**
 * Writes `bytes` of `source` at `position`. A positional write may be partial (a disk filling
 * up); it loops until done, bounded because each round writes at least one byte or throws.
 */
const writeFully = (fd: number, source: Buffer, bytes: number, position: number): void => {
  for (let done = 0; done < bytes;) {
    const written = Fs.writeSync(fd, source, done, bytes - done, position + done)
    if (written <= 0) throw Object.assign(new Error("the write made no progress"), { code: "ENOSPC" })
    done += written
  }
}

const openSegment = (directory: string, segment: SegmentInfo) =>
  attempt(directory, `open ${segmentName(segment.firstIndex)}`, () => {
    const fd = Fs.openSync(Path.join(directory, segmentName(segment.firstIndex)), "r+")
    const indexPath = Path.join(directory, indexName(segment.firstIndex))
    const indexFd = Fs.openSync(indexPath, Fs.existsSync(indexPath) ? "r+" : "w+")
    return { fd, indexFd, indexBytes: Fs.fstatSync(indexFd).size }
  })
