/**
 * Goal: a commit the store refuses for its epoch is a `FencingRejected` event of the cluster's
 * shard events (beside the runtime's own event and the `fenced` commits metric), the worker
 * drops the shard, and when the shard is still its own it takes it again at an epoch above the
 * store's: the message, refused `EntityUnavailable` (nothing applied), is routed again and lands.
 * Method: one in-process worker on the test setup's Redis; the store is told a later epoch for
 * one shard behind the worker's back (as a newer owner's registration would), then a counter on
 * that shard is incremented.
 */
import { Effect, Fiber, Stream } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { partitionOf, shardOf } from "../../actors/ShardId.js"
import { Counter, CounterBehavior } from "../../examples/entities/Counter.js"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import { type ShardEvent, ShardManager } from "../../sharding/ShardManager.js"
import { clusterName, inProcessWorker, ownsEveryShard } from "./inProcess.js"

const SHARDS = 4
const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

describe("fencing in a worker", () => {
  it("publishes FencingRejected, drops the shard and takes it again above the store's epoch", async () => {
    const worker = inProcessWorker(clusterName("fencing"), { runtime: { shardCount: SHARDS } }, EntityRuntime.register(CounterBehavior))
    try {
      await ownsEveryShard(worker)
      const runtime = await worker.runPromise(EntityRuntime.EntityRuntime)
      const manager = await worker.runPromise(ShardManager)
      const events: Array<ShardEvent> = []
      const collecting = await worker.runPromise(Effect.forkDetach(Stream.runForEach(manager.events, (event) => Effect.sync(() => void events.push(event)))))
      await sleep(20)
      const shard = shardOf(Counter.type, "c", SHARDS)
      const newer = 1_000_000
      await worker.runPromise(Effect.flatMap(KeyValueStore, (store) => store.registerEpoch(partitionOf(shard), newer)))
      const counters = await worker.runPromise(EntityClient.make(Counter))
      assert.equal(await Effect.runPromise(counters.ask("c", "Increment", { by: 1 })), 1, "the refused message is routed again and lands once")
      await worker.runPromise(Fiber.interrupt(collecting))
      assert.ok(events.some((event) => event._tag === "FencingRejected" && event.shard === shard), JSON.stringify(events))
      const again = events.find((event) => event._tag === "ShardAcquired" && event.shard === shard)
      assert.ok(again?._tag === "ShardAcquired" && again.epoch > newer, `taken again above the store's epoch: ${JSON.stringify(again)}`)
      assert.equal(runtime.owned().get(shard), again.epoch)
    } finally {
      await worker.dispose()
    }
  }, 30_000)
})
