/**
 * `shardfeed worker`: joins a Redis-coordinated cluster, hosts the shards the assignment gives
 * it, and serves HTTP API v1 (any worker routes any request). SIGTERM is a graceful leave: out of
 * the membership, every shard drained and handed over, then exit 0.
 */
import { Console, Effect, Option } from "effect"
import { Command } from "effect/cli"
import { defaults as shardingDefaults } from "../../sharding/ShardingConfig.js"
import * as Worker from "../../sharding/Worker.js"
import { redactUrl } from "../../persistence/RedisConnection.js"
import * as Node from "../node/Node.js"
import * as Settings from "./Settings.js"

const store = Settings.string("store", "where data lives: redis (shared, required for more than one worker), level:<directory> or memory", "redis")
const weight = Settings.finite("weight", "this worker's share of the shards relative to others", 1)
const transport = Settings.string("transport", "host:port other workers reach this one on (port 0: a free one)", "127.0.0.1:0")
const advertise = Settings.optionalString(
  "advertise",
  "host:port other workers reach this one's transport on, when it is not the --transport address (behind NAT, a port mapping or a proxy)",
  "the --transport address"
)
const cluster = Settings.string("cluster", "the cluster's name; workers of one cluster share it", "default")
const id = Settings.optionalString("id", "this worker's id", "random")
const leaseMs = Settings.integer("lease-ms", "how long a heartbeat or shard lease lives without renewal, ms", 3_000)
const refreshMs = Settings.integer("refresh-ms", "how often leases are renewed and the map recomputed, ms; at most lease / 3", 1_000)
const rebalanceFraction = Settings.finite(
  "rebalance-fraction",
  "most shards this worker takes or gives up per refresh, hand-offs still draining included, as a fraction of all (above 0, at most 1)",
  0.25
)
const clientOnly = Settings.boolean("client-only", "host no shard: only route requests to the cluster's workers (a gateway)")
const holdingsLog = Settings.optionalString(
  "holdings-log",
  "append a JSON line per shard holding begun or ended (shard, epoch, since, until) to this file: an audit of when this worker could write each shard",
  "none"
)

/** The worker command. */
export const workerCommand = Command.make(
  "worker",
  {
    redis: Settings.redis,
    store,
    weight,
    http: Settings.http,
    token: Settings.token,
    transport,
    advertise,
    cluster,
    id,
    shards: Settings.shards,
    leaseMs,
    refreshMs,
    rebalanceFraction,
    clientOnly,
    holdingsLog,
    compactEvery: Settings.compactEvery,
    ...Settings.durable
  },
  (flags) =>
    Effect.gen(function*() {
      const http = Settings.parseAddress(flags.http)
      const peer = Settings.parseAddress(flags.transport)
      const storeOption = Worker.parseStore(flags.store)
      for (const problem of [http, peer, storeOption]) {
        if (typeof problem === "string") return yield* Effect.fail(new Node.NodeConfigError(problem.replace("--http", problem === peer ? "--transport" : "--http")))
      }
      const advertised = Option.map(flags.advertise, Settings.parseAddress)
      if (Option.isSome(advertised) && typeof advertised.value === "string") {
        return yield* Effect.fail(new Node.NodeConfigError(advertised.value.replace("--http", "--advertise")))
      }
      const workerId = Option.getOrElse(flags.id, () => shardingDefaults().workerId)
      const bound = yield* Node.serveWorker({
        redisUrl: flags.redis,
        store: storeOption as Worker.StoreOption,
        transport: { ...(peer as { host: string; port: number }), advertise: Option.getOrUndefined(flags.advertise)?.trim() },
        sharding: {
          clusterName: flags.cluster,
          weight: flags.weight,
          leaseMillis: flags.leaseMs,
          refreshMillis: flags.refreshMs,
          rebalanceFraction: flags.rebalanceFraction,
          workerId
        },
        clientOnly: flags.clientOnly,
        holdingsLog: Option.getOrUndefined(flags.holdingsLog),
        runtime: { shardCount: flags.shards },
        host: (http as { host: string }).host,
        port: (http as { port: number }).port,
        token: Option.getOrUndefined(flags.token),
        compactEverySeconds: flags.compactEvery,
        durable: Settings.durableConfig(flags)
      })
      const base = `http://${bound.address}:${bound.port}`
      yield* Console.log(`shardfeed worker ${workerId}${flags.clientOnly ? " (client only)" : ""} in cluster ${flags.cluster} (coordination ${redactUrl(flags.redis)}, store ${flags.store})\n  API        ${base}/v1\n  dashboard  ${base}/dashboard`)
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(Command.withDescription("Joins a Redis-coordinated cluster as a worker and serves HTTP API v1"))
