/**
 * Feeds: append-ordered, pageable lists per key with exactly-once appends (by nonce), seeking by
 * offset, timestamp or nonce, two-way paging with opaque cursors, removal and retention. One
 * feed entity per feed id (see `FeedEntity.ts`), so a feed has a single writer and is
 * sequentially consistent; read-after-ack holds because reads go through the same entity.
 *
 * A feed type is defined in app code with an Effect Schema for its entries
 * (`Feed.define("match-events", { entry: MatchEvent })`; a union schema gives polymorphic feeds);
 * `Feed.Json` is the built-in type for any JSON value, the one the HTTP API serves.
 */
import { Effect, Exit, Schema } from "effect"
import * as Coalescer from "../../actors/Coalescer.js"
import type { Behavior, EntityType } from "../../actors/Entity.js"
import * as Entity from "../../actors/Entity.js"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityListing from "../../actors/EntityListing.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { Messenger, type MessengerShape } from "../../actors/Messenger.js"
import { RuntimeConfig } from "../../actors/RuntimeConfig.js"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import { InvalidArgument, type ReadError } from "../../persistence/StoreError.js"
import { behavior, defaultLimits, type FeedLimits, type Retention } from "./FeedEntity.js"
import * as FeedMessages from "./FeedMessages.js"
import * as Head from "./internal/head.js"

/** A feed type: its name, entry schema, messages and behaviour. */
export interface FeedType<A, I> {
  /** The entity type name (`feed` for `Feed.Json`, `feed.<name>` for defined types). */
  readonly type: string
  readonly entry: Schema.Codec<A, I>
  readonly messages: ReturnType<typeof FeedMessages.make<A, I>>
  readonly entity: EntityType<string, FeedRpcs<A, I>>
  readonly behavior: Behavior<never>
  /** The type's limits (an append's items, a page's, records'), defaults filled in. */
  readonly limits: FeedLimits
}

type Messages<A, I> = ReturnType<typeof FeedMessages.make<A, I>>
type FeedRpcs<A, I> = Messages<A, I>["Append" | "AppendBatches" | "Get" | "Remove" | "Page" | "Metadata" | "Delete" | "Trim" | "Compact" | "Purge"]

/** Options of a feed type. */
export interface FeedOptions<A, I> {
  readonly entry: Schema.Codec<A, I>
  /** Keep at most this many entries and/or entries younger than this; trimmed in the background. */
  readonly retention?: Retention | undefined
  readonly limits?: Partial<FeedLimits> | undefined
  /** The clock for items without a timestamp (default `Date.now`); tests pass their own. */
  readonly clock?: (() => number) | undefined
}

const NAME = /^[a-z][a-z0-9-]{0,47}$/

const make = <A, I>(type: string, options: FeedOptions<A, I>): FeedType<A, I> => {
  const limits = { ...defaultLimits, ...options.limits }
  const messages = FeedMessages.make(options.entry)
  const entity = Entity.make(type, [
    messages.Append, messages.AppendBatches, messages.Get, messages.Remove, messages.Page, messages.Metadata, messages.Delete, messages.Trim, messages.Compact, messages.Purge
  ], { internal: ["Purge"] }) as EntityType<string, FeedRpcs<A, I>>
  return {
    type,
    entry: options.entry,
    messages,
    entity,
    behavior: behavior(entity, options.entry, { retention: options.retention, limits, clock: options.clock }) as Behavior<never>,
    limits
  }
}

/** Defines a feed type named `feed.<name>` (name: lowercase letters, digits and `-`). */
export const define = <A, I>(name: string, options: FeedOptions<A, I>): FeedType<A, I> => {
  if (!NAME.test(name)) throw new Error(`feed type name "${name}" must match ${NAME}`)
  return make(`feed.${name}`, options)
}

/** The built-in feed type of any JSON value (entity type `feed`). */
export const Json: FeedType<Schema.Json, Schema.Json> = make("feed", { entry: Schema.Json })

/** Registers a feed type with the entity runtime. */
export const layer = <A, I>(type: FeedType<A, I>) => EntityRuntime.register(type.behavior)

/** One item to append. */
export interface AppendItem<A> {
  readonly value: A
  /** Exactly-once key: an item whose nonce is not above the last accepted one is a duplicate. */
  readonly nonce?: number | string | bigint | undefined
  /** Milliseconds since the epoch; default: the worker's clock, raised to the feed's last timestamp. */
  readonly timestamp?: number | undefined
}

/** One entry of a feed. */
export interface FeedEntry<A> {
  readonly offset: number
  readonly timestamp: number
  readonly nonce?: string | undefined
  readonly value: A
}

/** A page of entries and the cursor after its last one (null when the page is empty). */
export interface Page<A> {
  readonly items: ReadonlyArray<FeedEntry<A>>
  readonly cursor: string | null
}

/** Where a page starts: at most one of `offset`, `timestamp`, `nonce`, or a `cursor`. */
export interface PageOptions {
  readonly order?: "forward" | "backward" | undefined
  /** 1 to 1,000 (default 100). */
  readonly limit?: number | undefined
  readonly offset?: number | undefined
  readonly timestamp?: number | undefined
  readonly nonce?: number | string | bigint | undefined
  readonly cursor?: string | undefined
}

/** Operations on the feeds of one type. */
export interface FeedClient<A, I> {
  readonly append: (feed: string, items: ReadonlyArray<AppendItem<A>>) => Effect.Effect<ReadonlyArray<FeedMessages.AppendResult>, EntityClient.AskError<Messages<A, I>["Append"]>>
  readonly get: (feed: string, offset: number) => Effect.Effect<FeedEntry<A>, EntityClient.AskError<Messages<A, I>["Get"]>>
  readonly remove: (feed: string, offset: number) => Effect.Effect<boolean, EntityClient.AskError<Messages<A, I>["Remove"]>>
  readonly page: (feed: string, options?: PageOptions) => Effect.Effect<Page<A>, EntityClient.AskError<Messages<A, I>["Page"]>>
  readonly metadata: (feed: string) => Effect.Effect<FeedMessages.FeedMetadata, EntityClient.AskError<Messages<A, I>["Metadata"]>>
  readonly delete: (feed: string) => Effect.Effect<boolean, EntityClient.AskError<Messages<A, I>["Delete"]>>
  /**
   * One bounded compaction step: merges runs of small records (a feed appended to one item per
   * commit gets a record per item) into records of up to the type's limits. `more` is true when
   * the step read its bound of records (`compactRecordsMax`), so more may be left; the feed then
   * goes on by itself, one step per message, after the messages queued meanwhile.
   */
  readonly compact: (feed: string) => Effect.Effect<FeedMessages.CompactResult, EntityClient.AskError<Messages<A, I>["Compact"]>>
}

const nonceWire = (nonce: number | string | bigint | undefined) => (typeof nonce === "bigint" ? nonce.toString() : nonce)

type AppendResults = ReadonlyArray<FeedMessages.AppendResult>

/** One item as it goes to the entity. */
interface WireItem {
  readonly value: unknown
  readonly nonce?: number | string | undefined
  readonly timestamp?: number | undefined
}

/** Items in one coalesced append message at most (a single call of more still goes alone). */
const COALESCED_ITEMS_MAX = 10_000
/** Appends that may wait behind the one in flight to one feed. */
const APPENDS_WAITING_MAX = 4_096

/**
 * The appender of a feed type over a messenger, shared by every client of the process: appends
 * alone are `Append`, appends made while one is in flight go together as `AppendBatches`, each
 * call still its own atomic append with its own outcome (`actors/Coalescer.ts`).
 */
const appenderFor = (messenger: MessengerShape, type: string, timeoutMillis: number) =>
  Coalescer.sharedFor<ReadonlyArray<WireItem>, AppendResults>(messenger, type, () => ({
    type,
    single: (items) => ({ tag: "Append", payload: { items } }),
    singleReply: (value) => (value as { readonly results: AppendResults }).results,
    batch: (calls) => ({ tag: "AppendBatches", payload: { calls: calls.map((items) => ({ items })) } }),
    batchOutcomes: (value) =>
      (value as { readonly outcomes: ReadonlyArray<{ readonly ok: true; readonly results: AppendResults } | { readonly ok: false; readonly error: unknown }> })
        .outcomes.map((outcome) => (outcome.ok ? Exit.succeed(outcome.results) : Exit.fail(outcome.error))),
    callsMax: FeedMessages.APPEND_CALLS_MAX,
    waitingMax: APPENDS_WAITING_MAX,
    timeoutMillis,
    weight: (items) => items.length,
    weightMax: COALESCED_ITEMS_MAX
  }))

/**
 * A client for the feeds of `type`. Appends to one feed made while another is in flight (from any
 * client of this process) are sent together when it is answered, each keeping its own outcome:
 * see `appenderFor`.
 */
export const client = <A, I>(type: FeedType<A, I>): Effect.Effect<FeedClient<A, I>, never, Messenger> =>
  Effect.gen(function*() {
    const entities = yield* EntityClient.make(type.entity)
    const appender = appenderFor(yield* Messenger, type.type, (yield* RuntimeConfig).askTimeoutMillis)
    const ask = entities.ask as unknown as (id: string, tag: string, payload?: unknown) => Effect.Effect<any, any>
    return {
      append: (feed, items) =>
        appender.ask(feed, items.map((item) => ({ value: item.value, nonce: nonceWire(item.nonce), timestamp: item.timestamp }))) as Effect.Effect<
          ReadonlyArray<FeedMessages.AppendResult>,
          any
        >,
      get: (feed, offset) => ask(feed, "Get", { offset }),
      remove: (feed, offset) => Effect.map(ask(feed, "Remove", { offset }), (reply: { readonly removed: boolean }) => reply.removed),
      page: (feed, options = {}) => ask(feed, "Page", { ...options, nonce: nonceWire(options.nonce) }),
      metadata: (feed) => ask(feed, "Metadata"),
      delete: (feed) => Effect.map(ask(feed, "Delete"), (reply: { readonly deleted: boolean }) => reply.deleted),
      compact: (feed) => ask(feed, "Compact")
    } satisfies FeedClient<A, I>
  }) as unknown as Effect.Effect<FeedClient<A, I>, never, Messenger>

/**
 * Options of `list`: a `keyspace` (`""` is the default one, the names without a slash; absent:
 * every keyspace), a name `prefix` within it, `limit` 1 to 1,000 (default 100), `cursor`.
 */
export interface ListOptions extends EntityListing.ListOptions {
  readonly keyspace?: string | undefined
}

const SLASH = 0x2f

/**
 * Lists the feeds of a type in name order, across every shard, reading committed data. Each
 * shard is scanned for at most `limit` names below the current `limit`-th best, so memory stays
 * O(limit) however many feeds there are.
 */
export const list = <A, I>(
  type: FeedType<A, I>,
  options: ListOptions = {}
): Effect.Effect<{ readonly feeds: ReadonlyArray<string>; readonly cursor: string | null }, ReadError | InvalidArgument, KeyValueStore> =>
  Effect.suspend(() => {
    const { keyspace, ...listing } = options
    if (keyspace !== undefined && (typeof keyspace !== "string" || keyspace.includes("/"))) {
      return Effect.fail(new InvalidArgument({ field: "keyspace", message: "must be a keyspace name, without a slash" }))
    }
    // A named keyspace is a prefix of names; the default one is the names without a slash.
    const prefix = keyspace === undefined || keyspace === "" ? listing.prefix : `${keyspace}/${listing.prefix ?? ""}`
    const inDefault = keyspace === ""
    return Effect.map(
      EntityListing.list(type.type, "head", { ...listing, prefix }, (value, id) => (!inDefault || !id.includes(SLASH)) && Head.exists(Head.decode(value))),
      (page) => ({ feeds: page.ids, cursor: page.cursor })
    )
  })
