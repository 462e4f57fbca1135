/**
 * Goal: durable messages lose nothing and keep each entity's order when Redis drops the worker's
 * connections while messages are being taken, handled and released.
 * Method: a real node (memory store) and real BullMQ on a Redis of its own, so that every
 * connection but the killer's is the node's; all messages are sent first, then the node's
 * connections are cut again and again while it works through them.
 */
import { Effect } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as DurableMessages from "../../src/durable/DurableMessages.js"
import { connectionCutter } from "../support/connectionCutter.js"
import { startRedis } from "../support/RedisServer.js"
import { durableNode, eventually, Ledger, testPrefix } from "./support.js"

describe("durable messages when Redis drops connections", () => {
  it("delivers every message, in order per entity, through repeated connection drops", async () => {
    const redis = await startRedis()
    // Short locks: a message whose fetch reply was lost is recovered by the stalled check.
    const config = { stalledIntervalMillis: 500, lockDurationMillis: 2_000, backoffBaseMillis: 50, backoffMaxMillis: 400 }
    const layer = durableNode({ url: redis.url, prefix: testPrefix("drops"), stores: MemoryStore.layer, config })
    const entities = Array.from({ length: 20 }, (_, i) => `d${i}`)
    const perEntity = 150
    // Made before the node starts: it cuts only the node's connections.
    const cutter = await connectionCutter(redis)
    try {
      await Effect.runPromise(Effect.scoped(Effect.provide(Effect.gen(function*() {
        const durable = yield* DurableMessages.client(Ledger)
        for (let seq = 1; seq <= perEntity; seq++) {
          yield* Effect.forEach(entities, (id) => durable.send(id, "Note", { seq }), { concurrency: "unbounded", discard: true })
        }
        const ledgers = yield* EntityClient.make(Ledger)
        const notes = Effect.forEach(entities, (id) => ledgers.ask(id, "Notes"))
        let drops = 0
        // Bounded: 30 rounds at most, each cutting the node's connections while notes remain.
        for (let round = 0; round < 30 && drops < 20; round++) {
          yield* Effect.sleep(20 + (round % 3) * 15)
          const handled = (yield* notes).reduce((sum, one) => sum + one.length, 0)
          if (handled >= entities.length * perEntity) break
          drops += yield* Effect.promise(cutter.cut)
        }
        assert.ok(drops > 0, "the node's connections were dropped while it had notes to handle")
        yield* eventually("every note is handled", Effect.map(notes, (all) => all.every((one) => new Set(one).size === perEntity)), 60_000)
        for (const [i, one] of (yield* notes).entries()) {
          // At least once: a note may come twice (its lock lost with a connection), never out of order.
          const firsts = one.filter((seq, at) => one.indexOf(seq) === at)
          assert.deepEqual(firsts, Array.from({ length: perEntity }, (_, k) => k + 1), `${entities[i]} got every note, in order`)
          assert.ok(one.every((seq, at) => at === 0 || seq >= one[at - 1]!), `${entities[i]} never went back: ${one.join(",")}`)
        }
      }), layer)) as Effect.Effect<void>)
    } finally {
      cutter.close()
      await redis.stop()
    }
  }, 120_000)
})
