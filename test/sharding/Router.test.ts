/**
 * Goal: the router ends every message it keeps for a shard with no reachable owner within its
 * retry time: an ask with a typed `ShardNotOwned`, a send (nobody to answer) with a log line, so
 * that neither fails silently; when it closes, every message it keeps ends at once; and a peer's
 * full queue holds messages back (backpressure) rather than failing them.
 * Method: a client-only member of a cluster no worker hosts (on the test setup's Redis), with a
 * short retry time; the default logger writes through `console.log`, which the test reads.
 */
import { Effect, Exit } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { Counter, CounterBehavior } from "../../examples/entities/Counter.js"
import { Wallet } from "../../examples/entities/Wallet.js"
import { clusterName, inProcessWorker, ownsEveryShard } from "./inProcess.js"
import { errorTag } from "../support/errorTag.js"

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

describe("the router", () => {
  it("answers an ask ShardNotOwned and logs a failed send once its retry time is over", async () => {
    const client = inProcessWorker(clusterName("lonely"), { sharding: { routeRetryMillis: 300 }, clientOnly: true })
    const lines: Array<string> = []
    const log = console.log
    console.log = (...args: Array<unknown>) => void lines.push(args.map(String).join(" "))
    try {
      const wallets = await client.runPromise(EntityClient.make(Wallet))
      const started = Date.now()
      const exit = await Effect.runPromiseExit(wallets.ask("w", "Balance"))
      assert.equal(errorTag(exit), "ShardNotOwned", "the ask fails ShardNotOwned")
      assert.ok(Date.now() - started >= 300, "after the retry time")
      await Effect.runPromise(wallets.send("w", "Deposit", { amount: 1 }))
      // Bounded: 5 s.
      for (const deadline = Date.now() + 5_000; Date.now() < deadline && !lines.some((line) => line.includes("Deposit sent to wallet/w without reply failed"));) {
        await sleep(20)
      }
      const logged = lines.find((line) => line.includes("Deposit sent to wallet/w without reply failed"))
      assert.ok(logged !== undefined, `the failed send is logged; logged: ${lines.join("\n")}`)
      assert.match(logged, /ShardNotOwned/)
    } finally {
      console.log = log
      await client.dispose()
    }
  }, 30_000)

  it("answers the asks it keeps when it closes, instead of leaving them without an end", async () => {
    const client = inProcessWorker(clusterName("closing"), { sharding: { routeRetryMillis: 60_000 }, clientOnly: true })
    let disposed = false
    try {
      const wallets = await client.runPromise(EntityClient.make(Wallet))
      const pending = Effect.runPromiseExit(wallets.ask("w", "Balance", undefined, { timeoutMillis: 60_000 }))
      await sleep(100)
      const started = Date.now()
      await client.dispose()
      disposed = true
      // Bounded: the test's own timeout; the old router never answered (its retry loop was gone).
      const exit = await pending
      assert.equal(errorTag(exit), "ShardNotOwned", "the kept ask ends ShardNotOwned")
      assert.ok(Date.now() - started < 10_000, "as the router closes, not after its retry time")
    } finally {
      if (!disposed) await client.dispose()
    }
  }, 30_000)

  it("holds messages back while a peer's queue is full, instead of failing them Overloaded", async () => {
    const cluster = clusterName("backpressure")
    const worker = inProcessWorker(cluster, { runtime: { shardCount: 4 } }, EntityRuntime.register(CounterBehavior))
    // A client whose queue to a peer holds 10 messages (batches of 5): 1,000 asks at once overflow it many times.
    const client = inProcessWorker(cluster, { runtime: { shardCount: 4 }, sharding: { transportQueueMax: 10, transportBatchMax: 5 }, clientOnly: true })
    try {
      await ownsEveryShard(worker)
      const counters = await client.runPromise(EntityClient.make(Counter))
      await Effect.runPromise(counters.ask("warm", "Increment", { by: 1 }))
      const exits = await Promise.all(Array.from({ length: 1_000 }, (_, i) => Effect.runPromiseExit(counters.ask(`c${i % 50}`, "Increment", { by: 1 }))))
      const failed = exits.filter(Exit.isFailure)
      assert.equal(failed.length, 0, `every ask succeeds once there is room; failed: ${failed.slice(0, 3).map((exit) => errorTag(exit)).join(", ")}`)
      const totals = await Promise.all(Array.from({ length: 50 }, (_, i) => Effect.runPromise(counters.ask(`c${i}`, "Get"))))
      assert.deepEqual(totals, new Array(50).fill(20), "each increment applied once")
    } finally {
      await client.dispose()
      await worker.dispose()
    }
  }, 60_000)
})
