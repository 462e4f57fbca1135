/**
 * The typed errors of durable work (durable messages, dead letters, the ingest bridge and
 * maintenance). Schema errors, since a send may be answered through the HTTP API of another
 * process. BullMQ's and ioredis's errors are translated into these in `internal/bullConnection.ts`
 * and never leak. Bad input reuses `InvalidArgument`, `InvalidMessage` and `UnknownEntityType`.
 */
import { Schema } from "effect"

/** Redis (through BullMQ) could not be reached or refused the operation; nothing was acknowledged, retry. */
export class DurableUnavailable extends Schema.TaggedError<DurableUnavailable>()("DurableUnavailable", {
  operation: Schema.String,
  message: Schema.String
}) {}

/** No dead letter has this id (it was retried, purged, or dropped past the per-type bound). */
export class DeadLetterNotFound extends Schema.TaggedError<DeadLetterNotFound>()("DeadLetterNotFound", {
  id: Schema.String
}) {}
