/**
 * `shardfeed ingest`: a node on the embedded default (LevelDB under `--data`, every shard local)
 * that consumes jobs other systems add to a BullMQ queue and appends them to JSON feeds, with
 * parsers saying where each job's keyspace, feed, nonce, timestamp and value are. With `--http`
 * it also serves HTTP API v1. It runs until SIGTERM or SIGINT, then appends what it buffered,
 * gives the queue's lease up, closes the store and exits 0.
 */
import { Console, Effect, Layer, Option } from "effect"
import { Command } from "effect/cli"
import { redactUrl } from "../../persistence/RedisConnection.js"
import { InvalidArgument } from "../../persistence/StoreError.js"
import * as IngestBridge from "../durable/IngestBridge.js"
import * as Feed from "../feed/Feed.js"
import * as Node from "../node/Node.js"
import * as HttpServer from "../server/HttpServer.js"
import * as Settings from "./Settings.js"

const parsers = "Static(s), JobName, JobId, Data(path), Header(name)"

/** An ingest setting's environment variable: `SHARDFEED_INGEST_<FLAG>` (`ingest<Flag>` in the file). */
const env = (flag: string) => Settings.envName(`ingest-${flag}`)

const flags = {
  redis: Settings.redis,
  queue: Settings.requiredString("queue", "the BullMQ queue other systems add jobs to", env("queue")),
  prefix: Settings.string("prefix", "the producers' BullMQ key prefix", "bull", env("prefix")),
  keyspace: Settings.string("keyspace", `where the feed's keyspace is: ${parsers}, or None for feeds without one`, "None", env("keyspace")),
  feed: Settings.requiredString("feed", `where the feed's name is: ${parsers}`, env("feed")),
  nonce: Settings.string("nonce", `where the entry's nonce is (exactly-once appends): ${parsers}, JobTimestamp or None`, "None", env("nonce")),
  timestamp: Settings.string(
    "timestamp",
    "where the entry's timestamp is, in ms: Static(n), Data(path), Header(name), JobTimestamp or None (the feed's clock)",
    "None",
    env("timestamp")
  ),
  value: Settings.string("value", "where the entry's value is: Data (the whole job data) or Data(path)", "Data", env("value")),
  flushInterval: Settings.integer("flush-interval", "append a feed's buffered entries once the oldest waited this many ms", 100, env("flush-interval")),
  batchItems: Settings.integer("batch-items", "entries per append at most", 1_000, env("batch-items")),
  batchBytes: Settings.integer("batch-bytes", "bytes per append at most", 1024 * 1024, env("batch-bytes")),
  lease: Settings.integer("lease", "ms of the queue's consumer lease: another ingest process takes over this long after a crash", 10_000, env("lease")),
  data: Settings.data,
  http: Settings.optionalString("http", "also serve HTTP API v1 on host:port", "no HTTP", env("http")),
  token: Settings.token,
  shards: Settings.shards,
  sync: Settings.sync
}

/** The ingest command. */
export const ingestCommand = Command.make("ingest", flags, (given) =>
  Effect.gen(function*() {
    const address = Option.match(given.http, { onNone: () => ({ host: "127.0.0.1", port: 0 }), onSome: Settings.parseAddress })
    if (typeof address === "string") return yield* Effect.fail(new Node.NodeConfigError(address))
    const options: IngestBridge.IngestOptions = {
      url: given.redis,
      queue: given.queue,
      prefix: given.prefix,
      keyspace: given.keyspace,
      feed: given.feed,
      nonce: given.nonce,
      timestamp: given.timestamp,
      value: given.value,
      flushIntervalMillis: given.flushInterval,
      batchItemsMax: given.batchItems,
      batchBytesMax: given.batchBytes,
      leaseMillis: given.lease
    }
    // Bad parsers or bounds are refused before anything opens, naming the flag.
    const checked = IngestBridge.settings(options)
    if (checked instanceof InvalidArgument) return yield* Effect.fail(new Node.NodeConfigError(`--${checked.field}: ${checked.message}`))
    const nodeOptions: Node.NodeOptions = {
      data: given.data,
      host: address.host,
      port: address.port,
      token: Option.getOrUndefined(given.token),
      sync: given.sync,
      runtime: { shardCount: given.shards }
    }
    const valid = yield* Node.validate(nodeOptions)
    const context = yield* Layer.build(Node.layer(valid))
    yield* Layer.build(IngestBridge.layer(Feed.Json, options)).pipe(Effect.provideContext(context))
    yield* Console.log(`shardfeed ingesting queue ${given.queue} at ${redactUrl(given.redis)} into the JSON feeds of ${given.data}`)
    if (Option.isSome(given.http)) {
      const bound = yield* HttpServer.make(Node.routes, { host: valid.host, port: valid.port, token: valid.token }).pipe(Effect.provideContext(context))
      yield* Console.log(`  API        http://${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}/v1`)
    }
    return yield* Effect.never
  }).pipe(Effect.scoped)
).pipe(Command.withDescription("Appends the jobs of a BullMQ queue to feeds, in queue order, exactly once with nonces; runs a node on --data"))
