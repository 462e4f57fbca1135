/**
 * `shardfeed worker`: joins a Redis-coordinated cluster, hosts the shards the assignment gives
 * it, and serves HTTP API v1 (any worker routes any request). SIGTERM is a graceful leave: out of
 * the membership, every shard drained and handed over, then exit 0.
 */
import { Config, Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { defaults } from "../../actors/RuntimeConfig.js"
import { defaults as shardingDefaults } from "../../sharding/ShardingConfig.js"
import * as Worker from "../../sharding/Worker.js"
import { redactUrl } from "../../persistence/RedisConnection.js"
import * as Node from "../node/Node.js"
import * as Settings from "./Settings.js"

const redis = Flag.String("redis").pipe(
  Flag.withDescription("the coordination Redis: redis://[user:password@]host:port, rediss:// for TLS, or comma-separated cluster nodes (env SHARDFEED_REDIS)"),
  Flag.withFallbackConfig(Config.String("SHARDFEED_REDIS"))
)
const store = Flag.String("store").pipe(
  Flag.withDescription("where data lives: redis (shared, required for more than one worker), level:<directory> or memory (default redis)"),
  Flag.withDefault("redis")
)
const weight = Flag.Finite("weight").pipe(Flag.withDescription("this worker's share of the shards relative to others (default 1)"), Flag.withDefault(1))
const transport = Flag.String("transport").pipe(
  Flag.withDescription("host:port other workers reach this one on (default 127.0.0.1:0, a free port)"),
  Flag.withDefault("127.0.0.1:0")
)
const cluster = Flag.String("cluster").pipe(Flag.withDescription("the cluster's name; workers of one cluster share it (default default)"), Flag.withDefault("default"))
const id = Flag.String("id").pipe(Flag.withDescription("this worker's id (default: random)"), Flag.optional)
const shards = Flag.Int("shards").pipe(
  Flag.withDescription(`shard count; must match on every worker (env SHARDFEED_SHARDS; default ${defaults.shardCount})`),
  Flag.withFallbackConfig(Config.Int("SHARDFEED_SHARDS")),
  Flag.withDefault(defaults.shardCount)
)

const leaseMs = Flag.Int("lease-ms").pipe(
  Flag.withDescription("how long a heartbeat or shard lease lives without renewal, ms (default 3000)"),
  Flag.withDefault(3_000)
)
const refreshMs = Flag.Int("refresh-ms").pipe(
  Flag.withDescription("how often leases are renewed and the map recomputed, ms; at most lease / 3 (default 1000)"),
  Flag.withDefault(1_000)
)
const clientOnly = Flag.Boolean("client-only").pipe(
  Flag.withDescription("host no shard: only route requests to the cluster's workers (a gateway)"),
  Flag.withDefault(false)
)

const holdingsLog = Flag.String("holdings-log").pipe(
  Flag.withDescription("append a JSON line per shard holding begun or ended (shard, epoch, since, until) to this file: an audit of when this worker could write each shard"),
  Flag.optional
)

/** The worker command. */
export const workerCommand = Command.make(
  "worker",
  { redis, store, weight, http: Settings.http, token: Settings.token, transport, cluster, id, shards, leaseMs, refreshMs, clientOnly, holdingsLog, compactEvery: Settings.compactEvery },
  (flags) =>
    Effect.gen(function*() {
      const http = Settings.parseAddress(flags.http)
      const peer = Settings.parseAddress(flags.transport)
      const storeOption = Worker.parseStore(flags.store)
      for (const problem of [http, peer, storeOption]) {
        if (typeof problem === "string") return yield* Effect.fail(new Node.NodeConfigError(problem.replace("--http", problem === peer ? "--transport" : "--http")))
      }
      const workerId = Option.getOrElse(flags.id, () => shardingDefaults().workerId)
      const bound = yield* Node.serveWorker({
        redisUrl: flags.redis,
        store: storeOption as Worker.StoreOption,
        transport: peer as { host: string; port: number },
        sharding: {
          clusterName: flags.cluster,
          weight: flags.weight,
          leaseMillis: flags.leaseMs,
          refreshMillis: flags.refreshMs,
          workerId
        },
        clientOnly: flags.clientOnly,
        holdingsLog: Option.getOrUndefined(flags.holdingsLog),
        runtime: { shardCount: flags.shards },
        host: (http as { host: string }).host,
        port: (http as { port: number }).port,
        token: Option.getOrUndefined(flags.token),
        compactEverySeconds: flags.compactEvery
      })
      const base = `http://${bound.address}:${bound.port}`
      yield* Console.log(`shardfeed worker ${workerId}${flags.clientOnly ? " (client only)" : ""} in cluster ${flags.cluster} (coordination ${redactUrl(flags.redis)}, store ${flags.store})\n  API        ${base}/v1\n  dashboard  ${base}/dashboard`)
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(Command.withDescription("Joins a Redis-coordinated cluster as a worker and serves HTTP API v1"))
