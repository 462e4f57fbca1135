/**
 * Goal: the router ends every message it keeps for a shard with no reachable owner within its
 * retry time: an ask with a typed `ShardNotOwned`, a send (nobody to answer) with a log line, so
 * that neither fails silently; and when it closes, every message it keeps ends at once.
 * Method: a client-only member of a cluster no worker hosts (on the test setup's Redis), with a
 * short retry time; the default logger writes through `console.log`, which the test reads.
 */
import { Effect } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import { Wallet } from "../../examples/entities/Wallet.js"
import { clusterName, inProcessWorker } from "./inProcess.js"
import { errorTag } from "../support/errorTag.js"

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

describe("the router, when no worker owns a shard", () => {
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
})
