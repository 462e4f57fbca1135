/**
 * Goal: a worker's rebalance is one pair of events, `RebalanceStarted` when it begins moving
 * shards and `RebalanceEnded` once every move is done (not one pair per round), its duration is
 * a metric, and no round plans more moves than the rate limit allows.
 * Method: one in-process worker on the test setup's Redis, 64 shards and a rate limit of 1/8 (8
 * shards per round), so taking every shard takes at least 8 rounds; its manager's events are
 * collected as soon as it exists.
 */
import { Effect, Fiber, Metric, Stream } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { type ShardEvent, ShardManager } from "../../sharding/ShardManager.js"
import * as ShardManagerModule from "../../sharding/ShardManager.js"
import { clusterName, inProcessWorker } from "./inProcess.js"

const SHARDS = 64
const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

describe("rebalancing", () => {
  it("is one started/ended pair over all its rounds, within the rate limit, with its duration measured", async () => {
    const worker = inProcessWorker(clusterName("rebalance"), { sharding: { leaseMillis: 900, refreshMillis: 100, rebalanceFraction: 1 / 8 }, runtime: { shardCount: SHARDS } })
    try {
      const manager = await worker.runPromise(ShardManager)
      // The worker's layer has started the manager already; its first round may have run: events
      // are collected from now, and the count of shards owned tells how far it got.
      const events: Array<ShardEvent> = []
      const collecting = await worker.runPromise(Effect.forkDetach(Stream.runForEach(manager.events, (event) => Effect.sync(() => void events.push(event)))))
      const runtime = await worker.runPromise(EntityRuntime.EntityRuntime)
      const ownedAtStart = runtime.owned().size
      // Bounded: 20 s.
      for (const deadline = Date.now() + 20_000; !events.some((event) => event._tag === "RebalanceEnded");) {
        if (Date.now() > deadline) throw new Error(`no RebalanceEnded; events: ${JSON.stringify(events)}`)
        await sleep(20)
      }
      await worker.runPromise(Fiber.interrupt(collecting))
      assert.equal(runtime.owned().size, SHARDS)
      const rebalance = events.filter((event) => event._tag === "RebalanceStarted" || event._tag === "RebalanceEnded").map((event) => event._tag)
      // The first round (before collecting began) may have started it: then only its end is seen here.
      assert.deepEqual(rebalance, ownedAtStart === 0 ? ["RebalanceStarted", "RebalanceEnded"] : ["RebalanceEnded"], JSON.stringify(events))
      const started = events.find((event) => event._tag === "RebalanceStarted")
      if (started?._tag === "RebalanceStarted") assert.ok(started.moves <= SHARDS / 8, `${started.moves} moves planned in one round`)
      const acquired = events.filter((event) => event._tag === "ShardAcquired").length
      assert.equal(acquired, SHARDS - ownedAtStart, "every shard acquired once")
      const ended = events.findIndex((event) => event._tag === "RebalanceEnded")
      assert.ok(events.slice(ended).every((event) => event._tag !== "ShardAcquired"), "it ends after the last move")
      const seconds = await worker.runPromise(Metric.value(ShardManagerModule.rebalanceSeconds))
      assert.equal(seconds.count, 1, "one rebalance measured")
      assert.ok(seconds.sum > 0, "with its duration")
    } finally {
      await worker.dispose()
    }
  }, 30_000)
})
