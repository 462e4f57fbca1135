/**
 * `shardfeed serve`: a single node on the embedded default (LevelDB under `--data`, every shard
 * local) serving HTTP API v1. It runs until SIGTERM or SIGINT, then stops accepting, drains and
 * commits every shard, closes the store and exits 0.
 */
import { Config, Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { defaults } from "../../actors/RuntimeConfig.js"
import * as Node from "../node/Node.js"
import * as Settings from "./Settings.js"

const shards = Flag.Int("shards").pipe(
  Flag.withDescription(`shard count; must match on every process of one cluster (env SHARDFEED_SHARDS; default ${defaults.shardCount})`),
  Flag.withFallbackConfig(Config.Int("SHARDFEED_SHARDS")),
  Flag.withDefault(defaults.shardCount)
)
const sync = Flag.Boolean("sync").pipe(
  Flag.withDescription("fsync every commit: survive a machine crash, not only a process crash (default off)"),
  Flag.withDefault(false)
)
const bodyLimit = Flag.Int("body-limit").pipe(
  Flag.withDescription("largest request body in bytes (default 1048576)"),
  Flag.withDefault(1024 * 1024)
)

const redis = Flag.String("redis").pipe(
  Flag.withDescription("a Redis for durable messages and dead letters (BullMQ), redis:// or rediss:// (env SHARDFEED_REDIS; default none: durable routes answer NotEnabled)"),
  Flag.withFallbackConfig(Config.String("SHARDFEED_REDIS")),
  Flag.optional
)

/** The serve command. */
export const serveCommand = Command.make(
  "serve",
  { data: Settings.data, http: Settings.http, token: Settings.token, shards, sync, bodyLimit, redis, compactEvery: Settings.compactEvery },
  (flags) =>
    Effect.gen(function*() {
      const address = Settings.parseAddress(flags.http)
      if (typeof address === "string") return yield* Effect.fail(new Node.NodeConfigError(address))
      const bound = yield* Node.serve({
        data: flags.data,
        host: address.host,
        port: address.port,
        token: Option.getOrUndefined(flags.token),
        sync: flags.sync,
        bodyLimitBytes: flags.bodyLimit,
        runtime: { shardCount: flags.shards },
        redis: Option.getOrUndefined(flags.redis),
        compactEverySeconds: flags.compactEvery
      })
      const base = `http://${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`
      yield* Console.log(`shardfeed node serving ${flags.data}\n  API        ${base}/v1\n  dashboard  ${base}/dashboard\n  metrics    ${base}/metrics`)
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(Command.withDescription("Runs a single node on the embedded default (LevelDB, all shards local) and serves HTTP API v1"))
