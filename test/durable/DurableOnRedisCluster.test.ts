/**
 * Goal: durable work runs on a Redis Cluster as on a standalone Redis: durable messages keep an
 * entity's order through retries, drop duplicate ids and dead-letter a poison message; the ingest
 * bridge appends jobs in queue order exactly once and refuses a prefix without a hash tag; a
 * maintenance schedule runs once per period. Method: the 3-master cluster of the test setup,
 * real BullMQ (producers on an ioredis `Cluster`), a real node (memory store, local runtime), a
 * random prefix per test; the durable module wraps an untagged prefix in a hash tag, which the
 * test checks on the cluster's keys. Nothing asserts on time.
 */
import { Queue } from "bullmq"
import { Effect, Layer, ManagedRuntime } from "effect"
import { Cluster } from "ioredis"
import { strict as assert } from "node:assert"
import { afterAll, describe, inject, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig } from "../../actors/RuntimeConfig.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as DeadLetters from "../../src/durable/DeadLetters.js"
import * as DurableMessages from "../../src/durable/DurableMessages.js"
import * as IngestBridge from "../../src/durable/IngestBridge.js"
import * as Maintenance from "../../src/durable/Maintenance.js"
import * as Feed from "../../src/feed/Feed.js"
import { durableNode, eventually, Knobs, Ledger, testPrefix } from "./support.js"

const ports = () => inject("redisClusterPorts")
const url = () => ports().map((port) => `redis://127.0.0.1:${port}`).join(",")
const cluster = () => new Cluster(ports().map((port) => ({ host: "127.0.0.1", port })), { scaleReads: "master" })
const fast = { backoffBaseMillis: 50, backoffMaxMillis: 400, attemptsMax: 4, stalledIntervalMillis: 500, lockDurationMillis: 5_000 }

const run = <A, E>(layer: Layer.Layer<any, any>, effect: Effect.Effect<A, E, any>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, layer)) as Effect.Effect<A, E>)

const notesOf = (id: string) => Effect.flatMap(EntityClient.make(Ledger), (ledgers) => ledgers.ask(id, "Notes"))

/** Keys matching `pattern` on every master of the cluster. */
const keysOn = async (client: Cluster, pattern: string) => {
  const found: Array<string> = []
  for (const node of client.nodes("master")) found.push(...(await node.keys(pattern)))
  return found
}

const admin = cluster()
afterAll(() => admin.quit())

describe("durable work on a 3-master Redis Cluster", () => {
  it("keeps an entity's order through retries, drops duplicates and dead-letters a poison message", async () => {
    const prefix = testPrefix("rc-durable")
    const knobs = new Knobs()
    // `a`'s first note fails twice, then passes; `poison`'s note always fails.
    knobs.refuse = (entity, seq, attempt) => (entity === "a" && seq === 1 && attempt <= 2) || entity === "poison"
    const layer = durableNode({ url: url(), prefix, stores: MemoryStore.layer, knobs, config: fast })
    await run(layer, Effect.gen(function*() {
      const durable = yield* DurableMessages.client(Ledger)
      for (let seq = 1; seq <= 5; seq++) {
        yield* durable.send("a", "Note", { seq })
        yield* durable.send("b", "Note", { seq }, { id: `b-${seq}` })
      }
      const again = yield* durable.send("b", "Note", { seq: 3 }, { id: "b-3" })
      assert.equal(again.duplicate, true, "a second send with the same id is a duplicate")
      yield* durable.send("poison", "Note", { seq: 1 })
      yield* durable.send("poison", "Note", { seq: 2 })
      yield* eventually("a and b hold five notes", Effect.map(Effect.all([notesOf("a"), notesOf("b")]), ([a, b]) => a.length === 5 && b.length === 5))
      assert.deepEqual(yield* notesOf("a"), [1, 2, 3, 4, 5], "a's notes in send order, the retried one first")
      assert.deepEqual(yield* notesOf("b"), [1, 2, 3, 4, 5], "b's duplicate was not delivered")
      assert.equal(knobs.attempts.get("a:1"), 3)
      yield* eventually("both poison notes are dead letters", Effect.gen(function*() {
        const letters = yield* DeadLetters.DeadLetters
        const page = yield* letters.list({ type: "ledger", limit: 10 })
        return page.items.length === 2
      }).pipe(Effect.provide(DeadLetters.layer({ url: url(), config: { prefix } }))))
    }))
    // Every key of the module went under the hash-tagged prefix, so each queue lives in one slot.
    const keys = await keysOn(admin, `*${prefix}*`)
    assert.ok(keys.length > 0)
    assert.ok(keys.every((key) => key.startsWith(`{${prefix}}:`)), keys.slice(0, 5).join(", "))
    for (const key of keys) await admin.del(key)
  }, 120_000)

  it("ingests jobs in queue order exactly once, and refuses a prefix without a hash tag", async () => {
    const prefix = `{${testPrefix("rc-ingest")}}`
    const producerConnection = cluster()
    const producer = new Queue("events", { connection: producerConnection, prefix })
    const node = Feed.layer(Feed.Json).pipe(
      Layer.provideMerge(EntityRuntime.layerLocal),
      Layer.provideMerge(MemoryStore.layer),
      Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 16 }))
    )
    const untagged = await Effect.runPromise(Effect.scoped(Effect.flip(
      IngestBridge.make(Feed.Json, { url: url(), queue: "events", prefix: "plain", keyspace: "None", feed: "Data(match)", value: "Data" })
    ).pipe(Effect.provide(node))))
    assert.equal(untagged._tag, "InvalidArgument")
    assert.equal((untagged as { field?: string }).field, "prefix")

    const runtime = ManagedRuntime.make(IngestBridge.layer(Feed.Json, {
      url: url(),
      queue: "events",
      prefix,
      keyspace: "None",
      feed: "Data(match)",
      nonce: "Data(seq)",
      value: "Data(event)",
      flushIntervalMillis: 20,
      batchItemsMax: 50,
      leaseMillis: 1_000
    }).pipe(Layer.provideMerge(node)))
    try {
      await runtime.runPromise(Effect.void)
      const jobs = []
      for (let seq = 1; seq <= 100; seq++) {
        for (let match = 0; match < 5; match++) jobs.push({ name: "event", data: { match: `m${match}`, seq, event: { seq } } })
      }
      for (let start = 0; start < jobs.length; start += 100) await producer.addBulk(jobs.slice(start, start + 100))
      await runtime.runPromise(eventually("the queue drains", Effect.promise(async () => {
        const counts = await producer.getJobCounts("waiting", "active", "completed")
        return counts.waiting === 0 && counts.active === 0
      }), 60_000))
      const feeds = await runtime.runPromise(Feed.client(Feed.Json))
      for (let match = 0; match < 5; match++) {
        const page = await runtime.runPromise(feeds.page(`m${match}`, { limit: 1_000 }))
        assert.deepEqual(page.items.map((item) => item.nonce), Array.from({ length: 100 }, (_, i) => String(i + 1)), `feed m${match}`)
      }
    } finally {
      await runtime.dispose()
      await producer.obliterate({ force: true })
      await producer.close()
      await producerConnection.quit()
    }
  }, 120_000)

  it("runs a maintenance schedule", async () => {
    const prefix = testPrefix("rc-maintenance")
    let runs = 0
    const layer = Maintenance.layer({
      url: url(),
      prefix,
      queueName: "maintenance",
      tasks: [{ id: "tick", schedule: { everyMillis: 300 }, run: () => Effect.sync(() => runs++) }]
    })
    await run(layer, Effect.gen(function*() {
      yield* eventually("the schedule ran twice", Effect.sync(() => runs >= 2), 30_000)
      const maintenance = yield* Maintenance.Maintenance
      const [status] = yield* maintenance.status
      assert.equal(status!.task, "tick")
      assert.ok(status!.runs.ok >= 2)
    }))
    for (const key of await keysOn(admin, `*${prefix}*`)) await admin.del(key)
  }, 60_000)
})
