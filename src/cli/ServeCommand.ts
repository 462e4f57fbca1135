/**
 * `shardfeed serve`: a single node on the embedded default (LevelDB under `--data`, every shard
 * local) serving HTTP API v1. It runs until SIGTERM or SIGINT, then stops accepting, drains and
 * commits every shard, closes the store and exits 0.
 */
import { Console, Effect, Option } from "effect"
import { Command } from "effect/cli"
import * as Node from "../node/Node.js"
import * as Settings from "./Settings.js"

const bodyLimit = Settings.integer("body-limit", "largest request body in bytes", 1024 * 1024)
const redis = Settings.optionalString(
  "redis",
  "a Redis for durable messages and dead letters (BullMQ), redis:// or rediss://",
  "none: durable routes answer NotEnabled"
)

/** The serve command. */
export const serveCommand = Command.make(
  "serve",
  {
    data: Settings.data,
    http: Settings.http,
    token: Settings.token,
    shards: Settings.shards,
    sync: Settings.sync,
    bodyLimit,
    redis,
    compactEvery: Settings.compactEvery,
    ...Settings.durable
  },
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
        compactEverySeconds: flags.compactEvery,
        durable: Settings.durableConfig(flags)
      })
      const base = `http://${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`
      yield* Console.log(`shardfeed node serving ${flags.data}\n  API        ${base}/v1\n  dashboard  ${base}/dashboard\n  metrics    ${base}/metrics`)
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(Command.withDescription("Runs a single node on the embedded default (LevelDB, all shards local) and serves HTTP API v1"))
