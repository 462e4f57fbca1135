/**
 * Goal: the coalescing sorted-set client gives every call the outcome it would have had alone,
 * in call order, while sending far fewer messages; its waiting calls are bounded, and a call
 * interrupted while it waits is never sent.
 * Method: a SortedSet entity on a local runtime over LevelDB. 3,000 seeded random calls (adds
 * with mixed flags, some refused, increments, some to NaN, removals, ranks, counts, pops) are
 * made at once through the coalescing client on one set, then one by one through the plain
 * entity client on another set; the outcomes must be equal call by call, and so must the sets.
 * A counting messenger shows how many messages went.
 */
import { Effect, Exit, Fiber, Layer, ManagedRuntime, Schema } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { Messenger, type MessengerShape } from "../../actors/Messenger.js"
import { defaults, RuntimeConfig } from "../../actors/RuntimeConfig.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import { InvalidArgument } from "../../persistence/StoreError.js"
import * as SortedSetClient from "../../src/sortedset/SortedSetClient.js"
import * as SortedSetEntity from "../../src/sortedset/SortedSetEntity.js"
import { random } from "../support/random.js"
import { tempDir } from "../support/tempDir.js"

const node = () =>
  ManagedRuntime.make(
    SortedSetEntity.layer.pipe(
      Layer.provideMerge(EntityRuntime.layerLocal),
      Layer.provideMerge(LevelStore.layer({ directory: tempDir("zset-client") })),
      Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 16 }))
    )
  )

type Call = { readonly tag: string; readonly payload: Record<string, unknown> }

const calls = (seed: number, count: number): Array<Call> => {
  const next = random(seed)
  const int = (n: number) => Math.floor(next() * n)
  const member = () => (next() < 0.02 ? "" : `m${int(60)}`)
  const score = () => (next() < 0.05 ? Number.POSITIVE_INFINITY : next() < 0.05 ? Number.NEGATIVE_INFINITY : int(100) - 50)
  return Array.from({ length: count }, (): Call => {
    const roll = int(100)
    if (roll < 45) {
      const flags = [{}, { nx: true }, { xx: true }, { gt: true, ch: true }, { lt: true }, { nx: true, xx: true }][int(6)]!
      return { tag: "Add", payload: { members: Array.from({ length: 1 + int(3) }, () => ({ member: member(), score: score() })), ...flags } }
    }
    if (roll < 60) return { tag: "IncrBy", payload: { member: member(), by: score() } }
    if (roll < 70) return { tag: "Remove", payload: { members: [member()] } }
    if (roll < 80) return { tag: "Rank", payload: { member: member(), rev: next() < 0.5 } }
    if (roll < 88) return { tag: "Count", payload: { min: "-inf", max: String(int(100) - 50) } }
    if (roll < 94) return { tag: "Pop", payload: { side: next() < 0.5 ? "min" : "max", count: int(3) } }
    return { tag: "Card", payload: {} }
  })
}

/** An outcome as comparable data. */
const outcome = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) return { ok: exit.value }
  const reason = exit.cause.reasons[0]
  const error = (reason?._tag === "Fail" ? reason.error : reason) as { _tag?: string; field?: string }
  return { error: `${error?._tag}(${error?.field ?? ""})` }
}

/** A messenger that counts what it delivers, by tag. */
const counting = (messenger: MessengerShape) => {
  const delivered = new Map<string, number>()
  const wrapped: MessengerShape = {
    ...messenger,
    deliver: (envelope) => {
      delivered.set(envelope.tag, (delivered.get(envelope.tag) ?? 0) + 1)
      messenger.deliver(envelope)
    }
  }
  return { wrapped, delivered }
}

describe("coalescing sorted-set client", () => {
  it("answers each of 3,000 concurrent calls as one by one, with far fewer messages", async () => {
    const runtime = node()
    try {
      const messenger = await runtime.runPromise(Effect.gen(function*() {
        return yield* Messenger
      }))
      const { wrapped, delivered } = counting(messenger)
      const coalescing = SortedSetClient.fromMessenger(wrapped, 30_000)
      const plain = await runtime.runPromise(SortedSetEntity.client)
      const list = calls(20261126, 3_000)
      const together = await runtime.runPromise(
        Effect.forEach(list, (call) => Effect.exit(coalescing.ask("together", call.tag as never, call.payload as never)), { concurrency: "unbounded" })
      )
      const alone: Array<Exit.Exit<unknown, unknown>> = []
      for (const call of list) {
        alone.push(await runtime.runPromise(Effect.exit((plain.ask as any)("alone", call.tag, call.payload) as Effect.Effect<unknown, unknown>)))
      }
      for (let i = 0; i < list.length; i++) {
        assert.deepEqual(outcome(together[i]!), outcome(alone[i]!), `call ${i}: ${JSON.stringify(list[i])}`)
      }
      const refused = together.filter((exit) => Exit.isFailure(exit)).length
      assert.ok(refused > 30 && refused < 1_500, `some calls are refused (${refused}), most are not`)
      const contents = (key: string) => runtime.runPromise((plain.ask as any)(key, "Range", { by: "rank", min: 0, max: -1 }) as Effect.Effect<unknown>)
      assert.deepEqual(await contents("together"), await contents("alone"))
      const messages = [...delivered.values()].reduce((a, b) => a + b, 0)
      assert.ok((delivered.get("Batch") ?? 0) > 0 && messages <= list.length / 10, `3,000 calls went as ${messages} messages: ${JSON.stringify([...delivered])}`)
    } finally {
      await runtime.dispose()
    }
  }, 120_000)

  it("sends batches and their outcomes across processes intact (scores ±inf, each reply its own shape)", () => {
    const codec = (schema: Schema.Top) => Schema.toCodecJson(schema) as unknown as Schema.Codec<unknown, unknown>
    const payload = {
      requests: [
        { _tag: "Add", members: [{ member: "a", score: Number.POSITIVE_INFINITY }], nx: true },
        { _tag: "IncrBy", member: "a", by: Number.NEGATIVE_INFINITY },
        { _tag: "Score", member: "zz" },
        { _tag: "Rank", member: "a", rev: true },
        { _tag: "Range", by: "score", min: "-inf", max: "(5", offset: 0, limit: 2 },
        { _tag: "Card" }
      ]
    }
    const outcomes = {
      outcomes: [
        { ok: true, reply: { count: 1 } },
        { ok: false, error: new InvalidArgument({ field: "by", message: "NaN" }) },
        { ok: true, reply: { score: null } },
        { ok: true, reply: { rank: 0 } },
        { ok: true, reply: { members: [{ member: "a", score: Number.NEGATIVE_INFINITY }] } },
        { ok: true, reply: { card: 1 } },
        { ok: true, reply: { score: Number.POSITIVE_INFINITY } }
      ]
    }
    for (const [schema, value] of [[SortedSetEntity.Batch.payloadSchema, payload], [SortedSetEntity.Batch.successSchema, outcomes]] as const) {
      const wire = JSON.parse(JSON.stringify(Schema.encodeUnknownSync(codec(schema))(value)))
      assert.deepEqual(Schema.decodeUnknownSync(codec(schema))(wire), value)
    }
  })

  it("bounds the calls waiting for one set, and never sends one interrupted while it waits", async () => {
    const runtime = node()
    try {
      const client = await runtime.runPromise(SortedSetClient.make)
      // One call in flight, then more than can wait behind it, all made in one synchronous turn.
      const settled = await Promise.allSettled(
        Array.from({ length: SortedSetClient.WAITING_CALLS_MAX + 100 }, (_, i) => client.promise("bounded", "Add", { members: [{ member: `m${i}`, score: i }] }))
      )
      const exits = settled.map((result) => (result.status === "fulfilled" ? Exit.succeed(result.value) : Exit.fail(result.reason)))
      const full = exits.filter((exit) => Exit.isFailure(exit) && outcome(exit).error === "MailboxFull()").length
      assert.equal(full, 100 - 1, "one in flight, WAITING_CALLS_MAX waiting, the rest refused")
      assert.deepEqual(await runtime.runPromise(client.ask("bounded", "Card", {})), { card: SortedSetClient.WAITING_CALLS_MAX + 1 })

      await runtime.runPromise(Effect.gen(function*() {
        const first = yield* Effect.forkChild(client.ask("interrupted", "Add", { members: [{ member: "sent", score: 1 }] }))
        const waiting = yield* Effect.forkChild(client.ask("interrupted", "Add", { members: [{ member: "never", score: 2 }] }))
        yield* Effect.yieldNow
        yield* Fiber.interrupt(waiting)
        yield* Fiber.join(first)
        assert.deepEqual(yield* client.ask("interrupted", "Range", { by: "rank", min: 0, max: -1 }), { members: [{ member: "sent", score: 1 }] })
      }))
    } finally {
      await runtime.dispose()
    }
  }, 60_000)
})
