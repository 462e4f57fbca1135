/**
 * Goal: the scale-out guarantees hold when Redis is a 3-master Redis Cluster (coordination keys
 * share one hash slot, every store partition another). Method: the scenarios of `scenarios.ts`
 * on the cluster of the test setup; the restart runs on a private cluster with AOF
 * (`appendfsync always`), every master killed and restarted at once.
 */
import { describe, inject, it } from "vitest"
import { startRedisCluster } from "../support/RedisServer.js"
import { joinLeaveScenario, killScenario, pauseScenario, redisRestartScenario } from "./scenarios.js"

const url = () => inject("redisClusterPorts").map((port) => `redis://127.0.0.1:${port}`).join(",")

describe("cluster on a 3-master Redis Cluster", () => {
  it("keeps acknowledged appends exactly once through five SIGKILLs and restarts", () => killScenario(url(), "rc-kill"), 240_000)

  it("fences a worker paused past its lease", () => pauseScenario(url(), "rc-pause"), 120_000)

  it("moves about 1/N of the shards on a join and a graceful leave, with no client error", () => joinLeaveScenario(url(), "rc-join"), 120_000)

  it("loses nothing acknowledged when every master restarts under load", async () => {
    const redis = await startRedisCluster(3, { appendfsync: "always" })
    try {
      await redisRestartScenario(redis, "rc-redis-restart")
    } finally {
      await redis.stop()
    }
  }, 180_000)
})
