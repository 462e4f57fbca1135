/**
 * Talking to entities by id: `ask` (request and reply, with a timeout) and `send` (one way), as
 * Effects typed by the entity type's messages, plus a thin Promise facade for callers that do not
 * use Effect. Clients deliver through the `Messenger` of the process, so the same code works
 * embedded and against a cluster.
 */
import { Effect, Exit } from "effect"
import type { Rpc } from "effect/rpc"
import type { InvalidArgument } from "../persistence/StoreError.js"
import type { EntityType } from "./Entity.js"
import type { DeliveryError } from "./EntityError.js"
import { Messenger, type MessengerShape } from "./Messenger.js"
import { RuntimeConfig } from "./RuntimeConfig.js"

/** Options of one ask. */
export interface AskOptions {
  /** Milliseconds to wait for the reply (default: the runtime's `askTimeoutMillis`). */
  readonly timeoutMillis?: number | undefined
}

type Message<Rpcs extends Rpc.Any, Tag extends string> = Rpc.ExtractTag<Rpcs, Tag>

/** The payload argument of a message: optional when the message has no payload. */
export type PayloadArgs<R extends Rpc.Any, Extra> = [Rpc.Payload<R>] extends [void]
  ? [payload?: void, extra?: Extra]
  : [payload: Rpc.Payload<R>, extra?: Extra]

/** The payload argument of a one-way message. */
export type SendArgs<R extends Rpc.Any> = [Rpc.Payload<R>] extends [void] ? [payload?: void] : [payload: Rpc.Payload<R>]

/** The errors an ask can end with: the message's declared errors, delivery errors, bad input. */
export type AskError<R extends Rpc.Any> = Rpc.Error<R> | DeliveryError | InvalidArgument

/** A client of one entity type. */
export interface EntityClient<Rpcs extends Rpc.Any> {
  /** Sends a message and waits for its reply (after its writes are durable). */
  readonly ask: <Tag extends Rpcs["_tag"]>(
    id: string,
    tag: Tag,
    ...args: PayloadArgs<Message<Rpcs, Tag>, AskOptions>
  ) => Effect.Effect<Rpc.Success<Message<Rpcs, Tag>>, AskError<Message<Rpcs, Tag>>>
  /** Sends a message without waiting; failures are logged and counted, not returned. */
  readonly send: <Tag extends Rpcs["_tag"]>(
    id: string,
    tag: Tag,
    ...args: SendArgs<Message<Rpcs, Tag>>
  ) => Effect.Effect<void>
  /** The same as Promises: `ask` rejects with the typed error. */
  readonly promise: {
    readonly ask: <Tag extends Rpcs["_tag"]>(
      id: string,
      tag: Tag,
      ...args: PayloadArgs<Message<Rpcs, Tag>, AskOptions>
    ) => Promise<Rpc.Success<Message<Rpcs, Tag>>>
    readonly send: <Tag extends Rpcs["_tag"]>(id: string, tag: Tag, ...args: SendArgs<Message<Rpcs, Tag>>) => void
  }
}

/** Builds a client over a messenger (what `make` does with the one in context). */
export const fromMessenger = <Type extends string, Rpcs extends Rpc.Any>(
  entity: EntityType<Type, Rpcs>,
  messenger: MessengerShape,
  defaultTimeoutMillis: number
): EntityClient<Rpcs> => {
  const deadline = (options: AskOptions | undefined) => Date.now() + (options?.timeoutMillis ?? defaultTimeoutMillis)
  const deliverAsk = (id: string, tag: string, payload: unknown, options: AskOptions | undefined, reply: (exit: Exit.Exit<unknown, unknown>) => void) =>
    messenger.deliver({ type: entity.type, id, tag, payload, reply, deadline: deadline(options) })
  const tell = (id: string, tag: string, payload: unknown) =>
    messenger.deliver({ type: entity.type, id, tag, payload, reply: undefined, deadline: Number.POSITIVE_INFINITY })
  return {
    ask: ((id: string, tag: string, payload?: unknown, options?: AskOptions) =>
      Effect.callback<unknown, unknown>((resume) => {
        deliverAsk(id, tag, payload, options, (exit) => resume(exit))
      })) as EntityClient<Rpcs>["ask"],
    send: ((id: string, tag: string, payload?: unknown) => Effect.sync(() => tell(id, tag, payload))) as unknown as EntityClient<Rpcs>["send"],
    promise: {
      ask: ((id: string, tag: string, payload?: unknown, options?: AskOptions) =>
        new Promise((resolve, reject) => {
          deliverAsk(id, tag, payload, options, (exit) => {
            if (Exit.isSuccess(exit)) resolve(exit.value)
            else reject(Exit.isFailure(exit) ? failureOf(exit) : exit)
          })
        })) as EntityClient<Rpcs>["promise"]["ask"],
      send: ((id: string, tag: string, payload?: unknown) => tell(id, tag, payload)) as unknown as EntityClient<Rpcs>["promise"]["send"]
    }
  }
}

/** What a Promise facade rejects with for a failed exit: its first error or defect. */
export const failureOf = (exit: Exit.Failure<unknown, unknown>): unknown => {
  for (const reason of exit.cause.reasons) {
    if (reason._tag === "Fail") return reason.error
    if (reason._tag === "Die") return reason.defect
  }
  return new Error("interrupted")
}

/** A client of `entity` over the process's `Messenger`. */
export const make = <Type extends string, Rpcs extends Rpc.Any>(
  entity: EntityType<Type, Rpcs>
): Effect.Effect<EntityClient<Rpcs>, never, Messenger> =>
  Effect.gen(function*() {
    const messenger = yield* Messenger
    const config = yield* RuntimeConfig
    return fromMessenger(entity, messenger, config.askTimeoutMillis)
  })
