/**
 * Goal: an event-sourced entity on the Redis store recovers exactly the state it had, after
 * Redis dropped its connection again and again with event appends in flight (invariant 5): no
 * event stored twice, none acknowledged and missing.
 * Method: unsnapshotted wallets on a Redis of their own (so every connection but the killer's is
 * the node's); writers deposit amounts that name them while the node's connections are cut; a
 * deposit that fails has an unknown outcome and is not retried. Then the runtime is closed, a
 * fresh one recovers every wallet from the store, and its balance and event log are compared
 * with what was acknowledged.
 */
import { Effect, Exit, Layer, ManagedRuntime } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as Entity from "../../actors/Entity.js"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { Balance, Deposit, walletDefinition, Withdraw } from "../../examples/entities/Wallet.js"
import { IndexedStore } from "../../persistence/IndexedStore.js"
import * as RedisStore from "../../persistence/RedisStore.js"
import { connectionCutter } from "../support/connectionCutter.js"
import { startRedis } from "../support/RedisServer.js"

/** Recovery replays every event: a duplicated one would show in the balance. */
const LogWallet = Entity.make("log-wallet", [Deposit, Withdraw, Balance])
const LogWalletBehavior = Entity.eventSourced(LogWallet, { ...walletDefinition, snapshotEvery: 1_000_000 })

describe("event-sourced entities on the Redis store when connections drop", () => {
  it("recover exactly the state they had, through repeated connection drops", async () => {
    const redis = await startRedis()
    const node = () =>
      EntityRuntime.register(LogWalletBehavior).pipe(
        Layer.provideMerge(EntityRuntime.layerLocal),
        Layer.provideMerge(RedisStore.layer({ url: redis.url, keyPrefix: "wallets" }))
      )
    const wallets = Array.from({ length: 6 }, (_, i) => `w${i}`)
    // Made before any runtime connects: it cuts only the runtimes' connections.
    const cutter = await connectionCutter(redis)
    try {
      const first = ManagedRuntime.make(node())
      // Deposits by wallet: amounts acknowledged, and amounts whose outcome is unknown.
      const acknowledged = new Map(wallets.map((id) => [id, new Set<number>()]))
      const unknown = new Map(wallets.map((id) => [id, new Set<number>()]))
      let before: Map<string, number> | undefined
      try {
        const client = await first.runPromise(EntityClient.make(LogWallet))
        let depositing = true
        const writer = async (id: string, w: number) => {
          for (let k = 1; depositing; k++) {
            // Every deposit's amount is its own, so a stored event names the deposit it came from.
            const amount = w * 1_000_000 + k
            const exit = await Effect.runPromiseExit(client.ask(id, "Deposit", { amount }))
            ;(Exit.isSuccess(exit) ? acknowledged : unknown).get(id)!.add(amount)
            if (Exit.isFailure(exit)) await new Promise((resolve) => setTimeout(resolve, 5))
          }
        }
        const writers = wallets.flatMap((id) => [1, 2, 3].map((w) => writer(id, w)))
        // Bounded: 150 rounds, each cutting the node's connections (often: the window between
        // Redis running a commit and its reply arriving is short).
        for (let round = 0; round < 150; round++) {
          await new Promise((resolve) => setTimeout(resolve, 2 + (round % 5) * 3))
          await cutter.cut()
        }
        await new Promise((resolve) => setTimeout(resolve, 300))
        depositing = false
        await Promise.all(writers)
        before = new Map(await Promise.all(wallets.map(async (id) => [id, (await Effect.runPromise(client.ask(id, "Balance"))).balance] as const)))
      } finally {
        await first.dispose()
      }
      assert.ok([...unknown.values()].some((amounts) => amounts.size > 0), "deposits failed while connections dropped")
      const second = ManagedRuntime.make(node())
      try {
        const client = await second.runPromise(EntityClient.make(LogWallet))
        const runtime = await second.runPromise(EntityRuntime.EntityRuntime)
        const indexed = await second.runPromise(Effect.service(IndexedStore))
        for (const id of wallets) {
          const recovered = await Effect.runPromise(client.ask(id, "Balance"))
          assert.equal(recovered.balance, before!.get(id), `${id}: recovered as it was`)
          const log: Array<number> = []
          const shard = String(runtime.shardOf("log-wallet", id))
          // Bounded: the log holds fewer events than deposits were tried.
          for (let from = 1; ;) {
            const page = await second.runPromise(indexed.scan(shard, `log-wallet/${id}`, { from, limit: 1_000 }))
            if (page.length === 0) break
            for (const one of page) log.push((JSON.parse(Buffer.from(one.value).toString("utf8")) as { amount: number }).amount)
            from = page[page.length - 1]!.index + 1
          }
          assert.equal(new Set(log).size, log.length, `${id}: no deposit stored twice`)
          const stored = new Set(log)
          for (const amount of acknowledged.get(id)!) assert.ok(stored.has(amount), `${id}: acknowledged deposit ${amount} is stored`)
          for (const amount of log) assert.ok(acknowledged.get(id)!.has(amount) || unknown.get(id)!.has(amount), `${id}: ${amount} was deposited`)
          assert.equal(recovered.balance, log.reduce((sum, amount) => sum + amount, 0), `${id}: the balance is the sum of its log`)
        }
      } finally {
        await second.dispose()
      }
    } finally {
      cutter.close()
      await redis.stop()
    }
  }, 60_000)
})
