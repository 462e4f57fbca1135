/**
 * Defining entity types in application code. An entity type is a name and its messages, each an
 * `effect/rpc` `Rpc` (payload, success and error schemas, so messages can cross processes); its
 * behaviour is one of two persistence styles:
 *
 * - `direct`: the state is rebuilt by `recover` from the entity's own slice of the store, and
 *   handlers read and write that slice through `context.view` (what feeds, sorted sets and search
 *   indexes need: their data is far larger than memory);
 * - `eventSourced`: handlers `emit` events; events are appended to the entity's topic, state is
 *   the fold of `apply` over them, with a snapshot every N events.
 *
 * Writes of both styles are staged and committed by the runtime after the handler (group commit);
 * the reply waits for the commit. This module only describes behaviour; `EntityRuntime` runs it.
 */
import { type Context, type Effect, Schema } from "effect"
import type { Rpc } from "effect/rpc"
import type { ReadError, WriteError } from "../persistence/StoreError.js"
import type { InvalidArgument } from "../persistence/StoreError.js"
import type { StoreView } from "../persistence/StoreView.js"
import type { DeliveryError } from "./EntityError.js"
import type { Messenger } from "./Messenger.js"

const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/

/** An entity type: a name and its messages by tag. */
export interface EntityType<Type extends string, Rpcs extends Rpc.Any> {
  readonly type: Type
  readonly rpcs: ReadonlyMap<string, Rpcs>
  /**
   * Messages only the entity type's own code sends (housekeeping such as a feed's purge of a
   * deleted generation): the HTTP ask and durable-send routes refuse them.
   */
  readonly internal: ReadonlySet<string>
  /** Longest id, in bytes of UTF-8 (default 512, as HTTP names). */
  readonly idBytesMax: number
}

/** Options of an entity type. */
export interface EntityTypeOptions {
  /** Tags of messages sent only by the type's own code (see `EntityType.internal`). */
  readonly internal?: ReadonlyArray<string> | undefined
  /**
   * Longest id in bytes (default 512). Raise it only for ids the type's own code makes from a
   * user's name (a search partition's is `<p>:<index>`), so the user's name keeps the 512 bytes
   * it is promised.
   */
  readonly idBytesMax?: number | undefined
}

/** The longest entity id by default, in bytes: the HTTP API's name length. */
export const ID_BYTES_MAX = 512
/** The longest id an entity type may allow (its store keys hold it, next to keys of their own). */
const ID_BYTES_LIMIT = 1024

/** Any entity type. */
export type AnyEntityType = EntityType<string, Rpc.Any>

/** The messages of an entity type. */
export type Messages<E> = E extends EntityType<infer _T, infer R> ? R : never

/**
 * Every entity type defined in this process, by name. A router that forwards a message to another
 * worker encodes it with its type's schemas, and a client-only process hosts no runtime to ask.
 */
const defined = new Map<string, AnyEntityType>()

/** The entity type defined under `name` in this process, if any. */
export const lookup = (name: string): AnyEntityType | undefined => defined.get(name)

/** Defines an entity type. The name is 1-64 characters of `[A-Za-z0-9_.-]` starting with a letter. */
export const make = <const Type extends string, const Rpcs extends ReadonlyArray<Rpc.Any>>(
  type: Type,
  rpcs: Rpcs,
  options: EntityTypeOptions = {}
): EntityType<Type, Rpcs[number]> => {
  if (!TYPE_NAME.test(type)) throw new Error(`entity type name "${type}" must match ${TYPE_NAME}`)
  const byTag = new Map<string, Rpcs[number]>()
  for (const rpc of rpcs) {
    if (byTag.has(rpc._tag)) throw new Error(`entity type ${type} defines message ${rpc._tag} twice`)
    byTag.set(rpc._tag, rpc)
  }
  const internal = new Set(options.internal ?? [])
  for (const tag of internal) if (!byTag.has(tag)) throw new Error(`entity type ${type}: internal message ${tag} is not one of its messages`)
  const idBytesMax = options.idBytesMax ?? ID_BYTES_MAX
  if (!(Number.isSafeInteger(idBytesMax) && idBytesMax >= 1 && idBytesMax <= ID_BYTES_LIMIT)) {
    throw new Error(`entity type ${type}: idBytesMax must be a whole number from 1 to ${ID_BYTES_LIMIT}`)
  }
  const entity: EntityType<Type, Rpcs[number]> = { type, rpcs: byTag, internal, idBytesMax }
  defined.set(type, entity as AnyEntityType)
  return entity
}

/** What every handler knows about its entity. */
export interface EntityInfo {
  readonly type: string
  readonly id: string
  readonly shard: number
}

/** The context of a direct-style handler. */
export interface DirectContext<State> extends EntityInfo {
  /** The state as left by earlier messages (and `recover`). */
  readonly state: State
  /** Replaces the state; discarded if the handler fails. */
  readonly setState: (next: State) => void
  /** The entity's own slice of the store: read-your-writes, committed after the handler. */
  readonly view: StoreView
  /**
   * The group-commit round this message's writes join. Writes of one entity in the same round
   * are committed together, so a key rewritten within a round costs one write: data structures
   * use this to merge consecutive small writes (a feed extends its open record).
   */
  readonly writeRound: number
}

/** The context of an event-sourced handler. */
export interface EventSourcedContext<State, Event> extends EntityInfo {
  /** The state with every event emitted so far (this message's included) applied. */
  readonly state: State
  /** Applies an event to the state and stages its append to the entity's event log. */
  readonly emit: (event: Event) => Effect.Effect<void, InvalidArgument>
}

/**
 * Failures a handler may have besides its declared ones: store errors and the delivery errors of
 * asks to other entities. They count as crashes (store unavailability as an unavailable entity).
 */
export type HandlerStoreError = ReadError | WriteError | DeliveryError

/**
 * A message handler. Besides `Requirements` (provided when the behaviour is registered), every
 * handler may use the runtime's `Messenger`, so it can ask and send to other entities.
 */
type Handler<R extends Rpc.Any, Ctx, Requirements> = (
  payload: Rpc.Payload<R>,
  context: Ctx
) => Effect.Effect<Rpc.Success<R>, Rpc.Error<R> | HandlerStoreError, Requirements | Messenger>

/** One handler per message tag. */
export type Handlers<Rpcs extends Rpc.Any, Ctx, Requirements> = {
  readonly [Tag in Rpcs["_tag"]]: Handler<Rpc.ExtractTag<Rpcs, Tag>, Ctx, Requirements>
}


/** Per-type options (the runtime's defaults apply to what is left out). */
export interface TypeOptions {
  /** Passivate an entity of this type after this long idle. */
  readonly idlePassivationMillis?: number | undefined
  /** Mailbox capacity of entities of this type. */
  readonly mailboxCapacityMax?: number | undefined
}

/** A type-erased message handler, as the runtime calls it. */
export type AnyHandler = (payload: unknown, context: never) => Effect.Effect<unknown, unknown, unknown>

/** How a direct-style type persists. */
export interface DirectStyle {
  readonly _tag: "Direct"
  readonly recover: (context: EntityInfo & { readonly view: StoreView }) => Effect.Effect<unknown, unknown, unknown>
}

/** How an event-sourced type persists. */
export interface EventSourcedStyle {
  readonly _tag: "EventSourced"
  readonly initial: () => unknown
  readonly apply: (state: unknown, event: unknown) => unknown
  readonly event: Schema.Codec<unknown, unknown>
  readonly state: Schema.Codec<unknown, unknown>
  readonly snapshotEvery: number | undefined
}

/** An entity type with its behaviour, ready to register with a runtime. */
export interface Behavior<Requirements = never> {
  readonly entity: AnyEntityType
  readonly style: DirectStyle | EventSourcedStyle
  readonly handlers: ReadonlyMap<string, AnyHandler>
  readonly options: TypeOptions
  /** Phantom: the services the handlers need, provided when the behaviour is registered. */
  readonly "~requirements"?: Requirements
}

const handlerMap = (entity: AnyEntityType, handlers: Record<string, unknown>): ReadonlyMap<string, AnyHandler> => {
  const map = new Map<string, AnyHandler>()
  for (const tag of entity.rpcs.keys()) {
    const handler = handlers[tag]
    if (typeof handler !== "function") throw new Error(`entity type ${entity.type} has no handler for ${tag}`)
    map.set(tag, handler as AnyHandler)
  }
  return map
}

/** A direct-style behaviour: `recover` builds the state from the store, handlers use `view`. */
export const direct = <Type extends string, Rpcs extends Rpc.Any, State, Requirements = never>(
  entity: EntityType<Type, Rpcs>,
  definition: {
    readonly recover: (context: EntityInfo & { readonly view: StoreView }) => Effect.Effect<State, ReadError, Requirements>
    readonly handlers: Handlers<Rpcs, DirectContext<State>, Requirements>
    readonly options?: TypeOptions
  }
): Behavior<Exclude<Requirements, Messenger>> => ({
  entity: entity as AnyEntityType,
  style: { _tag: "Direct", recover: definition.recover as DirectStyle["recover"] },
  handlers: handlerMap(entity as AnyEntityType, definition.handlers as Record<string, unknown>),
  options: definition.options ?? {}
})

/** An event-sourced behaviour: state is `initial` folded with `apply` over the entity's events. */
export const eventSourced = <
  Type extends string,
  Rpcs extends Rpc.Any,
  State,
  Event,
  StateEncoded,
  EventEncoded,
  Requirements = never
>(
  entity: EntityType<Type, Rpcs>,
  definition: {
    readonly event: Schema.Codec<Event, EventEncoded>
    readonly state: Schema.Codec<State, StateEncoded>
    readonly initial: () => State
    readonly apply: (state: State, event: Event) => State
    readonly handlers: Handlers<Rpcs, EventSourcedContext<State, Event>, Requirements>
    /** Events between snapshots (default: the runtime's `snapshotEvery`). */
    readonly snapshotEvery?: number
    readonly options?: TypeOptions
  }
): Behavior<Exclude<Requirements, Messenger>> => ({
  entity: entity as AnyEntityType,
  style: {
    _tag: "EventSourced",
    initial: definition.initial,
    apply: definition.apply as EventSourcedStyle["apply"],
    event: definition.event as unknown as Schema.Codec<unknown, unknown>,
    state: definition.state as unknown as Schema.Codec<unknown, unknown>,
    snapshotEvery: definition.snapshotEvery
  },
  handlers: handlerMap(entity as AnyEntityType, definition.handlers as Record<string, unknown>),
  options: definition.options ?? {}
})

/** A behaviour together with the services its handlers need, as the runtime keeps it. */
export interface Registered {
  readonly behavior: Behavior<unknown>
  readonly context: Context.Context<never>
}

/** Checks whether `error` is one of the errors message `tag` declares (a reply, not a crash). */
export const isDeclaredError = (entity: AnyEntityType, tag: string, error: unknown): boolean => {
  const rpc = entity.rpcs.get(tag) as Rpc.AnyWithProps | undefined
  return rpc !== undefined && Schema.is(rpc.errorSchema)(error)
}
