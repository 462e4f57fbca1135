/**
 * The engine of the persistent buffer, free of Effect so the hot path costs no fiber per
 * element: open (lock, recovery), offers (encode, stage, commit frames), acknowledgements per
 * durability policy, the fsync pass, consumers, commits, space reclaim and close. The public
 * module wraps it twice: in Effect (`PersistentBuffer.make`, `via`, ...) and in Promises (`open`).
 *
 * Every operation is synchronous and leaves the engine consistent; waiting is separate
 * (`whenAcked`, `whenAvailable`, `whenSpace`, `whenDurable` register a callback and return a
 * cancel function), so an interrupted waiter never leaves half-done work. Callbacks always run
 * in a microtask, never inside the operation that caused them. Expected failures are returned
 * as values; an I/O failure also fails the engine (like fsyncgate: after a failed write or fsync,
 * the only safe continuation is to reopen, which recovers).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import {
  BufferClosed,
  BufferCorrupt,
  BufferFull,
  BufferIoError,
  type CommitError,
  ElementEncodeError,
  InvalidArgument,
  type OfferError,
  type OpenError,
  type TakeError
} from "../BufferError.js"
import { CodecFailure } from "./bufferCodec.js"
import { acquireLock, attempt, ioError, releaseLock } from "./bufferFiles.js"
import { FRAME_HEADER_BYTES, indexName, segmentName } from "./bufferFormat.js"
import type { RecoveryReport, ResolvedOptions } from "./bufferOptions.js"
import { ConsumerReader, type ReadBatch } from "./bufferReader.js"
import { recover, type SegmentInfo } from "./bufferRecovery.js"
import { newSegmentHeader, SegmentWriter } from "./bufferWriter.js"

/** Most elements one `offer` call encodes before returning, so the event loop keeps turning. */
export const OFFER_SLICE_MAX = 16_384

/** The outcome of one `offer` call: elements `[from, accepted)` were taken; `full` means the size limit stopped it. */
export interface OfferOutcome {
  readonly accepted: number
  /** Every accepted element has an index below this; wait for `whenAcked(ackIndex)`. */
  readonly ackIndex: number
  readonly full: boolean
}

/** A snapshot of the buffer's size and positions. */
export interface BufferSize {
  /** Bytes of segment files on disk plus frames not yet written (what `sizeBytesMax` limits). */
  readonly diskBytes: number
  readonly segments: number
  /** Index of the next element offered. */
  readonly nextIndex: number
  /** Elements below this index are acknowledged and visible to consumers. */
  readonly published: number
  readonly consumers: ReadonlyArray<{ readonly consumer: number; readonly next: number; readonly committed: number }>
}

/** Cancels a registered waiter. */
export type Cancel = () => void

type Notice = (error: BufferIoError | BufferClosed | undefined) => void

const NOOP: Cancel = () => {}

/** A disk-backed buffer: one writer, `consumers` readers. */
export class BufferEngine<A> {
  private readonly segments: Array<SegmentInfo>
  private readonly readers: Array<ConsumerReader<A>> = []
  private writer!: SegmentWriter<A>
  private sealedBytes = 0
  /** Elements below this index are acknowledged and readable. */
  published: number
  private durable: number
  private failure: BufferIoError | undefined = undefined
  private closed = false
  private closing: Promise<void> | undefined = undefined
  /** Set when the producer side is done (the stream feeding it ended). */
  inputEnded = false
  private flushScheduled: ReturnType<typeof setImmediate> | undefined = undefined
  private readonly timer: ReturnType<typeof setInterval> | undefined
  private syncing = false
  private syncAgain = false
  private syncEnded: (() => void) | undefined = undefined
  private passesStarted = 0
  private passesDone = 0
  // Waiters: each is bounded by the callers (one per pending call), never by data volume.
  private readonly ackWaiters: Array<{ readonly index: number; readonly notice: Notice }> = []
  private readonly durableWaiters: Array<{ readonly pass: number; readonly notice: Notice }> = []
  private readonly dataWaiters = new Set<{ readonly consumer: number; readonly notice: Notice; readonly endWithInput: boolean }>()
  private readonly spaceWaiters = new Set<Notice>()
  private notifyScheduled = false

  private constructor(
    readonly options: ResolvedOptions<A>,
    readonly report: RecoveryReport,
    segments: Array<SegmentInfo>,
    nextIndex: number
  ) {
    this.segments = segments
    this.published = nextIndex
    this.durable = nextIndex
    for (const segment of segments.slice(0, -1)) this.sealedBytes += segment.bytes
    if (options.durability === "interval") {
      this.timer = setInterval(() => this.requestSync(), options.fsyncIntervalMillis)
      // The timer must not keep a process alive that has nothing else to do.
      this.timer.unref()
    }
  }

  /** Locks and recovers the directory, then opens the writer and every consumer. */
  static open<A>(options: ResolvedOptions<A>): BufferEngine<A> | OpenError {
    const lock = acquireLock(options.directory)
    if (!("staleLockPid" in lock)) return lock
    const engine = BufferEngine.recovered(options, lock.staleLockPid)
    if (!(engine instanceof BufferEngine)) releaseLock(options.directory)
    return engine
  }

  private static recovered<A>(options: ResolvedOptions<A>, staleLockPid: number | undefined): BufferEngine<A> | OpenError {
    const recovered = recover(options, newSegmentHeader)
    if (recovered instanceof BufferIoError || recovered instanceof BufferCorrupt) return recovered
    const report: RecoveryReport = {
      firstIndex: recovered.segments[0]!.firstIndex,
      nextIndex: recovered.nextIndex,
      segments: recovered.segments.length,
      tornTail: recovered.tornTail,
      consumers: recovered.cursors.map((cursor, consumer) => ({ consumer, next: cursor.next, note: cursor.note })),
      staleLockPid
    }
    const engine = new BufferEngine(options, report, recovered.segments, recovered.nextIndex)
    const writer = SegmentWriter.open(options, engine.segments, {
      written: (count) => engine.onWritten(count),
      durableThrough: (count) => engine.onDurable(count),
      rolled: () => engine.onRolled()
    }, recovered.nextIndex, recovered.lastIndexedOffset)
    if (writer instanceof BufferIoError) return engine.abandon(writer)
    engine.writer = writer
    for (const cursor of recovered.cursors) {
      const reader = ConsumerReader.open(options, engine.segments, engine.readers.length, cursor.next)
      if (reader instanceof BufferIoError) return engine.abandon(reader)
      engine.readers.push(reader)
    }
    const reclaimed = engine.reclaim()
    if (reclaimed instanceof BufferIoError) return engine.abandon(reclaimed)
    return engine
  }

  /** Closes what an unfinished open opened, and returns its error. */
  private abandon<E>(error: E): E {
    if (this.timer !== undefined) clearInterval(this.timer)
    for (const reader of this.readers) reader.close()
    this.writer?.close()
    return error
  }

  // ---------------------------------------------------------------------------------------------
  // Offers

  /**
   * Encodes and stages elements `[from, ...)`, at most `OFFER_SLICE_MAX` of them. Elements before
   * a failing one are accepted. At the size limit it stops (`full`) under `"backpressure"` and
   * fails with `BufferFull` under `"fail"`.
   */
  offer(elements: ReadonlyArray<A>, from: number): OfferOutcome | OfferError {
    const unusable = this.unusable()
    if (unusable !== undefined) return unusable
    const writer = this.writer
    if (writer.isOld(Date.now())) {
      const rolled = writer.roll(0)
      if (rolled instanceof BufferIoError) return this.fail(rolled)
    }
    const { codec, elementBytesMax, sizeBytesMax } = this.options
    const end = Math.min(elements.length, from + OFFER_SLICE_MAX)
    let i = from
    let error: OfferError | undefined
    for (; i < end; i++) {
      const payload = codec.encode(elements[i]!)
      if (payload instanceof CodecFailure) {
        error = new ElementEncodeError({ directory: this.options.directory, codec: codec.name, detail: payload.detail })
        break
      }
      const length = writer.stage(payload)
      if (length instanceof BufferIoError) return this.fail(length)
      if (length > elementBytesMax) {
        error = new InvalidArgument({ field: "element", message: `encodes to ${length} bytes, more than elementBytesMax (${elementBytesMax})` })
        break
      }
      const frameBytes = FRAME_HEADER_BYTES + length
      if (writer.needsRoll(frameBytes)) {
        const rolled = writer.roll(length)
        if (rolled instanceof BufferIoError) return this.fail(rolled)
      }
      if (sizeBytesMax !== undefined && this.diskBytes() + frameBytes > sizeBytesMax) break
      const committed = writer.commitStaged(length)
      if (committed instanceof BufferIoError) return this.fail(committed)
    }
    const full = error === undefined && i < end
    if (full) {
      // Consumers can only free space for elements they can see: write what is staged now.
      const flushed = this.flushNow()
      if (flushed !== undefined) return flushed
      if (this.options.whenFull === "fail") error = this.full(i - from)
    } else this.scheduleFlush()
    return error ?? { accepted: i, ackIndex: writer.nextIndex, full }
  }

  private full(accepted: number): BufferFull {
    return new BufferFull({ directory: this.options.directory, sizeBytes: this.diskBytes(), sizeBytesMax: this.options.sizeBytesMax ?? 0, accepted })
  }

  private diskBytes(): number {
    return this.sealedBytes + this.writer.active.bytes + this.writer.pendingBytes
  }

  private scheduleFlush(): void {
    if (this.flushScheduled !== undefined || this.writer.pendingBytes === 0) return
    // After the current macrotask, so that offers made together share one write.
    this.flushScheduled = setImmediate(() => {
      this.flushScheduled = undefined
      if (!this.closed) this.flushNow()
    })
  }

  private flushNow(): BufferIoError | undefined {
    if (this.failure !== undefined) return this.failure
    const flushed = this.writer.flush()
    return flushed instanceof BufferIoError ? this.fail(flushed) : undefined
  }

  /** Calls `notice` once every element below `index` is acknowledged (or with the error that prevents it). */
  whenAcked(index: number, notice: Notice): Cancel {
    if (this.published >= index || this.failure !== undefined || this.closed) {
      this.later(() => notice(this.published >= index ? undefined : this.failure ?? this.closedError()))
      return NOOP
    }
    const waiter = { index, notice }
    this.ackWaiters.push(waiter)
    return () => {
      const at = this.ackWaiters.indexOf(waiter)
      if (at !== -1) this.ackWaiters.splice(at, 1)
    }
  }

  /** Calls `notice` when space may have been freed (or the buffer closed or failed). */
  whenSpace(notice: Notice): Cancel {
    if (this.failure !== undefined || this.closed) {
      this.later(() => notice(this.failure ?? this.closedError()))
      return NOOP
    }
    this.spaceWaiters.add(notice)
    return () => this.spaceWaiters.delete(notice)
  }

  /** Marks the producer side as finished: consumers that caught up then see the end. */
  endInput(): void {
    this.inputEnded = true
    this.scheduleNotify()
  }

  // ---------------------------------------------------------------------------------------------
  // Durability: the writer's hooks and the fsync pass

  private onWritten(count: number): void {
    switch (this.options.durability) {
      case "none": {
        this.durable = count
        const indexed = this.writer.writeIndexEntries(count)
        if (indexed instanceof BufferIoError) this.fail(indexed)
        return this.publish(count)
      }
      case "interval":
        return this.publish(count)
      case "batch":
        return this.requestSync()
    }
  }

  private onDurable(count: number): void {
    this.durable = Math.max(this.durable, count)
    if (this.options.durability === "batch") this.publish(this.durable)
  }

  private onRolled(): void {
    this.sealedBytes += this.segments[this.segments.length - 2]!.bytes
    if (this.options.durability === "none") this.reclaim()
  }

  private publish(count: number): void {
    if (count <= this.published) return
    this.published = count
    this.scheduleNotify()
  }

  /** Starts an fsync pass over the active segment and dirty cursors, or queues one after the pass in flight. */
  private requestSync(): void {
    if (this.failure !== undefined) return
    if (this.syncing) {
      this.syncAgain = true
      return
    }
    const dirty = this.readers.filter((reader) => reader.dirty)
    if (this.writer.writtenIndex <= this.durable && dirty.length === 0 && this.durableWaiters.length === 0) return
    const target = this.writer.writtenIndex
    const cursors = dirty.map((reader) => ({ reader, persisted: reader.persisted }))
    for (const reader of dirty) reader.dirty = false
    this.syncing = true
    this.writer.syncInFlight = true
    this.passesStarted++
    const fds = [this.writer.activeFd, ...dirty.map((reader) => reader.fileDescriptor)]
    fsyncAll(fds, 0, (cause) => {
      this.syncing = false
      this.writer.syncInFlight = false
      this.writer.closeRetired()
      this.passesDone++
      if (cause !== undefined) this.fail(ioError(this.options.directory, "fsync", cause))
      else this.synced(target, cursors)
      this.syncEnded?.()
      if (this.syncAgain || (this.options.durability === "batch" && this.writer.writtenIndex > this.durable)) {
        this.syncAgain = false
        if (!this.closed) this.requestSync()
      }
    })
  }

  private synced(target: number, cursors: ReadonlyArray<{ readonly reader: ConsumerReader<A>; readonly persisted: number }>): void {
    this.durable = Math.max(this.durable, target)
    for (const { reader, persisted } of cursors) reader.durable = Math.max(reader.durable, persisted)
    const indexed = this.writer.writeIndexEntries(this.durable)
    if (indexed instanceof BufferIoError) return void this.fail(indexed)
    if (this.options.durability === "batch") this.publish(this.durable)
    const reclaimed = this.reclaim()
    if (reclaimed instanceof BufferIoError) return void this.fail(reclaimed)
    this.scheduleNotify()
  }

  /** Calls `notice` once everything written before this call (data and cursors) is durable per the policy. */
  whenDurable(notice: Notice): Cancel {
    if (this.options.durability !== "batch" || this.failure !== undefined || this.closed) {
      this.later(() => notice(this.failure ?? (this.closed ? this.closedError() : undefined)))
      return NOOP
    }
    // A pass that starts after this call covers its writes; one in flight may not.
    const waiter = { pass: this.passesStarted + 1, notice }
    this.durableWaiters.push(waiter)
    this.requestSync()
    return () => {
      const at = this.durableWaiters.indexOf(waiter)
      if (at !== -1) this.durableWaiters.splice(at, 1)
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Consumers

  /** Reads up to `max` published elements for `consumer` (none when nothing is available) without committing them. */
  take(consumer: number, max: number): ReadBatch<A> | TakeError {
    const unusable = this.unusable()
    return unusable ?? this.readers[consumer]!.read(Math.min(max, this.options.takeChunkMax), this.published, this.options.codec.decode)
  }

  /** Commits every element of `consumer` below `end` that it has read: the automatic commit of plain consumers. */
  commitThrough(consumer: number, end: number): BufferIoError | BufferClosed | undefined {
    const unusable = this.unusable()
    if (unusable !== undefined) return unusable
    const reader = this.readers[consumer]!
    const target = Math.min(end, reader.next)
    if (target <= reader.committed) return undefined
    reader.committed = target
    return this.persist(reader)
  }

  /** Whether `consumer` has read everything published. */
  caughtUp(consumer: number): boolean {
    return this.readers[consumer]!.next >= this.published
  }

  /**
   * Calls `notice` when `consumer` may have something to read, or the buffer closed or failed,
   * or (with `endWithInput`) the input ended.
   */
  whenAvailable(consumer: number, notice: Notice, endWithInput: boolean): Cancel {
    if (!this.caughtUp(consumer) || (endWithInput && this.inputEnded) || this.failure !== undefined || this.closed) {
      this.later(() => notice(this.failure ?? (this.closed ? this.closedError() : undefined)))
      return NOOP
    }
    const waiter = { consumer, notice, endWithInput }
    this.dataWaiters.add(waiter)
    return () => this.dataWaiters.delete(waiter)
  }

  /** Commits `indexes` of `consumer` in order, then persists its cursor once. Stops at the first bad one. */
  commit(consumer: number, indexes: ReadonlyArray<number>): CommitError | undefined {
    const unusable = this.unusable()
    if (unusable !== undefined) return unusable
    const reader = this.readers[consumer]!
    const strict = this.options.commitOrder === "strict"
    let error: CommitError | undefined
    for (let i = 0; i < indexes.length && error === undefined; i++) error = reader.commit(indexes[i]!, strict) ?? undefined
    return this.persist(reader) ?? error
  }

  private persist(reader: ConsumerReader<A>): BufferIoError | undefined {
    const persisted = reader.persist()
    if (persisted instanceof BufferIoError) return this.fail(persisted)
    if (this.options.durability === "none") {
      const reclaimed = this.reclaim()
      if (reclaimed instanceof BufferIoError) return this.fail(reclaimed)
    }
    return undefined
  }

  /**
   * Deletes the oldest sealed segments that every consumer has durably committed past, and
   * wakes producers waiting for space. Bounded by the number of segments.
   */
  private reclaim(): BufferIoError | undefined {
    let floor = Number.POSITIVE_INFINITY
    for (const reader of this.readers) floor = Math.min(floor, reader.durable)
    let freed = false
    while (this.segments.length > 1 && this.segments[1]!.firstIndex <= floor) {
      const segment = this.segments[0]!
      const removed = attempt(this.options.directory, `delete ${segmentName(segment.firstIndex)}`, () => {
        // The segment first: an index left behind is removed at the next open.
        Fs.rmSync(Path.join(this.options.directory, segmentName(segment.firstIndex)), { force: true })
        Fs.rmSync(Path.join(this.options.directory, indexName(segment.firstIndex)), { force: true })
      })
      if (removed instanceof BufferIoError) return removed
      this.segments.shift()
      this.sealedBytes -= segment.bytes
      freed = true
    }
    if (freed && this.spaceWaiters.size > 0) this.scheduleNotify()
    return undefined
  }

  /** The buffer's size and positions now. */
  size(): BufferSize {
    return {
      diskBytes: this.diskBytes(),
      segments: this.segments.length,
      nextIndex: this.writer.nextIndex,
      published: this.published,
      consumers: this.readers.map((reader) => ({ consumer: reader.consumer, next: reader.next, committed: reader.committed }))
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Failure, notification, close

  private unusable(): BufferIoError | BufferClosed | undefined {
    return this.failure ?? (this.closed ? this.closedError() : undefined)
  }

  private closedError(): BufferClosed {
    return new BufferClosed({ directory: this.options.directory })
  }

  private fail(error: BufferIoError): BufferIoError {
    this.failure ??= error
    this.scheduleNotify()
    return this.failure
  }

  private later(f: () => void): void {
    queueMicrotask(f)
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled) return
    this.notifyScheduled = true
    this.later(() => {
      this.notifyScheduled = false
      this.notify()
    })
  }

  /** Wakes every waiter whose condition holds now. */
  private notify(): void {
    const error = this.unusable()
    let acked = 0
    while (acked < this.ackWaiters.length && this.ackWaiters[acked]!.index <= this.published) acked++
    for (const waiter of this.ackWaiters.splice(0, acked)) waiter.notice(undefined)
    if (error !== undefined) for (const waiter of this.ackWaiters.splice(0)) waiter.notice(error)
    let durable = 0
    while (durable < this.durableWaiters.length && this.durableWaiters[durable]!.pass <= this.passesDone) durable++
    for (const waiter of this.durableWaiters.splice(0, durable)) waiter.notice(this.failure)
    if (error !== undefined) for (const waiter of this.durableWaiters.splice(0)) waiter.notice(error)
    for (const waiter of [...this.dataWaiters]) {
      if (error !== undefined || (waiter.endWithInput && this.inputEnded) || !this.caughtUp(waiter.consumer)) {
        this.dataWaiters.delete(waiter)
        waiter.notice(error)
      }
    }
    const space = [...this.spaceWaiters]
    this.spaceWaiters.clear()
    for (const notice of space) notice(error)
  }

  /**
   * Flushes, fsyncs (except under `"none"`), persists cursors, releases the files and the lock,
   * and wakes every waiter. Idempotent; waits for an fsync in flight first.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<void> {
    if (this.flushScheduled !== undefined) clearImmediate(this.flushScheduled)
    if (this.timer !== undefined) clearInterval(this.timer)
    if (this.failure === undefined) {
      const flushed = this.writer.flush()
      if (flushed instanceof BufferIoError) this.fail(flushed)
      for (const reader of this.readers) this.persist(reader)
    }
    this.closed = true
    // No descriptor may close under an fsync that still runs on the thread pool.
    while (this.syncing) await new Promise<void>((resolve) => (this.syncEnded = resolve))
    this.syncEnded = undefined
    if (this.failure === undefined) this.finalSync()
    for (const reader of this.readers) reader.close()
    this.writer.close()
    releaseLock(this.options.directory)
    this.notify()
  }

  private finalSync(): void {
    const synced = attempt(this.options.directory, "fsync at close", () => {
      if (this.options.durability === "none") return
      Fs.fsyncSync(this.writer.activeFd)
      for (const reader of this.readers) Fs.fsyncSync(reader.fileDescriptor)
    })
    if (synced instanceof BufferIoError) return void this.fail(synced)
    this.durable = this.writer.writtenIndex
    // This fsync covers every write, as a pass started after every waiter would: release them all.
    this.passesDone = this.passesStarted + 1
    for (const reader of this.readers) reader.durable = reader.persisted
    const indexed = this.writer.writeIndexEntries(this.durable)
    if (indexed instanceof BufferIoError) return void this.fail(indexed)
    this.published = Math.max(this.published, this.durable)
    const reclaimed = this.reclaim()
    if (reclaimed instanceof BufferIoError) this.fail(reclaimed)
  }
}

/** fsyncs each descriptor in turn on the thread pool; calls `done` once, with the first error. */
const fsyncAll = (fds: ReadonlyArray<number>, at: number, done: (cause: unknown) => void): void => {
  if (at >= fds.length) return done(undefined)
  Fs.fsync(fds[at]!, (cause) => (cause ? done(cause) : fsyncAll(fds, at + 1, done)))
}
