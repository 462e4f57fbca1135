/**
 * The typed errors of the entity runtime. They are Schema errors because an `ask` may be answered
 * by another worker process, and the caller must see the same error there as here.
 */
import { Exit, Schema } from "effect"

/** The entity's mailbox already holds `capacity` messages; the message was not accepted. */
export class MailboxFull extends Schema.TaggedError<MailboxFull>()("MailboxFull", {
  entity: Schema.String,
  capacity: Schema.Number
}) {}

/** The message made its handler fail `attempts` times in a row; it was skipped. */
export class PoisonMessage extends Schema.TaggedError<PoisonMessage>()("PoisonMessage", {
  entity: Schema.String,
  message: Schema.String,
  attempts: Schema.Number,
  cause: Schema.String
}) {}

/**
 * No reply came within the ask's timeout, and the message had not reached its handler, which
 * skips it (so it never takes effect). An ask that times out once its handler had it is answered
 * `OutcomeUnknown` instead.
 */
export class AskTimeout extends Schema.TaggedError<AskTimeout>()("AskTimeout", {
  entity: Schema.String,
  timeoutMillis: Schema.Number
}) {}

/** This process does not own the entity's shard (now); the sender should retry against the shard map. */
export class ShardNotOwned extends Schema.TaggedError<ShardNotOwned>()("ShardNotOwned", {
  entity: Schema.String,
  shard: Schema.Number
}) {}

/** No entity type of this name is registered with the runtime. */
export class UnknownEntityType extends Schema.TaggedError<UnknownEntityType>()("UnknownEntityType", {
  type: Schema.String
}) {}

/** Too many entities are resident and busy to activate another one; retry later. */
export class Overloaded extends Schema.TaggedError<Overloaded>()("Overloaded", {
  resident: Schema.Number
}) {}

/**
 * The entity could not be recovered, or the message's writes could not be committed (the store
 * was unavailable, or the shard's fence moved on). Nothing of the message is durable; the entity
 * restarts from the store and the message may be retried.
 */
export class EntityUnavailable extends Schema.TaggedError<EntityUnavailable>()("EntityUnavailable", {
  entity: Schema.String,
  reason: Schema.String
}) {}

/**
 * The message may or may not have taken effect: its writes were sent to the store and the answer
 * was lost (a connection dropped, a timeout), or the connection to the worker that owns the entity
 * was lost after the message was sent. shardfeed does not send it again, since handling it twice
 * could apply it twice; retry it only if that is harmless (a feed append with a nonce is). A
 * durable send (`{ durable: true }`) retries by itself, at least once.
 */
export class OutcomeUnknown extends Schema.TaggedError<OutcomeUnknown>()("OutcomeUnknown", {
  entity: Schema.String,
  reason: Schema.String
}) {}

/** A message failed to decode with the entity type's schema. */
export class InvalidMessage extends Schema.TaggedError<InvalidMessage>()("InvalidMessage", {
  entity: Schema.String,
  field: Schema.String,
  message: Schema.String
}) {}

/** Whether an outcome is `InvalidMessage`: the message itself was refused, so sending it again as it is would be too. */
export const isInvalidMessage = (exit: Exit.Exit<unknown, unknown>): boolean =>
  Exit.isFailure(exit) && exit.cause.reasons.some((reason) => reason._tag === "Fail" && (reason.error as { readonly _tag?: unknown })._tag === "InvalidMessage")

/** The errors any delivery can fail with, besides the handler's own declared errors. */
export type DeliveryError =
  | MailboxFull
  | PoisonMessage
  | AskTimeout
  | ShardNotOwned
  | UnknownEntityType
  | Overloaded
  | EntityUnavailable
  | OutcomeUnknown
  | InvalidMessage
