/**
 * Goal: the entity runtime keeps its promises — one message at a time per entity, each sender's
 * order, replies only after writes are durable, restarts after crashes, poison messages skipped,
 * bounded mailboxes, passivation and the resident cap, and no acknowledged write lost when a
 * shard stops under load.
 * Method: probe entities (test/actors/fixtures.ts) on the memory store, driven by many concurrent
 * senders; blocked handlers and gated store writes instead of sleeps; outcomes checked against
 * the store and the runtime's lifecycle events.
 */
import { Deferred, Effect, Fiber, Layer, Metric, Option, Result, Stream } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityMetrics from "../../actors/EntityMetrics.js"
import { EntityRuntime } from "../../actors/EntityRuntime.js"
import * as Lifecycle from "../../actors/EntityLifecycle.js"
import { murmur3, shardOf } from "../../actors/ShardId.js"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import { StoreBackend, type StoreBackendShape } from "../../persistence/StoreBackend.js"
import { layerStores } from "../../persistence/IndexedStore.js"
import { Probe, Probes, runtimeLayer } from "./fixtures.js"

const run = <A, E>(layer: Layer.Layer<any, any>, effect: Effect.Effect<A, E, any>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, layer)) as Effect.Effect<A, E>)

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : Buffer.from(bytes).toString())

describe("entity runtime", () => {
  it("handles 10,000 messages from 20 concurrent senders one at a time, each sender's order kept", async () => {
    const probes = new Probes()
    await run(runtimeLayer(probes), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const replies = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, sender) => sender),
        (sender) =>
          // Up to 8 of a sender's messages in flight at once: each is sent before the one after it.
          Effect.forEach(Array.from({ length: 500 }, (_, seq) => seq), (seq) => probe.ask("one", "Record", { sender, seq }), { concurrency: 8 }),
        { concurrency: "unbounded" }
      )
      const all = replies.flat()
      assert.equal(all.length, 10_000)
      assert.equal(all.filter((reply) => reply.overlapped).length, 0, "two handlers of one entity never run at once")
      assert.equal(all.filter((reply) => reply.outOfOrder).length, 0, "each sender's messages are handled in send order")
      assert.equal(probes.reorders, 0)
      assert.equal(Math.max(...all.map((reply) => reply.count)), 10_000)
    }))
  })

  it("keeps one sender's pipelined sends in order", async () => {
    const probes = new Probes()
    await run(runtimeLayer(probes), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      // Fire-and-forget sends, then one ask behind them: it is handled after all of them.
      for (let seq = 0; seq < 1_000; seq++) yield* probe.send("pipelined", "Record", { sender: 1, seq })
      const last = yield* probe.ask("pipelined", "Record", { sender: 1, seq: 1_000 })
      assert.equal(last.outOfOrder, false)
      assert.equal(last.count, 1_001)
      assert.equal(probes.reorders, 0, "no send was handled after a later one")
    }))
  })

  it("answers an ask only after its write is readable from the store", async () => {
    const probes = new Probes()
    const gate = Deferred.makeUnsafe<void>()
    let writesSeen = 0
    // A backend whose writes wait for the test: the ack must wait too.
    const gated = Layer.effect(StoreBackend, Effect.map(StoreBackend, (backend): StoreBackendShape => ({
      ...backend,
      write: (batches) => {
        writesSeen++
        return Effect.flatMap(Deferred.await(gate), () => backend.write(batches))
      }
    }))).pipe(Layer.provide(MemoryStore.layerBackend))
    await run(runtimeLayer(probes, {}, layerStores(gated)), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const store = yield* KeyValueStore
      const runtime = yield* EntityRuntime
      const ask = yield* Effect.forkChild(probe.ask("acked", "Write", { key: "k", value: "v1" }))
      while (writesSeen === 0) yield* Effect.yieldNow
      for (let i = 0; i < 100; i++) yield* Effect.yieldNow
      assert.equal(ask.pollUnsafe(), undefined, "no reply while the write is not committed")
      yield* Deferred.succeed(gate, undefined)
      assert.equal(yield* Fiber.join(ask), "v1")
      const shard = runtime.shardOf("probe", "acked")
      const stored = yield* store.get(String(shard), "probe.data", Buffer.concat([Buffer.from("acked\u0000"), Buffer.from("k")]))
      assert.equal(text(stored), "v1")
    }))
  })

  it("holds commits while writes are paused, fails the held ones when discarded, and rebuilds entities on reset", async () => {
    const probes = new Probes()
    await run(runtimeLayer(probes), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const store = yield* KeyValueStore
      const runtime = yield* EntityRuntime
      const shard = String(runtime.shardOf("probe", "paused"))
      const stored = Effect.map(store.get(shard, "probe.data", Buffer.from("paused\u0000k")), text)
      const settle = Effect.forEach(Array.from({ length: 200 }, (_, i) => i), () => Effect.yieldNow, { discard: true })
      assert.equal(yield* probe.ask("paused", "Write", { key: "k", value: "v1" }), "v1")

      // Held, then let go: the ask waits for the commit, and the commit waits for resume.
      yield* runtime.pauseWrites
      const held = yield* Effect.forkChild(probe.ask("paused", "Write", { key: "k", value: "v2" }))
      yield* settle
      assert.equal(held.pollUnsafe(), undefined, "no reply while commits are held")
      assert.equal(yield* stored, "v1", "nothing written while commits are held")
      runtime.resumeWrites()
      assert.equal(yield* Fiber.join(held), "v2")
      assert.equal(yield* stored, "v2")

      // Held, then discarded (a restore rewrote the store): the ask fails and nothing lands.
      assert.equal((yield* probe.ask("paused", "Record", { sender: 1, seq: 0 })).count, 1)
      assert.equal((yield* probe.ask("clean", "Record", { sender: 1, seq: 0 })).count, 1)
      yield* runtime.pauseWrites
      const dropped = yield* Effect.forkChild(Effect.flip(probe.ask("paused", "Write", { key: "k", value: "v3" })))
      yield* settle
      assert.equal(runtime.discardWaitingWrites("the store was restored"), 1)
      const error = yield* Fiber.join(dropped)
      assert.equal(error._tag, "EntityUnavailable")
      yield* store.put(shard, "probe.data", Buffer.from("paused\u0000k"), Buffer.from("restored"))
      runtime.resetEntities("the store was restored")
      runtime.resumeWrites()
      yield* settle
      assert.equal(yield* stored, "restored", "the discarded write never landed")
      assert.equal(yield* probe.ask("paused", "Read", { key: "k" }), "restored")
      // In-memory state was rebuilt, also of an entity that had nothing waiting: counts start again.
      assert.equal((yield* probe.ask("paused", "Record", { sender: 2, seq: 0 })).count, 1)
      assert.equal((yield* probe.ask("clean", "Record", { sender: 2, seq: 0 })).count, 1)
    }))
  })

  it("restarts a crashed entity from the store and retries the message", async () => {
    const probes = new Probes()
    probes.crashes.set("crashy", 2)
    await run(runtimeLayer(probes), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const runtime = yield* EntityRuntime
      const events = yield* Stream.runCollect(Stream.take(runtime.events.pipe(Stream.filter((event) => event._tag === "Restarted")), 2)).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      assert.equal(yield* probe.ask("crashy", "Write", { key: "before", value: "kept" }), "kept")
      // Two crashes, then the third attempt succeeds: the caller sees only the success.
      assert.equal(yield* probe.ask("crashy", "CrashingWrite", { key: "k", value: "third time" }), "third time")
      assert.equal(yield* probe.ask("crashy", "Read", { key: "k" }), "third time")
      assert.equal(yield* probe.ask("crashy", "Read", { key: "before" }), "kept")
      const restarts = yield* Fiber.join(events)
      assert.equal(restarts.length, 2)
    }))
  })

  it("answers a poison message with PoisonMessage after the configured attempts, and goes on", async () => {
    const probes = new Probes()
    await run(runtimeLayer(probes, { handlerAttemptsMax: 4 }), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const runtime = yield* EntityRuntime
      const poisoned = yield* Stream.runHead(runtime.events.pipe(Stream.filter((event) => event._tag === "PoisonMessage"))).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      const counted = Metric.value(Metric.withAttributes(EntityMetrics.poisonMessages, { type: "probe" }))
      const before = (yield* counted).count
      const error = yield* Effect.flip(probe.ask("victim", "Poison"))
      assert.equal((yield* counted).count - before, 1, "the skip is counted")
      assert.equal(error._tag, "PoisonMessage")
      assert.equal(error._tag === "PoisonMessage" && error.attempts, 4)
      assert.equal(yield* probe.ask("victim", "Write", { key: "k", value: "alive" }), "alive")
      const event = yield* Fiber.join(poisoned)
      assert.equal(Option.isSome(event) && event.value._tag === "PoisonMessage" && event.value.message, "Poison")
    }))
  })

  it("refuses messages past the mailbox capacity with MailboxFull", async () => {
    const probes = new Probes()
    await run(runtimeLayer(probes, {}, MemoryStore.layer, { mailboxCapacityMax: 10 }), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const blocked = yield* Effect.forkChild(probe.ask("busy", "Block", { gate: "g" }))
      while (probes.gates.get("g") === undefined) yield* Effect.yieldNow
      const results = yield* Effect.forEach(
        Array.from({ length: 30 }, (_, seq) => seq),
        (seq) => Effect.result(probe.ask("busy", "Record", { sender: 0, seq })),
        { concurrency: "unbounded" }
      ).pipe(Effect.forkChild)
      for (let i = 0; i < 50; i++) yield* Effect.yieldNow
      yield* Deferred.succeed(probes.gate("g"), 7)
      assert.equal(yield* Fiber.join(blocked), 7)
      const outcomes = yield* Fiber.join(results)
      const full = outcomes.filter((result) => Result.isFailure(result) && result.failure._tag === "MailboxFull").length
      const handled = outcomes.filter(Result.isSuccess).length
      assert.equal(full, 20, "10 queued behind the blocked message, the other 20 refused")
      assert.equal(handled, 10)
    }))
  })

  it("times out an ask: AskTimeout while it waited (never handled), OutcomeUnknown once its handler had it", async () => {
    const probes = new Probes()
    await run(runtimeLayer(probes), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const blocked = yield* Effect.forkChild(Effect.flip(probe.ask("slow", "Block", { gate: "never" }, { timeoutMillis: 100 })))
      yield* Effect.sleep(20)
      // Queued behind the blocked handler until its deadline: never handled.
      const waited = yield* Effect.flip(probe.ask("slow", "Write", { key: "k", value: "late" }, { timeoutMillis: 100 }))
      assert.equal(waited._tag, "AskTimeout")
      assert.equal((yield* Fiber.join(blocked))._tag, "OutcomeUnknown", "the handler had begun: it may have taken effect")
      yield* Deferred.succeed(probes.gate("never"), 1)
      assert.equal(yield* probe.ask("slow", "Read", { key: "k" }), null, "the timed-out write was skipped, not applied late")
    }))
  })

  it("passivates idle entities and reactivates them with their state on the next message", async () => {
    const probes = new Probes()
    await run(runtimeLayer(probes, { idlePassivationMillis: 40 }), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const runtime = yield* EntityRuntime
      yield* probe.ask("sleepy", "Write", { key: "k", value: "v" })
      assert.equal(runtime.stats().resident, 1)
      const passivated = yield* Stream.runHead(runtime.events.pipe(Stream.filter((event) => event._tag === "Passivated")))
      assert.equal(Option.isSome(passivated) && passivated.value._tag === "Passivated" && passivated.value.reason, "idle")
      assert.equal(runtime.stats().resident, 0)
      assert.equal(yield* probe.ask("sleepy", "Read", { key: "k" }), "v")
      assert.equal(runtime.stats().resident, 1)
    }))
  })

  it("holds the resident cap while 200,000 distinct entities are touched", async () => {
    const probes = new Probes()
    await run(runtimeLayer(probes, { residentEntitiesMax: 5_000 }), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const runtime = yield* EntityRuntime
      let peak = 0
      for (let start = 0; start < 200_000; start += 1_000) {
        yield* Effect.forEach(
          Array.from({ length: 1_000 }, (_, i) => start + i),
          (i) => probe.ask(`e${i}`, "Read", { key: "k" }),
          { concurrency: 1_000, discard: true }
        )
        peak = Math.max(peak, runtime.stats().resident)
      }
      assert.ok(peak <= 5_000, `resident peaked at ${peak}`)
      assert.ok(peak >= 4_000, "the cap, not something else, limited residency")
    }))
  }, 120_000)

  it("rebuilds an entity from the store when a handler fails with a declared error after changing state", async () => {
    const probes = new Probes()
    await run(runtimeLayer(probes), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const runtime = yield* EntityRuntime
      assert.equal(yield* probe.ask("refuser", "Write", { key: "kept", value: "v0" }), "v0")
      const restarted = yield* Effect.forkChild(Stream.runHead(runtime.events.pipe(Stream.filter((event) => event._tag === "Restarted"))))
      yield* Effect.sleep(10)
      const error = yield* Effect.flip(probe.ask("refuser", "RefusingWrite", { key: "k", value: "v1" }))
      assert.equal(error._tag, "Refused", "the caller gets the declared error")
      assert.equal(yield* probe.ask("refuser", "Read", { key: "k" }), null, "the failed message's write was dropped")
      assert.equal(yield* probe.ask("refuser", "Noted", { key: "k" }), null, "and its change to the state in memory with it")
      assert.equal(yield* probe.ask("refuser", "Read", { key: "kept" }), "v0", "earlier writes stay")
      const event = yield* Fiber.join(restarted)
      assert.ok(Option.isSome(event) && event.value._tag === "Restarted" && event.value.reason.includes("RefusingWrite"))
    }))
  })

  it("makes room for a newcomer when every resident entity was used since the hand last passed", async () => {
    const probes = new Probes()
    // Over 4,096 resident: the old hand gave up after that many second chances and refused the newcomer.
    const cap = 5_000
    await run(runtimeLayer(probes, { residentEntitiesMax: cap }), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const runtime = yield* EntityRuntime
      for (let round = 0; round < 2; round++) {
        yield* Effect.forEach(Array.from({ length: cap }, (_, i) => i), (i) => probe.ask(`e${i}`, "Read", { key: "k" }), { concurrency: 1_000, discard: true })
      }
      assert.equal(runtime.stats().resident, cap)
      const evicted = yield* Effect.forkChild(Stream.runHead(runtime.events.pipe(Stream.filter((event) => event._tag === "Passivated"))))
      yield* Effect.sleep(10)
      assert.equal(yield* probe.ask("newcomer", "Read", { key: "k" }), null, "the newcomer is served")
      const event = yield* Fiber.join(evicted)
      assert.ok(Option.isSome(event) && event.value._tag === "Passivated", "an entity was passivated")
      assert.equal(event.value.reason, "resident-cap")
      assert.equal(event.value.id, "e0", "the least recently used one")
      assert.equal(runtime.stats().resident, cap)
    }))
  }, 60_000)

  it("loses no acknowledged write when a shard stops under load", async () => {
    const probes = new Probes()
    await run(runtimeLayer(probes), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const runtime = yield* EntityRuntime
      const store = yield* KeyValueStore
      const shard = runtime.shardOf("probe", "s0")
      const ids = Array.from({ length: 2_000 }, (_, i) => `s${i}`).filter((id) => runtime.shardOf("probe", id) === shard).slice(0, 20)
      const writes = Effect.forEach(
        Array.from({ length: 2_000 }, (_, i) => i),
        (i) => Effect.result(probe.ask(ids[i % ids.length]!, "Write", { key: `k${i}`, value: `v${i}` })),
        { concurrency: 200 }
      )
      const fiber = yield* Effect.forkChild(writes)
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      yield* runtime.stopShard(shard)
      const results = yield* Fiber.join(fiber)
      const acked = results.flatMap((result, i) => (Result.isSuccess(result) ? [i] : []))
      const refused = results.filter((result) => Result.isFailure(result) && result.failure._tag === "ShardNotOwned").length
      assert.equal(acked.length + refused, results.length, "every write was either acknowledged or refused as not owned")
      assert.ok(acked.length > 0 && refused > 0, `the stop happened under load (acked ${acked.length}, refused ${refused})`)
      for (const i of acked) {
        const key = Buffer.concat([Buffer.from(`${ids[i % ids.length]}\u0000`), Buffer.from(`k${i}`)])
        assert.equal(text(yield* store.get(String(shard), "probe.data", key)), `v${i}`, `acknowledged write ${i} is durable`)
      }
      assert.equal(runtime.owned().has(shard), false)
    }))
  })

  it("refuses bad addresses with typed errors naming the field", async () => {
    const probes = new Probes()
    await run(runtimeLayer(probes), Effect.gen(function*() {
      const probe = yield* EntityClient.make(Probe)
      const empty = yield* Effect.flip(probe.ask("", "Read", { key: "k" }))
      assert.equal(empty._tag === "InvalidMessage" && empty.field, "id")
      const long = yield* Effect.flip(probe.ask("x".repeat(513), "Read", { key: "k" }))
      assert.equal(long._tag === "InvalidMessage" && long.field, "id")
      const nul = yield* Effect.flip(probe.ask("a\u0000b", "Read", { key: "k" }))
      assert.equal(nul._tag === "InvalidMessage" && nul.field, "id")
      const unknown = yield* Effect.flip((probe.ask as (id: string, tag: string) => Effect.Effect<unknown, { _tag: string; field?: string }>)("x", "Nope"))
      assert.equal(unknown._tag === "InvalidMessage" && unknown.field, "message")
    }))
  })
})

describe("entity lifecycle", () => {
  it("allows exactly the transitions of its table and fails loudly on any other", () => {
    const states: ReadonlyArray<Lifecycle.State> = ["activating", "active", "restarting", "passivating", "stopped"]
    for (const from of states) {
      for (const to of states) {
        const legal = Lifecycle.transitions[from].includes(to)
        if (legal) assert.equal(Lifecycle.transition("e", from, to), to)
        else assert.throws(() => Lifecycle.transition("e", from, to), Lifecycle.IllegalTransition)
      }
    }
    assert.throws(() => Lifecycle.transition("e", "stopped", "active"), /stopped -> active/)
  })
})

describe("shard addressing", () => {
  it("is MurmurHash3 x86_32 of type, 0x00, id", () => {
    const encode = (text: string) => new TextEncoder().encode(text)
    assert.equal(murmur3(encode("")), 0)
    assert.equal(murmur3(encode("hello")), 0x248bfa47)
    assert.equal(murmur3(encode("The quick brown fox jumps over the lazy dog")), 0x2e4ff723)
    assert.equal(shardOf("feed", "match-1", 1_024), murmur3(encode("feed\u0000match-1")) % 1_024)
  })

  it("spreads ids evenly over shards", () => {
    const counts = new Array<number>(64).fill(0)
    for (let i = 0; i < 64_000; i++) counts[shardOf("feed", `id-${i}`, 64)]!++
    assert.ok(Math.min(...counts) > 850 && Math.max(...counts) < 1_150, `counts ${Math.min(...counts)}..${Math.max(...counts)}`)
  })
})

