/**
 * Goal: across processes, appends to one feed that are coalesced into one message keep one
 * outcome each: a caller whose value does not fit the feed's schema gets its own typed error,
 * and the callers batched with it are appended as if each had been sent alone. (The batch
 * message is encoded for the wire as a whole, so one bad value used to fail all of them.)
 * Method: a worker hosting a typed feed and a client-only process on the test setup's Redis;
 * the client makes 20 concurrent appends to one feed (the first goes alone, the others wait
 * and go together), one of them with a bad value.
 */
import { Effect, Exit, Schema } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as Feed from "../../src/feed/Feed.js"
import { errorTag } from "../support/errorTag.js"
import { clusterName, inProcessWorker, ownsEveryShard } from "./inProcess.js"

const Scores = Feed.define("coalesced-scores", { entry: Schema.Struct({ n: Schema.Number }) })

const process = (cluster: string, clientOnly: boolean) => inProcessWorker(cluster, { runtime: { shardCount: 4 }, clientOnly }, Feed.layer(Scores))

describe("coalesced appends over the wire", () => {
  it("fail only the call with the bad value; the others are appended, in order", async () => {
    const cluster = clusterName("coalesced")
    const worker = process(cluster, false)
    const client = process(cluster, true)
    try {
      await ownsEveryShard(worker)
      const feeds = await client.runPromise(Feed.client(Scores))
      // The client learns the owner's address on its first send.
      await Effect.runPromise(feeds.append("warm", [{ value: { n: 0 } }]))
      const exits = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        Effect.runPromiseExit(feeds.append("f", [{ value: i === 7 ? ({ n: "seven" } as unknown as { n: number }) : { n: i } }]))))
      assert.equal(errorTag(exits[7]!), "InvalidMessage", "the bad value is refused")
      const refused = exits.filter((exit) => Exit.isFailure(exit)).length
      assert.equal(refused, 1, `only the bad call fails; failed: ${exits.map((exit, i) => (Exit.isFailure(exit) ? `${i}: ${String(exit.cause)}` : "")).filter(Boolean).join("; ")}`)
      const page = await Effect.runPromise(feeds.page("f", { limit: 100 }))
      assert.deepEqual(page.items.map((entry) => entry.value.n), Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 7), "each good call once, in call order")
    } finally {
      await client.dispose()
      await worker.dispose()
    }
  }, 60_000)
})
