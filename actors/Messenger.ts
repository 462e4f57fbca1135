/**
 * The seam between senders and entity hosts. A `Messenger` delivers envelopes: the entity
 * runtime of this process is one (every shard local, the embedded default); the scale-out router
 * is another (local shards here, the rest to their owners). Clients only ever see this service,
 * so the same application code runs embedded and clustered.
 */
import { Context, type Exit } from "effect"

/** One message on its way to an entity. */
export interface Envelope {
  readonly type: string
  readonly id: string
  readonly tag: string
  /** The decoded payload (its schema's Type side). */
  readonly payload: unknown
  /**
   * Called once with the outcome for an `ask` (the handler's reply, its declared error, or a
   * delivery error); absent for a `send`, whose failures are only logged and counted.
   */
  readonly reply: ((exit: Exit.Exit<unknown, unknown>) => void) | undefined
  /** Milliseconds since the epoch after which the caller no longer waits (Infinity for none). */
  readonly deadline: number
  /**
   * Called when the message is handed to its handler, or to another process that may handle it:
   * an ask that times out before then was not handled (a handler skips a message past its
   * deadline) and answers `AskTimeout`; one that times out after may have taken effect and
   * answers `OutcomeUnknown`.
   */
  readonly begin?: (() => void) | undefined
}

/** Delivers envelopes to entities. */
export interface MessengerShape {
  readonly deliver: (envelope: Envelope) => void
}

/** The messenger of this process. */
export class Messenger extends Context.Service<Messenger, MessengerShape>()("shardfeed/Messenger") {}
