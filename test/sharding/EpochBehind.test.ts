/**
 * Goal: when coordination's epochs fall behind those the store has registered (coordination's
 * Redis lost its data, or the store lives on another Redis), a worker taking a shard takes it at
 * a new epoch above the store's, never at one an earlier tenure registered: two owners at one
 * epoch would both pass the store's fencing.
 * Method: worker A (Redis store, on the test setup's Redis) takes every shard and leaves; the
 * cluster's coordination keys are deleted (the store's epochs stay); worker B then takes every
 * shard. Each of B's epochs must be above A's for that shard, and B's writes must land.
 */
import { Effect } from "effect"
import { Redis } from "ioredis"
import { strict as assert } from "node:assert"
import { describe, inject, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { Counter, CounterBehavior } from "../../examples/entities/Counter.js"
import { clusterName, inProcessWorker, ownsEveryShard } from "./inProcess.js"

const SHARDS = 4
const worker = (cluster: string) => inProcessWorker(cluster, { store: { _tag: "Redis" }, runtime: { shardCount: SHARDS } }, EntityRuntime.register(CounterBehavior))

describe("coordination behind the store", () => {
  it("takes a shard at an epoch above the one the store registered, not at it", async () => {
    const cluster = clusterName("behind")
    const a = worker(cluster)
    const first = await ownsEveryShard(a)
    const counters = await a.runPromise(EntityClient.make(Counter))
    assert.equal(await Effect.runPromise(counters.ask("c", "Increment", { by: 1 })), 1)
    await a.dispose()
    // Coordination forgets everything (as a Redis restarted without persistence would); the store keeps its epochs.
    const redis = new Redis(inject("redisUrl"))
    try {
      const keys = await redis.keys(`{sf:${cluster}}:*`)
      assert.ok(keys.some((key) => key.endsWith(":epochs")), `coordination keys found: ${keys.join(", ")}`)
      await redis.del(...keys)
    } finally {
      redis.disconnect()
    }
    const b = worker(cluster)
    try {
      const second = await ownsEveryShard(b)
      for (const [shard, epoch] of first) {
        assert.ok(second.get(shard)! > epoch, `shard ${shard}: B holds epoch ${second.get(shard)}, A held ${epoch}`)
      }
      const again = await b.runPromise(EntityClient.make(Counter))
      assert.equal(await Effect.runPromise(again.ask("c", "Increment", { by: 1 })), 2, "B reads A's write and its own lands")
    } finally {
      await b.dispose()
    }
  }, 60_000)
})
