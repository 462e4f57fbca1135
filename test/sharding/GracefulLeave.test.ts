/**
 * Goal: a worker that leaves gracefully keeps its leases until every shard it holds is drained,
 * so a message still being handled when the leave begins commits and is acknowledged, however
 * long its drain takes (up to `stopShardTimeoutMillis`), instead of running past the lease and
 * being refused.
 * Method: one in-process worker on the test setup's Redis, with a 1.5 s lease renewed every
 * 0.5 s; an entity whose handler takes 3 s (twice the lease) before it writes. The worker's
 * scope closes (a graceful leave, as on SIGTERM) while the handler runs; the ask must succeed.
 */
import { Effect, Exit, Schema } from "effect"
import { Rpc } from "effect/rpc"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as Entity from "../../actors/Entity.js"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { clusterName, inProcessWorker, ownsEveryShard } from "./inProcess.js"

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const Slow = Rpc.make("Slow", { payload: { millis: Schema.Number }, success: Schema.Number })
const SlowCounter = Entity.make("slow-counter", [Slow])
let handling = false
const SlowBehavior = Entity.direct(SlowCounter, {
  recover: ({ view }) => Effect.map(view.get("n", ""), (bytes) => (bytes === undefined ? 0 : Number(Buffer.from(bytes).toString()))),
  handlers: {
    Slow: ({ millis }, context) =>
      Effect.gen(function*() {
        handling = true
        yield* Effect.sleep(millis)
        const next = context.state + 1
        yield* context.view.put("n", "", String(next))
        context.setState(next)
        return next
      })
  }
})

describe("a graceful leave", () => {
  it("renews its leases while its shards drain, so a long handler's write commits", async () => {
    const leaseMillis = 1_500
    const worker = inProcessWorker(clusterName("leave"), { sharding: { leaseMillis, refreshMillis: 500 }, runtime: { shardCount: 4 } }, EntityRuntime.register(SlowBehavior))
    let disposed = false
    try {
      await ownsEveryShard(worker)
      const counters = await worker.runPromise(EntityClient.make(SlowCounter))
      assert.equal(await Effect.runPromise(counters.ask("c", "Slow", { millis: 0 })), 1)
      handling = false
      const slow = Effect.runPromiseExit(counters.ask("c", "Slow", { millis: 2 * leaseMillis }, { timeoutMillis: 20_000 }))
      // Bounded: 5 s.
      for (const deadline = Date.now() + 5_000; !handling && Date.now() < deadline;) await sleep(5)
      assert.ok(handling, "the slow handler started")
      const leaving = worker.dispose().then(() => void (disposed = true))
      const exit = await slow
      await leaving
      assert.ok(Exit.isSuccess(exit), `the write of the message being handled as the leave began commits: ${String(exit)}`)
      assert.equal(exit.value, 2)
    } finally {
      if (!disposed) await worker.dispose()
    }
  }, 30_000)
})
