/**
 * Goal: durable messages keep each entity's order through retries, dead-letter a poison message
 * and move on, drop duplicates within the window, and never hold one entity up for another.
 * Method: a real node (memory store, local runtime) and real BullMQ on the test run's private
 * Redis under a random prefix; the `ledger` entity refuses notes when the test says so, and its
 * log is read back through ordinary asks. Backoffs are shortened; nothing asserts on time.
 */
import { Queue } from "bullmq"
import { Effect, Fiber, Layer, Metric, Stream } from "effect"
import { strict as assert } from "node:assert"
import { describe, inject, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as DeadLetters from "../../src/durable/DeadLetters.js"
import * as DurableConfig from "../../src/durable/DurableConfig.js"
import * as DurableQueue from "../../src/durable/internal/durableQueue.js"
import * as DurableMessages from "../../src/durable/DurableMessages.js"
import { durableNode, eventually, Knobs, Ledger, testPrefix } from "./support.js"

const url = inject("redisUrl")
const fast = { backoffBaseMillis: 50, backoffMaxMillis: 400, attemptsMax: 4, stalledIntervalMillis: 500, lockDurationMillis: 5_000 }

const run = <A, E>(layer: Layer.Layer<any, any>, effect: Effect.Effect<A, E, any>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, layer)) as Effect.Effect<A, E>)

const notesOf = (id: string) => Effect.flatMap(EntityClient.make(Ledger), (ledgers) => ledgers.ask(id, "Notes"))

const drained = Effect.gen(function*() {
  const durable = yield* DurableMessages.DurableMessages
  const stats = yield* durable.stats
  return stats.waiting + stats.active + stats.delayed === 0
})

describe("durable messages", () => {
  it("retries a failing message before any later message of its entity, in order, without holding other entities up", async () => {
    const knobs = new Knobs()
    // `a`'s first note is refused three times, and at least until `b` has all of its notes: if
    // `a` held `b` up, the test could never finish.
    knobs.refuse = (entity, seq, attempt) => entity === "a" && seq === 1 && (attempt <= 3 || knobs.handled.filter((line) => line.startsWith("b:") && line.endsWith("accepted")).length < 5)
    // Room for many attempts: `b` may be slow on a busy machine, and `a` must not be dead-lettered meanwhile.
    const layer = durableNode({ url, prefix: testPrefix("order"), stores: MemoryStore.layer, knobs, config: { ...fast, attemptsMax: 30 } })
    await run(layer, Effect.gen(function*() {
      const durable = yield* DurableMessages.client(Ledger)
      for (let seq = 1; seq <= 5; seq++) {
        yield* durable.send("a", "Note", { seq })
        yield* durable.send("b", "Note", { seq })
      }
      yield* eventually("both ledgers hold five notes", Effect.map(Effect.all([notesOf("a"), notesOf("b")]), ([a, b]) => a.length === 5 && b.length === 5))
      assert.deepEqual(yield* notesOf("a"), [1, 2, 3, 4, 5], "a's notes in send order")
      assert.deepEqual(yield* notesOf("b"), [1, 2, 3, 4, 5], "b's notes in send order")
      const ofA = knobs.handled.filter((line) => line.startsWith("a:"))
      const firstAccepted = ofA.indexOf("a:1:accepted")
      assert.ok(ofA.slice(0, firstAccepted).every((line) => line === "a:1:refused"), `nothing of a ran before its first note succeeded: ${ofA.join(" ")}`)
      assert.ok(knobs.attempts.get("a:1")! >= 4, "the first note was attempted at least four times")
      const lastOfB = knobs.handled.lastIndexOf("b:5:accepted")
      assert.ok(lastOfB < knobs.handled.indexOf("a:1:accepted"), "b finished while a was still retrying")
      yield* eventually("the queue drains", drained)
    }))
  })

  it("dead-letters a poison message after attemptsMax attempts, moves on, and can retry and purge it", async () => {
    const knobs = new Knobs()
    let poisonCured = false
    knobs.refuse = (_, seq) => seq === 2 && !poisonCured
    const layer = durableNode({ url, prefix: testPrefix("poison"), stores: MemoryStore.layer, knobs, config: fast })
    await run(layer, Effect.gen(function*() {
      const service = yield* DurableMessages.DurableMessages
      const events = yield* Effect.forkScoped(Stream.runHead(service.events))
      const durable = yield* DurableMessages.client(Ledger)
      for (let seq = 1; seq <= 4; seq++) yield* durable.send("p", "Note", { seq })
      yield* eventually("the ledger moves past the poison", Effect.map(notesOf("p"), (notes) => notes.length === 3))
      assert.deepEqual(yield* notesOf("p"), [1, 3, 4], "the poison note was skipped, the rest kept their order")
      assert.equal(knobs.attempts.get("p:2"), fast.attemptsMax, "the poison was attempted exactly attemptsMax times")

      const event = yield* Fiber.join(events)
      assert.equal(event._tag, "Some")
      assert.equal(event._tag === "Some" && event.value.entity, "p")

      const deadLetters = yield* DeadLetters.DeadLetters
      const page = yield* deadLetters.list({ type: "ledger" })
      assert.equal(page.items.length, 1)
      const letter = page.items[0]!
      assert.deepEqual({ type: letter.type, entity: letter.entity, message: letter.message, attempts: letter.attempts }, {
        type: "ledger",
        entity: "p",
        message: { _tag: "Note", payload: { seq: 2 } },
        attempts: fast.attemptsMax
      })
      assert.match(letter.error, /Refused/)
      const counted = (yield* Metric.snapshot).filter((snapshot) => snapshot.id === "shardfeed_durable_dead_letters_total" && snapshot.attributes?.type === "ledger")
      assert.ok(counted.some((snapshot) => Number((snapshot.state as { count?: number }).count) >= 1), "the skip is counted")

      poisonCured = true
      yield* deadLetters.retry(letter.id)
      yield* eventually("the retried note arrives", Effect.map(notesOf("p"), (notes) => notes.length === 4))
      assert.deepEqual(yield* notesOf("p"), [1, 3, 4, 2], "a retried dead letter goes to the end of its entity's order")
      assert.equal((yield* deadLetters.list({})).items.length, 0, "a retried dead letter leaves the list")

      poisonCured = false
      yield* durable.send("p", "Note", { seq: 2 })
      yield* eventually("the poison is dead again", Effect.map(deadLetters.list({ type: "ledger" }), (again) => again.items.length === 1))
      const second = (yield* deadLetters.list({ type: "ledger" })).items[0]!
      assert.equal(yield* deadLetters.purge(second.id), true)
      assert.equal(yield* deadLetters.purge(second.id), false, "purging twice finds nothing the second time")
      assert.equal((yield* deadLetters.list({})).items.length, 0)
    }))
  })

  it("acknowledges a second send with the same id within the window and does not deliver it again", async () => {
    const layer = durableNode({ url, prefix: testPrefix("dedup"), stores: MemoryStore.layer, config: { ...fast, dedupWindowMillis: 1_500 } })
    await run(layer, Effect.gen(function*() {
      const durable = yield* DurableMessages.client(Ledger)
      const first = yield* durable.send("d", "Note", { seq: 1 }, { id: "order-1" })
      const again = yield* durable.send("d", "Note", { seq: 1 }, { id: "order-1" })
      const other = yield* durable.send("d", "Note", { seq: 2 }, { id: "order-2" })
      const elsewhere = yield* durable.send("e", "Note", { seq: 1 }, { id: "order-1" })
      assert.equal(first.duplicate, false)
      assert.deepEqual(again, { id: first.id, duplicate: true }, "the duplicate is acknowledged with the first send's id")
      assert.equal(other.duplicate, false)
      assert.equal(elsewhere.duplicate, false, "ids are per entity")
      yield* eventually("the queue drains", drained)
      assert.deepEqual(yield* notesOf("d"), [1, 2])
      assert.deepEqual(yield* notesOf("e"), [1])
      // Past the window the same id is a new message.
      yield* Effect.sleep(1_600)
      const later = yield* durable.send("d", "Note", { seq: 3 }, { id: "order-1" })
      assert.equal(later.duplicate, false)
      yield* eventually("the late send arrives", Effect.map(notesOf("d"), (notes) => notes.length === 3))
    }))
  })

  it("puts a message whose sender crashed between its add and its link in its place when it is sent again", async () => {
    // The crashed sender is simulated: its job is added as a durable send adds it, and never
    // linked. Its re-send is a duplicate, acknowledged, so it must hold its place before later sends.
    const prefix = testPrefix("relink")
    const config = { ...fast, prefix }
    const connection = { host: "127.0.0.1", port: Number(new URL(url).port) }
    const crashed = new Queue("shardfeed-durable", { connection, prefix })
    await crashed.add("ledger", { t: "ledger", e: "r", m: "Note", p: { seq: 1 } }, {
      ...DurableQueue.jobOptions({ ...DurableConfig.defaults, ...config }),
      jobId: "crashed-1",
      deduplication: { id: "ledger:r:note-1", ttl: DurableConfig.defaults.dedupWindowMillis }
    })
    await crashed.close()
    const senderOnly = durableNode({ url, prefix, stores: MemoryStore.layer, config: { ...config, consume: false } })
    await run(senderOnly, Effect.gen(function*() {
      const durable = yield* DurableMessages.client(Ledger)
      const again = yield* durable.send("r", "Note", { seq: 1 }, { id: "note-1" })
      assert.deepEqual(again, { id: "crashed-1", duplicate: true })
      yield* durable.send("r", "Note", { seq: 2 }, { id: "note-2" })
    }))
    await run(durableNode({ url, prefix, stores: MemoryStore.layer, config }), Effect.gen(function*() {
      yield* eventually("both notes are handled", Effect.map(notesOf("r"), (notes) => notes.length === 2))
      assert.deepEqual(yield* notesOf("r"), [1, 2], "the re-sent note keeps its place before the later one")
    }))
  })

  it("refuses bad sends with the field named, and writes nothing", async () => {
    const layer = durableNode({ url, prefix: testPrefix("bad"), stores: MemoryStore.layer, config: fast })
    await run(layer, Effect.gen(function*() {
      const service = yield* DurableMessages.DurableMessages
      const failure = (effect: Effect.Effect<unknown, { readonly _tag: string }>) => Effect.flip(effect)
      assert.equal((yield* failure(service.send("nope", "x", "Note", { seq: 1 })))._tag, "UnknownEntityType")
      const badTag = yield* failure(service.send("ledger", "x", "Nope", {}))
      assert.deepEqual([badTag._tag, (badTag as { field?: string }).field], ["InvalidMessage", "message"])
      const badPayload = yield* failure(service.send("ledger", "x", "Note", { seq: "one" }))
      assert.deepEqual([badPayload._tag, (badPayload as { field?: string }).field], ["InvalidMessage", "message.payload"])
      const badId = yield* failure(service.send("ledger", "", "Note", { seq: 1 }))
      assert.deepEqual([badId._tag, (badId as { field?: string }).field], ["InvalidArgument", "id"])
      const badDedup = yield* failure(service.send("ledger", "x", "Note", { seq: 1 }, { id: "x".repeat(300) }))
      assert.deepEqual([badDedup._tag, (badDedup as { field?: string }).field], ["InvalidArgument", "id"])
      assert.deepEqual(yield* service.stats, { waiting: 0, active: 0, delayed: 0, failed: 0, deadLetters: 0 })
    }))
  })
})
