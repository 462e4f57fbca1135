/**
 * `shardfeed ingest`: a node on the embedded default (LevelDB under `--data`, every shard local)
 * that consumes jobs other systems add to a BullMQ queue and appends them to JSON feeds, with
 * parsers saying where each job's keyspace, feed, nonce, timestamp and value are. With `--http`
 * it also serves HTTP API v1. It runs until SIGTERM or SIGINT, then appends what it buffered,
 * gives the queue's lease up, closes the store and exits 0.
 */
import { Config, Console, Effect, Layer, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { defaults } from "../../actors/RuntimeConfig.js"
import { redactUrl } from "../../persistence/RedisConnection.js"
import { InvalidArgument } from "../../persistence/StoreError.js"
import * as IngestBridge from "../durable/IngestBridge.js"
import * as Feed from "../feed/Feed.js"
import * as Node from "../node/Node.js"
import * as HttpServer from "../server/HttpServer.js"
import * as Settings from "./Settings.js"

const parsers = "Static(s), JobName, JobId, Data(path), Header(name)"

/** `--redis`: where the producers' queue lives. */
export const redis = Flag.String("redis").pipe(
  Flag.withDescription("Redis URL, redis:// or rediss:// (env SHARDFEED_REDIS); its password is never printed"),
  Flag.withFallbackConfig(Config.String("SHARDFEED_REDIS"))
)

const flags = {
  redis,
  queue: Flag.String("queue").pipe(Flag.withDescription("the BullMQ queue other systems add jobs to")),
  prefix: Flag.String("prefix").pipe(Flag.withDescription("the producers' BullMQ key prefix (default bull)"), Flag.withDefault("bull")),
  keyspace: Flag.String("keyspace").pipe(Flag.withDescription(`where the feed's keyspace is: ${parsers}, or None for feeds without one`)),
  feed: Flag.String("feed").pipe(Flag.withDescription(`where the feed's name is: ${parsers}`)),
  nonce: Flag.String("nonce").pipe(
    Flag.withDescription(`where the entry's nonce is (exactly-once appends): ${parsers}, JobTimestamp or None (default None)`),
    Flag.withDefault("None")
  ),
  timestamp: Flag.String("timestamp").pipe(
    Flag.withDescription("where the entry's timestamp is, in ms: Static(n), Data(path), Header(name), JobTimestamp or None (default None: the feed's clock)"),
    Flag.withDefault("None")
  ),
  value: Flag.String("value").pipe(Flag.withDescription("where the entry's value is: Data (the whole job data, the default) or Data(path)"), Flag.withDefault("Data")),
  flushInterval: Flag.Int("flush-interval").pipe(Flag.withDescription("append a feed's buffered entries once the oldest waited this many ms (default 100)"), Flag.withDefault(100)),
  batchItems: Flag.Int("batch-items").pipe(Flag.withDescription("entries per append at most (default 1000)"), Flag.withDefault(1_000)),
  batchBytes: Flag.Int("batch-bytes").pipe(Flag.withDescription("bytes per append at most (default 1048576)"), Flag.withDefault(1024 * 1024)),
  lease: Flag.Int("lease").pipe(
    Flag.withDescription("ms of the queue's consumer lease: another ingest process takes over this long after a crash (default 10000)"),
    Flag.withDefault(10_000)
  ),
  data: Settings.data,
  http: Flag.String("http").pipe(Flag.withDescription("also serve HTTP API v1 on host:port (default: no HTTP)"), Flag.optional),
  token: Settings.token,
  shards: Flag.Int("shards").pipe(
    Flag.withDescription(`shard count; must match the data directory's (env SHARDFEED_SHARDS; default ${defaults.shardCount})`),
    Flag.withFallbackConfig(Config.Int("SHARDFEED_SHARDS")),
    Flag.withDefault(defaults.shardCount)
  ),
  sync: Flag.Boolean("sync").pipe(Flag.withDescription("fsync every commit (default off)"), Flag.withDefault(false))
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
