/**
 * Goal: the lane sweep cleans up after a worker that crashed between finishing a durable message
 * and releasing it from its entity's lane: the finished head is dropped, a lane it leaves empty is
 * deleted, a parked message behind it is woken and delivered, a head BullMQ failed by itself goes
 * to the dead letters, and lanes claimed recently or headed by a live message are left alone.
 * Normal traffic leaves nothing in the open-lane registry.
 * Method: a real node and real BullMQ on the test run's private Redis. A crash's leftovers are
 * what the scripts would have left: the lane (and its registry entry) still naming a message whose
 * job BullMQ already completed and removed. Live and failed heads are real BullMQ jobs of the
 * queue. The sweep's timer is off; the test runs sweeps itself.
 */
import { Redis } from "ioredis"
import { Effect, Layer } from "effect"
import { strict as assert } from "node:assert"
import { describe, inject, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as DeadLetters from "../../src/durable/DeadLetters.js"
import * as DurableConfig from "../../src/durable/DurableConfig.js"
import * as DurableMessages from "../../src/durable/DurableMessages.js"
import { durableNode, eventually, Ledger, testPrefix } from "./support.js"

const url = inject("redisUrl")
const config = { backoffBaseMillis: 50, backoffMaxMillis: 400, attemptsMax: 4, stalledIntervalMillis: 500, lockDurationMillis: 5_000, laneSweepEveryMillis: 0 }
const HOUR = 3_600_000

const run = <A, E>(layer: Layer.Layer<any, any>, effect: Effect.Effect<A, E, any>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, layer)) as Effect.Effect<A, E>)

const notesOf = (id: string) => Effect.flatMap(EntityClient.make(Ledger), (ledgers) => ledgers.ask(id, "Notes"))

/**
 * A node of its own (random prefix) for one test: the durable service (whose `queue` gives the
 * BullMQ queue and the key names) and a plain Redis connection to lay out what a crash leaves.
 */
const inNode = <A>(label: string, extra: Partial<DurableConfig.DurableConfig>, test: (durable: DurableMessages.DurableMessagesShape, redis: Redis) => Effect.Effect<A, unknown, any>) =>
  run(durableNode({ url, prefix: testPrefix(label), stores: MemoryStore.layer, config: { ...config, ...extra } }), Effect.gen(function*() {
    const durable = yield* DurableMessages.DurableMessages
    const redis = yield* Effect.acquireRelease(Effect.sync(() => new Redis(url)), (redis) => Effect.sync(() => redis.disconnect()))
    return yield* test(durable, redis)
  }))

describe("lane sweep", () => {
  it("drops finished heads left by a crash, deletes emptied lanes, wakes a parked message, and leaves fresh and live lanes alone", () =>
    inNode("sweep", {}, (durable, redis) =>
      Effect.gen(function*() {
        const { keys, queue } = durable.queue
        const ledgers = yield* DurableMessages.client(Ledger)

        // Normal traffic: every lane is released and leaves the registry.
        for (let seq = 1; seq <= 3; seq++) yield* ledgers.send("a", "Note", { seq })
        yield* eventually("a holds three notes", Effect.map(notesOf("a"), (notes) => notes.length === 3))
        yield* eventually("the registry is empty after normal traffic", Effect.promise(async () => (await redis.zcard(keys.openLanes)) === 0))
        assert.equal(yield* Effect.promise(() => redis.exists(keys.lane("ledger", "a"), keys.laneMeta("ledger", "a"))), 0, "a's lane was deleted")

        const old = Date.now() - HOUR
        yield* Effect.promise(async () => {
          // x: a crash's leftover alone in its lane.
          await redis.zadd(keys.lane("ledger", "x"), 1, "gone-x")
          await redis.hset(keys.laneMeta("ledger", "x"), { seq: 1, head: "gone-x", starts: 1 })
          await redis.zadd(keys.openLanes, old, "ledger:x")
          // y: a leftover in front of a message that parked behind it (delayed for an hour).
          await queue.add("ledger", { t: "ledger", e: "y", m: "Note", p: { seq: 7 } }, { jobId: "parked-y", delay: HOUR })
          await redis.zadd(keys.lane("ledger", "y"), 1, "gone-y", 2, "parked-y")
          await redis.hset(keys.laneMeta("ledger", "y"), { seq: 2, head: "gone-y", starts: 1, "p:parked-y": 1 })
          await redis.zadd(keys.openLanes, old, "ledger:y")
          // z: a leftover in a lane claimed a moment ago (a release may still be on its way).
          await redis.zadd(keys.lane("ledger", "z"), 1, "gone-z")
          await redis.zadd(keys.openLanes, Date.now(), "ledger:z")
          // w: a live head, in its retry delay, not parked.
          await queue.add("ledger", { t: "ledger", e: "w", m: "Note", p: { seq: 1 } }, { jobId: "live-w", delay: HOUR })
          await redis.zadd(keys.lane("ledger", "w"), 1, "live-w")
          await redis.zadd(keys.openLanes, old, "ledger:w")
        })

        const first = yield* durable.sweepLanes(Date.now() - 60_000)
        assert.deepEqual(first, { lanes: 3, dropped: 2, emptied: 1, promoted: 1, deadLettered: 0 }, "x, y and w looked at; z is too recent")
        yield* Effect.promise(async () => {
          assert.equal(await redis.exists(keys.lane("ledger", "x"), keys.laneMeta("ledger", "x")), 0, "x's emptied lane was deleted")
          assert.equal(await redis.zscore(keys.openLanes, "ledger:x"), null, "x left the registry")
          assert.deepEqual(await redis.zrange(keys.lane("ledger", "z"), "0", "-1"), ["gone-z"], "z was left alone")
          assert.deepEqual(await redis.zrange(keys.lane("ledger", "w"), "0", "-1"), ["live-w"], "w's live head was kept")
          assert.ok(Number(await redis.zscore(keys.openLanes, "ledger:w")) > old, "w was registered again, for the next sweep")
        })
        // The parked message was woken: delivered now, not in an hour.
        yield* eventually("y's parked note is delivered", Effect.map(notesOf("y"), (notes) => notes.length === 1))
        assert.deepEqual(yield* notesOf("y"), [7])
        yield* eventually("y's lane is released", Effect.promise(async () => (await redis.exists(keys.lane("ledger", "y"))) === 0))

        // A sweep right after finds nothing stale; one that counts everything as stale takes z.
        assert.deepEqual(yield* durable.sweepLanes(Date.now() - 60_000), { lanes: 0, dropped: 0, emptied: 0, promoted: 0, deadLettered: 0 })
        const all = yield* durable.sweepLanes(Date.now())
        assert.equal(all.dropped, 1, "z's finished head dropped")
        assert.equal(all.emptied, 1, "z's lane deleted")
        yield* Effect.promise(async () => {
          assert.equal(await redis.exists(keys.lane("ledger", "z")), 0)
          assert.deepEqual(await redis.zrange(keys.lane("ledger", "w"), "0", "-1"), ["live-w"], "w's live head is never dropped")
        })
      })))

  it("moves a head that BullMQ failed by itself to the dead letters, and the lane moves on", () =>
    inNode("sweep-failed", {}, (durable, redis) =>
      Effect.gen(function*() {
        const { keys, queue } = durable.queue
        yield* Effect.promise(async () => {
          // BullMQ's stall limit failed `stalled-f` while its lane still named it: its hash is
          // finished and it is in the failed set, as BullMQ leaves such a job.
          await queue.add("ledger", { t: "ledger", e: "f", m: "Note", p: { seq: 1 } }, { jobId: "stalled-f", delay: HOUR })
          const job = `${keys.jobPrefix}stalled-f`
          await redis.zrem(`${keys.jobPrefix}delayed`, "stalled-f")
          await redis.hset(job, { finishedOn: Date.now(), failedReason: "job stalled more than allowable limit" })
          await redis.zadd(keys.failed, Date.now(), "stalled-f")
          await redis.zadd(keys.lane("ledger", "f"), 1, "stalled-f")
          await redis.hset(keys.laneMeta("ledger", "f"), { seq: 1, head: "stalled-f", starts: 2 })
          await redis.zadd(keys.openLanes, Date.now() - HOUR, "ledger:f")
        })
        const swept = yield* durable.sweepLanes(Date.now() - 60_000)
        assert.equal(swept.deadLettered, 1, "the failed head went to the dead letters")
        const deadLetters = yield* DeadLetters.DeadLetters
        const page = yield* deadLetters.list({ type: "ledger" })
        assert.deepEqual(page.items.map((item) => [item.id, item.entity, item.error]), [["stalled-f", "f", "job stalled more than allowable limit"]])
        yield* Effect.promise(async () => {
          assert.equal(await redis.exists(keys.lane("ledger", "f")), 0, "the lane emptied and was deleted")
          assert.equal(await redis.zscore(keys.openLanes, "ledger:f"), null)
        })
      })))

  it("is refused in a process that only sends", async () => {
    const exit = await inNode("sweep-send", { consume: false }, (durable) => Effect.flip(durable.sweepLanes()))
    assert.equal(exit._tag, "DurableUnavailable")
  })

  it("refuses a bad sweep period, naming the field", async () => {
    for (const laneSweepEveryMillis of [-1, 1.5, 999, 86_400_001]) {
      const error = await Effect.runPromise(Effect.flip(DurableConfig.validate({ laneSweepEveryMillis })))
      assert.equal(error.field, "laneSweepEveryMillis", String(laneSweepEveryMillis))
    }
    assert.equal((await Effect.runPromise(DurableConfig.validate({ laneSweepEveryMillis: 0 }))).laneSweepEveryMillis, 0)
  })
})
