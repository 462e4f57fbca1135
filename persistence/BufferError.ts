/**
 * The typed errors of `PersistentBuffer`. Each `_tag` is a stable code documented in
 * `PersistentBuffer.md`; each has a readable `message` (built from its fields) because the
 * Promise API rejects with these same instances. Node's errno codes are translated at one point
 * (`internal/bufferFiles.ts`) into `BufferIoError` and never leak. Bad options and oversized
 * elements reuse the storage layer's `InvalidArgument`, which names the field.
 *
 * A torn tail is not an error: recovery cuts it and reports it (see `RecoveryReport`).
 */
import { Schema } from "effect"
import { InvalidArgument } from "./StoreError.js"

export { InvalidArgument }

/** The directory is locked by another live process (its pid is in the lock file), or by another open buffer of this one. */
export class BufferLocked extends Schema.TaggedError<BufferLocked>()("BufferLocked", {
  directory: Schema.String,
  pid: Schema.Number
}) {
  override get message(): string {
    return `${this.directory} is held by process ${this.pid}`
  }
}

/** A file operation failed: `code` is the system's (EACCES, ENOSPC, EIO, ...); `operation` says what was being done. */
export class BufferIoError extends Schema.TaggedError<BufferIoError>()("BufferIoError", {
  directory: Schema.String,
  operation: Schema.String,
  code: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.operation} failed in ${this.directory}: ${this.code} ${this.detail}`
  }
}

/**
 * Stored data is damaged somewhere a crash cannot explain: a sealed segment, a frame before the
 * last durable index entry, a bad segment header. Nothing is cut or repaired automatically.
 */
export class BufferCorrupt extends Schema.TaggedError<BufferCorrupt>()("BufferCorrupt", {
  directory: Schema.String,
  file: Schema.String,
  offset: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `corrupt buffer data in ${this.file} at byte ${this.offset}: ${this.reason}`
  }
}

/**
 * The size limit (`sizeBytesMax`, policy `whenFull: "fail"`) was reached. The first `accepted`
 * elements of the offer were written; the rest were not.
 */
export class BufferFull extends Schema.TaggedError<BufferFull>()("BufferFull", {
  directory: Schema.String,
  sizeBytes: Schema.Number,
  sizeBytesMax: Schema.Number,
  accepted: Schema.Number
}) {
  override get message(): string {
    return `buffer ${this.directory} is full: ${this.sizeBytes} of ${this.sizeBytesMax} bytes (accepted ${this.accepted})`
  }
}

/** The buffer was used after it was closed (its scope ended or `close()` was called). */
export class BufferClosed extends Schema.TaggedError<BufferClosed>()("BufferClosed", {
  directory: Schema.String
}) {
  override get message(): string {
    return `buffer ${this.directory} is closed`
  }
}

/** A commit arrived out of index order under `commitOrder: "strict"`; nothing past `expected` was committed. */
export class CommitOrder extends Schema.TaggedError<CommitOrder>()("CommitOrder", {
  directory: Schema.String,
  consumer: Schema.Number,
  expected: Schema.Number,
  received: Schema.Number
}) {
  override get message(): string {
    return `consumer ${this.consumer} of ${this.directory} committed index ${this.received}, expected ${this.expected}`
  }
}

/** An element could not be encoded by the buffer's codec (schema mismatch, not JSON-serializable). Nothing was written for it. */
export class ElementEncodeError extends Schema.TaggedError<ElementEncodeError>()("ElementEncodeError", {
  directory: Schema.String,
  codec: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `cannot encode an element with the ${this.codec} codec of ${this.directory}: ${this.detail}`
  }
}

/**
 * A stored element (its checksum was fine) does not decode with the buffer's codec, usually
 * because the buffer was reopened with a different codec or schema. The consumer stays before it.
 */
export class ElementDecodeError extends Schema.TaggedError<ElementDecodeError>()("ElementDecodeError", {
  directory: Schema.String,
  codec: Schema.String,
  consumer: Schema.Number,
  index: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `element ${this.index} of ${this.directory} does not decode with the ${this.codec} codec: ${this.detail}`
  }
}

/** Errors of opening a buffer. */
export type OpenError = InvalidArgument | BufferLocked | BufferIoError | BufferCorrupt

/** Errors of offering elements. */
export type OfferError = InvalidArgument | BufferFull | BufferClosed | BufferIoError | ElementEncodeError

/** Errors of taking elements. */
export type TakeError = BufferClosed | BufferIoError | BufferCorrupt | ElementDecodeError

/** Errors of committing elements. */
export type CommitError = InvalidArgument | CommitOrder | BufferClosed | BufferIoError

/** Every error of the buffer. */
export type BufferError = OpenError | OfferError | TakeError | CommitError
