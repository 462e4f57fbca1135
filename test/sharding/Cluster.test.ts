/**
 * Goal: scale-out keeps every guarantee with real processes on a standalone Redis: exactly-once
 * appends through SIGKILLs, no late write from a paused worker, no client error through a join
 * and a graceful leave, nothing acknowledged lost across a Redis restart, a Redis that stops
 * answering for longer than a lease, or connections that keep dropping, and never a shard held by
 * two workers. Method: see `scenarios.ts` (worker processes of the compiled CLI, a client
 * process, the private Redis of the test setup; a private Redis with `appendfsync always` for
 * the restart).
 */
import { describe, inject, it } from "vitest"
import { type RedisProcess, startRedis } from "../support/RedisServer.js"
import { connectionDropScenario, joinLeaveScenario, killScenario, pauseScenario, redisPauseScenario, redisRestartScenario } from "./scenarios.js"

/** Runs a scenario on a Redis of its own, stopped afterwards whatever happened. */
const onOwnRedis = (scenario: (redis: RedisProcess, label: string) => Promise<unknown>, label: string, options?: Parameters<typeof startRedis>[0]) => async () => {
  const redis = await startRedis(options)
  try {
    await scenario(redis, label)
  } finally {
    await redis.stop()
  }
}

describe("cluster on a standalone Redis", () => {
  it("keeps acknowledged appends exactly once through five SIGKILLs and restarts", () => killScenario(inject("redisUrl"), "kill"), 240_000)

  it("fences a worker paused past its lease", () => pauseScenario(inject("redisUrl"), "pause"), 120_000)

  it("moves about 1/N of the shards on a join and a graceful leave, with no client error", () => joinLeaveScenario(inject("redisUrl"), "join"), 120_000)

  it("loses nothing acknowledged when Redis restarts under load", onOwnRedis(redisRestartScenario, "redis-restart", { appendfsync: "always" }), 120_000)

  it("loses nothing acknowledged and holds no shard twice when Redis stops answering for longer than a lease", onOwnRedis(redisPauseScenario, "redis-pause"), 120_000)

  it("loses nothing acknowledged and holds no shard twice while Redis connections keep dropping", onOwnRedis(connectionDropScenario, "drops"), 120_000)
})
