/**
 * The SortedSet entity: one per key (entity type `zset`), so every write to a set comes from one
 * writer, in order. On activation it loads the set into the engine's in-memory structure
 * (snapshot plus deltas, see `SortedSet.ts`); each message runs on the engine and stages its
 * writes on the entity's view, which the runtime commits before answering. If a commit fails the
 * runtime restarts the entity, which reloads the set, so memory never stays ahead of the store.
 */
import { Effect, Schema } from "effect"
import { Rpc } from "effect/rpc"
import * as Entity from "../../actors/Entity.js"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import type { Messenger } from "../../actors/Messenger.js"
import { InvalidArgument } from "../../persistence/StoreError.js"
import * as SortedSet from "./SortedSet.js"
import * as Messages from "./SortedSetMessages.js"

/** The engine's namespace inside each entity's own slice of the store. */
const NAMESPACE = "set"

const payloadOf = <S extends Schema.Struct<any>>(tagged: S) => {
  const { _tag: _, ...fields } = tagged.fields as Record<string, Schema.Top>
  return fields as Omit<S["fields"], "_tag">
}

const rpc = <const Tag extends keyof typeof Messages.Replies>(tag: Tag, request: Schema.Struct<any>) =>
  Rpc.make(tag, { payload: payloadOf(request), success: Messages.Replies[tag], error: InvalidArgument })

/** The messages: one per operation, each named as in `SortedSetMessages`. */
export const Add = rpc("Add", Messages.Add)
export const IncrBy = rpc("IncrBy", Messages.IncrBy)
export const Remove = rpc("Remove", Messages.Remove)
export const Score = rpc("Score", Messages.GetScore)
export const Rank = rpc("Rank", Messages.Rank)
export const Range = rpc("Range", Messages.Range)
export const Count = rpc("Count", Messages.Count)
export const Card = rpc("Card", Messages.Card)
export const Pop = rpc("Pop", Messages.Pop)
export const RemoveRange = rpc("RemoveRange", Messages.RemoveRange)

/**
 * Several requests to one set in one message, each with its own outcome, in order: what the
 * coalescing client (`SortedSetClient`) sends for calls made while one to the same set is in
 * flight.
 */
export const Batch = Rpc.make("Batch", {
  payload: { requests: Schema.Array(Messages.Request).check(Schema.isMaxLength(Messages.BATCH_REQUESTS_MAX)) },
  success: Schema.Struct({ outcomes: Schema.Array(Messages.BatchOutcome) }),
  error: InvalidArgument
})

/**
 * The sorted set entity type. `Batch` is what the coalescing client sends for its callers, each
 * of whom sent one request; over the HTTP ask route one body would carry a thousand ranges of up
 * to 100,000 members each, so it is internal there.
 */
export const SortedSetEntity = Entity.make("zset", [Add, IncrBy, Remove, Score, Rank, Range, Count, Card, Pop, RemoveRange, Batch], { internal: ["Batch"] })

const run = (tag: Messages.Request["_tag"]) => (payload: unknown, context: Entity.DirectContext<SortedSet.SortedSet>) =>
  Messages.handle(context.state, context.view, { _tag: tag, ...(payload as object) } as Messages.Request)

/** The sorted set entity's behaviour. */
export const behavior = Entity.direct(SortedSetEntity, {
  recover: ({ view }) => Effect.mapError(SortedSet.load(view, NAMESPACE), (error) => error as never),
  handlers: {
    Add: run("Add"),
    IncrBy: run("IncrBy"),
    Remove: run("Remove"),
    Score: run("Score"),
    Rank: run("Rank"),
    Range: run("Range"),
    Count: run("Count"),
    Card: run("Card"),
    Pop: run("Pop"),
    RemoveRange: run("RemoveRange"),
    Batch: (payload: { readonly requests: ReadonlyArray<Messages.Request> }, context: Entity.DirectContext<SortedSet.SortedSet>) =>
      Messages.handleBatch(context.state, context.view, payload.requests)
  } as never
})

/** Registers the sorted set entity type with the runtime. */
export const layer = EntityRuntime.register(behavior)

/** A client of sorted sets by key. */
export const client: Effect.Effect<EntityClient.EntityClient<typeof SortedSetEntity extends Entity.EntityType<string, infer R> ? R : never>, never, Messenger> =
  EntityClient.make(SortedSetEntity)
