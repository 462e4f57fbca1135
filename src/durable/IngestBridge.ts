/**
 * The ingest bridge (klstore's Kafka bridge, on BullMQ): it consumes the jobs other systems add
 * to a BullMQ queue and appends them to feeds of one feed type, through the process's `Messenger`
 * (so appends reach each feed's owner). A job is completed only after its append is acknowledged,
 * and each feed's jobs are appended in queue order across crashes (see `internal/ingestConsumer.ts`),
 * so with nonces every job's entry is in its feed exactly once. A job that cannot be parsed or that
 * the feed refuses goes to BullMQ's failed set with the reason and never blocks the queue.
 *
 * This module validates the options, checks entries against the feed's schema, and maps the feed's
 * answers; `shardfeed ingest` runs it on a node.
 */
import { Cause, Context, Effect, Exit, Layer, Schema, type Scope } from "effect"
import type { Messenger } from "../../actors/Messenger.js"
import { InvalidArgument } from "../../persistence/StoreError.js"
import * as Feed from "../feed/Feed.js"
import type { DurableUnavailable } from "./DurableError.js"
import * as DurableMetrics from "./DurableMetrics.js"
import * as IngestParser from "./IngestParser.js"
import * as Bull from "./internal/bullConnection.js"
import * as Ingest from "./internal/ingestConsumer.js"

/** Options of a bridge; parsers are given as text (`Data(match.id)`) or as `IngestParser` values. */
export interface IngestOptions extends Bull.BullConnectionOptions {
  /** The BullMQ queue the producers add to. */
  readonly queue: string
  /** The producers' BullMQ key prefix (default `bull`, BullMQ's own default). */
  readonly prefix?: string | undefined
  /** The feed's keyspace (`None`: feed ids without a keyspace). */
  readonly keyspace: IngestParser.Parser | string
  readonly feed: IngestParser.Parser | string
  /** Default `None` (no exactly-once: a re-delivered job is appended again). */
  readonly nonce?: IngestParser.Parser | string | undefined
  /** Default `None` (the feed's clock). */
  readonly timestamp?: IngestParser.Parser | string | undefined
  /** The entry's value (default `Data`: the job's whole data). */
  readonly value?: IngestParser.Parser | string | undefined
  /** A feed's buffered entries are appended once the oldest waited this long (default 100 ms), as soon as an append slot is free. */
  readonly flushIntervalMillis?: number | undefined
  /** Entries per append at most (default 1,000, the feed's own limit). */
  readonly batchItemsMax?: number | undefined
  /** Encoded bytes per append at most (default 1 MiB; a single larger entry still goes alone). */
  readonly batchBytesMax?: number | undefined
  /**
   * Jobs taken and not yet completed at most (default 2,000: one full batch appending and one
   * filling); past it fetching waits. More costs more than memory: each job in flight sits in
   * BullMQ's active list, which every completion walks to remove its job, and a job held long
   * outlives the young heap generation.
   */
  readonly inFlightJobsMax?: number | undefined
  /** Fetches sent ahead of the one being taken (default 64). */
  readonly fetchAheadMax?: number | undefined
  /**
   * Appends in flight at once, over all feeds (default 32). A due batch waits for a slot and
   * gathers more entries meanwhile, so a busy bridge makes fewer, larger appends.
   */
  readonly appendsInFlightMax?: number | undefined
  /**
   * The consumer lease (default 10 s): a crashed holder's queue is taken over once it expires; a
   * holder stops taking jobs half a lease after its last renewal.
   */
  readonly leaseMillis?: number | undefined
  /** BullMQ `lockDuration` of taken jobs (default 60 s), extended every third of it while buffered. */
  readonly lockDurationMillis?: number | undefined
  /** BullMQ `removeOnComplete` of jobs whose producer set none: completed jobs kept (default 1,000). */
  readonly completedJobsKept?: number | undefined
  /** BullMQ `removeOnFail` of jobs whose producer set none: failed jobs kept with their reason (default 100,000). */
  readonly failedJobsKept?: number | undefined
}

/** The bridge as a service: its queue and live counts. */
export interface IngestBridgeShape {
  readonly queue: string
  readonly stats: () => Ingest.IngestStats
}

/** The ingest bridge service tag. */
export class IngestBridge extends Context.Service<IngestBridge, IngestBridgeShape>()("shardfeed/IngestBridge") {}

const TIMESTAMP_MAX = 8.64e15
const NONCE_TEXT = /^(0|[1-9][0-9]{0,38})$/
const QUEUE_NAME = /^[A-Za-z0-9_.-]{1,128}$/
/** Errors of an append that a later attempt may not get. */
const PASSING = new Set(["MailboxFull", "Overloaded", "ShardNotOwned", "EntityUnavailable", "OutcomeUnknown", "AskTimeout", "StoreUnavailable", "StoreClosed", "Fenced"])
const ITEM_FIELD = /^items\[(\d+)\]/

const bounded = (field: string, value: number | undefined, fallback: number, min: number, max: number): number | InvalidArgument => {
  const given = value ?? fallback
  return Number.isInteger(given) && given >= min && given <= max ? given : new InvalidArgument({ field, message: `must be an integer from ${min} to ${max}` })
}

/** Checks the options and fills in the defaults. */
export const settings = (options: IngestOptions): Ingest.IngestSettings | InvalidArgument => {
  if (!QUEUE_NAME.test(options.queue)) return new InvalidArgument({ field: "queue", message: `must match ${QUEUE_NAME}` })
  const prefix = options.prefix ?? "bull"
  if (!Bull.PREFIX.test(prefix)) return new InvalidArgument({ field: "prefix", message: `must match ${Bull.PREFIX}` })
  const keyspace = IngestParser.from(options.keyspace, "keyspace")
  const feed = IngestParser.from(options.feed, "feed")
  const nonce = IngestParser.from(options.nonce ?? IngestParser.None, "nonce")
  const timestamp = IngestParser.from(options.timestamp ?? IngestParser.None, "timestamp")
  const value = IngestParser.from(options.value ?? IngestParser.Data(), "value")
  for (const parsed of [keyspace, feed, nonce, timestamp, value]) if (parsed instanceof InvalidArgument) return parsed
  const numbers = {
    flushIntervalMillis: bounded("flushIntervalMillis", options.flushIntervalMillis, 100, 1, 60_000),
    batchItemsMax: bounded("batchItemsMax", options.batchItemsMax, 1_000, 1, 1_000),
    batchBytesMax: bounded("batchBytesMax", options.batchBytesMax, 1024 * 1024, 1, 16 * 1024 * 1024),
    inFlightJobsMax: bounded("inFlightJobsMax", options.inFlightJobsMax, 2_000, 1, 1_000_000),
    fetchAheadMax: bounded("fetchAheadMax", options.fetchAheadMax, 64, 1, 1_000),
    appendsInFlightMax: bounded("appendsInFlightMax", options.appendsInFlightMax, 32, 1, 10_000),
    leaseMillis: bounded("leaseMillis", options.leaseMillis, 10_000, 200, 600_000),
    lockDurationMillis: bounded("lockDurationMillis", options.lockDurationMillis, 60_000, 1_000, 3_600_000),
    completedJobsKept: bounded("completedJobsKept", options.completedJobsKept, 1_000, 0, 10_000_000),
    failedJobsKept: bounded("failedJobsKept", options.failedJobsKept, 100_000, 0, 10_000_000)
  }
  for (const number of Object.values(numbers)) if (number instanceof InvalidArgument) return number
  return {
    queue: options.queue,
    prefix,
    parsers: {
      keyspace: keyspace as IngestParser.Parser,
      feed: feed as IngestParser.Parser,
      nonce: nonce as IngestParser.Parser,
      timestamp: timestamp as IngestParser.Parser,
      value: value as IngestParser.Parser
    },
    ...(numbers as { [K in keyof typeof numbers]: number })
  }
}

/** Checks an entry the way the feed will, so one bad job fails alone instead of its whole batch. */
const preparer = <A, I>(type: Feed.FeedType<A, I>) => {
  // Job data is already plain JSON: for `Feed.Json` there is nothing to decode.
  const decode = type.entry === (Schema.Json as unknown) ? undefined : Schema.decodeUnknownExit(Schema.toCodecJson(type.entry) as unknown as Schema.Codec<A, unknown>)
  return (entry: IngestParser.ParsedEntry): Ingest.PreparedItem | string => {
    const { nonce, timestamp } = entry
    if (nonce !== undefined && !(typeof nonce === "number" ? Number.isSafeInteger(nonce) && nonce >= 0 : NONCE_TEXT.test(nonce))) {
      return `nonce ${String(nonce).slice(0, 64)} is not a non-negative integer (a number up to 2^53-1 or a decimal string)`
    }
    if (timestamp !== undefined && !(Number.isFinite(timestamp) && timestamp >= 0 && timestamp <= TIMESTAMP_MAX)) {
      return `timestamp ${timestamp} is not milliseconds since the epoch from 0 to ${TIMESTAMP_MAX}`
    }
    let value = entry.value
    if (decode !== undefined) {
      const decoded = decode(value)
      if (Exit.isFailure(decoded)) {
        const failure = Cause.findErrorOption(decoded.cause)
        return `the value does not fit the feed's schema: ${failure._tag === "Some" ? failure.value.message.split("\n")[0] : "invalid"}`
      }
      value = decoded.value
    }
    const text = JSON.stringify(entry.value)
    return { value, nonce, timestamp, bytes: text === undefined ? 0 : Buffer.byteLength(text) }
  }
}

/** Maps a feed's answer to an append into what the consumer does next. */
const outcomeOf = (exit: Exit.Exit<ReadonlyArray<unknown>, unknown>): Ingest.AppendOutcome => {
  if (Exit.isSuccess(exit)) return { _tag: "Ok", duplicates: exit.value.map((result) => typeof result === "object" && result !== null && "duplicate" in result) }
  const failure = Cause.findErrorOption(exit.cause)
  if (failure._tag === "None") return { _tag: "Retry", reason: Cause.pretty(exit.cause).slice(0, 500) }
  const error = failure.value as { readonly _tag?: string; readonly field?: unknown; readonly message?: unknown }
  const tag = error._tag ?? "Error"
  const reason = `${tag}${typeof error.message === "string" ? `: ${error.message}` : ""}`
  if (PASSING.has(tag)) return { _tag: "Retry", reason }
  const item = typeof error.field === "string" ? ITEM_FIELD.exec(error.field) : null
  if (item !== null) return { _tag: "ItemRefused", index: Number(item[1]), reason: `${reason} (${String(error.field).replace(ITEM_FIELD, "item")})` }
  return { _tag: "BatchRefused", reason }
}

/** Runs a bridge for the scope: appends the jobs of `options.queue` to feeds of `type`. */
export const make = <A, I>(type: Feed.FeedType<A, I>, options: IngestOptions): Effect.Effect<IngestBridgeShape, InvalidArgument | DurableUnavailable, Messenger | Scope.Scope> =>
  Effect.gen(function*() {
    const checked = settings(options)
    if (checked instanceof InvalidArgument) return yield* Effect.fail(checked)
    // A batch is one append: never more items than the feed type takes in one.
    const valid = { ...checked, batchItemsMax: Math.min(checked.batchItemsMax, type.limits.appendItemsMax) }
    const parsed = Bull.parseUrl(options.url)
    if (parsed instanceof InvalidArgument) return yield* Effect.fail(parsed)
    const untagged = Bull.checkSlotPrefix(parsed, valid.prefix, "prefix")
    if (untagged !== undefined) return yield* Effect.fail(untagged)
    const feeds = yield* Feed.client(type)
    const recorder = new DurableMetrics.Recorder(yield* Effect.context<never>())
    const queue = valid.queue
    const counts = {
      appended: recorder.counter(DurableMetrics.ingestJobs, { queue, outcome: "appended" }),
      duplicate: recorder.counter(DurableMetrics.ingestJobs, { queue, outcome: "duplicate" }),
      failed: recorder.counter(DurableMetrics.ingestJobs, { queue, outcome: "failed" })
    }
    const takeovers = recorder.counter(DurableMetrics.ingestTakeovers, { queue })
    const requeued = recorder.counter(DurableMetrics.ingestRequeued, { queue })
    const batchItems = DurableMetrics.ingestBatchItems
    const context = yield* Effect.context<never>()
    const prepare = preparer(type)
    const consumer = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          Ingest.start(options, parsed, valid, {
            prepare,
            append: (feed, items) =>
              Effect.runPromiseExit(feeds.append(feed, items.map((item) => ({ value: item.value as A, nonce: item.nonce, timestamp: item.timestamp })))).then(outcomeOf),
            counted: (outcome, count) => counts[outcome](count),
            batched: (items) => batchItems.updateUnsafe(items, context),
            tookOver: (count) => {
              takeovers()
              requeued(count)
            },
            log: (text) => {
              Effect.runFork(Effect.logWarning(text))
            }
          }),
        catch: (cause) => Bull.translate("ingest", cause)
      }),
      (running) => Effect.promise(() => running.close().catch(() => undefined))
    )
    return { queue, stats: consumer.stats }
  })

/** The bridge as a layer (one queue; build `make` yourself for several). */
export const layer = <A, I>(type: Feed.FeedType<A, I>, options: IngestOptions): Layer.Layer<IngestBridge, InvalidArgument | DurableUnavailable, Messenger> =>
  Layer.effect(IngestBridge, make(type, options))
