/**
 * The typed errors of the storage layer. Every backend translates its driver's errors (ioredis,
 * `LEVEL_*` codes) into these at one point, so callers never see a driver error. They are Schema
 * errors because some of them (a fencing rejection, above all) travel between worker processes.
 */
import { Schema } from "effect"

/** Bad input: the named field is empty, too long, out of range or malformed. Nothing was written. */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>()("InvalidArgument", {
  field: Schema.String,
  message: Schema.String
}) {}

/** The store was used after it was closed (its layer's scope ended). */
export class StoreClosed extends Schema.TaggedError<StoreClosed>()("StoreClosed", {
  backend: Schema.String
}) {}

/**
 * The backend cannot be reached or answered with an error; the operation may be retried. A write
 * that fails with `outcomeUnknown` may have been applied, in part or whole (its reply was lost
 * with a connection, or it timed out, or some of its batches committed): retry it only if
 * applying it twice is harmless. Without it, nothing of the write was applied.
 */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  backend: Schema.String,
  message: Schema.String,
  outcomeUnknown: Schema.optionalKey(Schema.Boolean)
}) {}

/** A LevelDB directory is held by another process (or another open store in this one). */
export class StoreLocked extends Schema.TaggedError<StoreLocked>()("StoreLocked", {
  directory: Schema.String
}) {}

/**
 * A fenced batch carried an epoch below the highest epoch registered for its partition: a newer
 * owner exists, so this writer lost the partition. Nothing of the batch was applied.
 */
export class Fenced extends Schema.TaggedError<Fenced>()("Fenced", {
  partition: Schema.String,
  epoch: Schema.Number,
  currentEpoch: Schema.Number
}) {}

/** A stored value failed to decode with the value schema of a typed store. */
export class ValueDecodeError extends Schema.TaggedError<ValueDecodeError>()("ValueDecodeError", {
  namespace: Schema.String,
  key: Schema.String,
  message: Schema.String
}) {}

/** Errors any read can fail with. */
export type ReadError = InvalidArgument | StoreClosed | StoreUnavailable

/** Errors any write can fail with. */
export type WriteError = ReadError | Fenced

/** Errors a backend primitive may fail with; validation happened before it was called. */
export type BackendError = StoreUnavailable | StoreClosed
