/**
 * Goal: the engine refuses bad input with an `InvalidArgument` naming the field and changes and
 * stages nothing; what it acknowledges survives reloads and restarts (LevelDB), through snapshot
 * rewrites, and an interrupted write leaves a set that still loads consistently.
 *
 * Method: engines over staged and direct views of memory and LevelDB stores; after each refused
 * operation the staged view must be empty and the state unchanged. Persistence is checked by
 * loading a fresh engine from the store and comparing contents; crash consistency by a view
 * that fails at every possible write of a snapshot rewrite, then reloading.
 */
import { Cause, Effect, Exit, ManagedRuntime, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { KeyValueStore, type KeyValueStoreShape } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import { StoreUnavailable } from "../../persistence/StoreError.js"
import * as StoreView from "../../persistence/StoreView.js"
import * as SortedSet from "../../src/sortedset/SortedSet.js"
import * as Messages from "../../src/sortedset/SortedSetMessages.js"
import { itLayer } from "../support/itEffect.js"
import { tempDir } from "../support/tempDir.js"

const itMemory = itLayer(MemoryStore.layer)
const PARTITION = "zset-tests"

const contents = (set: SortedSet.SortedSet) => Array.from(set.state.entries())

/** The failure of an effect: its tag and field, or "success". */
const failure = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return "success"
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "None") return `defect: ${Cause.pretty(exit.cause)}`
    const value = error.value as { _tag: string; field?: string }
    return `${value._tag}(${value.field ?? ""})`
  })

const withConfig = <A, E, R>(effect: Effect.Effect<A, E, R>, config: Partial<SortedSet.SortedSetConfigShape>): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const defaults = yield* SortedSet.SortedSetConfig
    return yield* Effect.provideService(effect, SortedSet.SortedSetConfig, { ...defaults, ...config })
  })

describe("bad input", () => {
  itMemory("names the field, and changes and stages nothing", () =>
    Effect.gen(function*() {
      const store = yield* KeyValueStore
      const set = yield* SortedSet.load(StoreView.direct(store, PARTITION), "bad")
      const seed = yield* StoreView.staged(store, PARTITION)
      yield* set.add(seed, [{ member: "a", score: 1 }, { member: "b", score: Infinity }, { member: "c", score: -Infinity }])
      yield* store.batch(PARTITION, seed.ops())
      const before = contents(set)
      const view = yield* StoreView.staged(store, PARTITION)
      const cases: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown>]> = [
        ["member", set.add(view, [{ member: "", score: 1 }])],
        ["member", set.add(view, [{ member: "ok", score: 1 }, { member: "x".repeat(64 * 1024 + 1), score: 1 }])],
        ["member", set.add(view, [{ member: "é".repeat(32 * 1024 + 1), score: 1 }])],
        ["member", set.add(view, [{ member: "lone\uD800", score: 1 }])],
        ["member", set.add(view, [{ member: 7 as unknown as string, score: 1 }])],
        ["score", set.add(view, [{ member: "ok", score: 1 }, { member: "d", score: Number.NaN }])],
        ["score", set.add(view, [{ member: "d", score: "1" as unknown as number }])],
        ["members", set.add(view, [])],
        ["flags", set.add(view, [{ member: "a", score: 5 }], { nx: true, xx: true })],
        ["flags", set.add(view, [{ member: "a", score: 5 }], { gt: true, lt: true })],
        ["flags", set.add(view, [{ member: "a", score: 5 }], { gt: true, nx: true })],
        ["flags", set.add(view, [{ member: "a", score: 5 }], { lt: true, nx: true })],
        ["by", set.incrBy(view, "a", Number.NaN)],
        ["by", set.incrBy(view, "b", -Infinity)],
        ["member", set.incrBy(view, "", 1)],
        ["members", set.remove(view, [])],
        ["member", set.remove(view, ["a", ""])],
        ["member", set.score("")],
        ["member", set.rank("\uDC00", true)],
        ["min", set.range({ by: "score", min: "abc", max: "+inf" })],
        ["max", set.range({ by: "score", min: "-inf", max: "(" })],
        ["min", set.range({ by: "score", min: "0x10", max: "+inf" })],
        ["min", set.range({ by: "score", min: " 1", max: "+inf" })],
        ["max", set.range({ by: "score", min: 0, max: Number.NaN })],
        ["min", set.range({ by: "lex", min: "a", max: "+" })],
        ["max", set.range({ by: "lex", min: "-", max: "" })],
        ["min", set.range({ by: "rank", min: "1.5", max: "2" })],
        ["max", set.range({ by: "rank", min: 0, max: "x" })],
        ["offset", set.range({ by: "rank", min: 0, max: -1, offset: 0 })],
        ["limit", set.range({ by: "rank", min: 0, max: -1, limit: 1 })],
        ["offset", set.range({ by: "score", min: "-inf", max: "+inf", offset: -1, limit: 1 })],
        ["limit", set.range({ by: "score", min: "-inf", max: "+inf", limit: 1.5 })],
        ["by", set.range({ by: "weight" as "rank", min: 0, max: 1 })],
        ["min", set.count("nan", "+inf")],
        ["count", set.pop(view, "min", -1)],
        ["count", set.pop(view, "max", 1.5)],
        ["side", set.pop(view, "middle" as "min")],
        ["min", set.removeRange(view, { by: "score", min: "((1", max: "2" })],
        ["max", set.removeRange(view, { by: "lex", min: "[a", max: "b" })],
        ["min", set.removeRange(view, { by: "rank", min: "01", max: "2" })]
      ]
      for (const [field, effect] of cases) {
        expect(yield* failure(effect)).toBe(`InvalidArgument(${field})`)
        expect(view.size()).toBe(0)
        expect(contents(set)).toEqual(before)
      }
    }))

  itMemory("bounds what one range or pop returns and what one removal removes", () =>
    withConfig(
      Effect.gen(function*() {
        const store = yield* KeyValueStore
        const set = yield* SortedSet.load(StoreView.direct(store, PARTITION), "bounded")
        const view = yield* StoreView.staged(store, PARTITION)
        yield* set.add(view, Array.from({ length: 10 }, (_, i) => ({ member: `m${i}`, score: i })))
        yield* set.add(view, Array.from({ length: 10 }, (_, i) => ({ member: `m${i + 10}`, score: i + 10 })))
        const staged = view.size()
        expect(yield* failure(set.range({ by: "rank", min: 0, max: -1 }))).toBe("InvalidArgument(range)")
        expect(yield* set.range({ by: "score", min: "-inf", max: "+inf", limit: 10 })).toHaveLength(10)
        expect(yield* failure(set.pop(view, "min", 11))).toBe("InvalidArgument(count)")
        expect(yield* failure(set.removeRange(view, { by: "rank", min: 0, max: 12 }))).toBe("InvalidArgument(range)")
        expect(yield* failure(set.add(view, Array.from({ length: 13 }, (_, i) => ({ member: `n${i}`, score: i }))))).toBe("InvalidArgument(members)")
        expect(view.size()).toBe(staged)
        expect(set.state.card).toBe(20)
      }),
      { resultMembersMax: 10, membersPerOperationMax: 12 }
    ))
})

describe("answers", () => {
  itMemory("follow ZADD's flags, CH counting and repeated members", () =>
    Effect.gen(function*() {
      const store = yield* KeyValueStore
      const view = StoreView.direct(store, PARTITION)
      const set = yield* SortedSet.load(view, "flags")
      expect(yield* set.add(view, [{ member: "a", score: 1 }, { member: "a", score: 2 }], { ch: true })).toBe(2)
      expect(yield* set.score("a")).toBe(2)
      expect(yield* set.add(view, [{ member: "a", score: 3 }, { member: "a", score: 3 }], { xx: true, ch: true })).toBe(1)
      expect(yield* set.add(view, [{ member: "a", score: 1 }, { member: "b", score: 1 }], { gt: true, ch: true })).toBe(1)
      expect(yield* set.add(view, [{ member: "a", score: 1 }], { lt: true })).toBe(0)
      expect(yield* set.score("a")).toBe(1)
      expect(yield* set.add(view, [{ member: "c", score: -0 }])).toBe(1)
      expect(Object.is(yield* set.score("c"), 0)).toBe(true)
      expect(yield* set.incrBy(view, "d", -0)).toBe(0)
      expect(yield* set.incrBy(view, "a", Infinity)).toBe(Infinity)
      expect(yield* set.range({ by: "score", min: "(1", max: "+inf", rev: true })).toEqual([{ member: "a", score: Infinity }])
      expect(yield* set.range({ by: "rank", min: 0, max: 1, rev: true })).toEqual([{ member: "a", score: Infinity }, { member: "b", score: 1 }])
      expect(yield* set.pop(view, "min", 2)).toEqual([{ member: "c", score: 0 }, { member: "d", score: 0 }])
      expect(yield* set.card()).toBe(2)
      // The largest member allowed: exactly 64 KiB of UTF-8, kept under a hashed key.
      const largest = "é".repeat(32 * 1024)
      expect(yield* set.add(view, [{ member: largest, score: 5 }])).toBe(1)
      expect(contents(yield* reload(store, "flags"))).toEqual(contents(set))
    }))
})

/** Reloads a set from the store into a fresh engine. */
const reload = (store: KeyValueStoreShape, namespace: string) => SortedSet.load(StoreView.direct(store, PARTITION), namespace)

/** Applies random updates through staged views, committing each batch as the runtime will. */
const churn = (store: KeyValueStoreShape, set: SortedSet.SortedSet, seed: number, batches: number, perBatch: number, pool: number) =>
  Effect.gen(function*() {
    let state = seed
    const next = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0
      return state
    }
    for (let batch = 0; batch < batches; batch++) {
      const view = yield* StoreView.staged(store, PARTITION)
      for (let i = 0; i < perBatch; i++) {
        const roll = next() % 10
        const member = `m${next() % pool}${next() % 50 === 0 ? "é".repeat(300) : ""}`
        if (roll < 7) yield* set.add(view, [{ member, score: (next() % 1000) - 500 }])
        else if (roll < 9) yield* set.remove(view, [member])
        else yield* set.pop(view, next() % 2 === 0 ? "min" : "max", next() % 3)
      }
      if (view.size() > 0) yield* store.batch(PARTITION, view.ops())
    }
  })

describe("persistence", () => {
  itMemory("reloads what was acknowledged, across snapshot rewrites and many chunks", () =>
    withConfig(
      Effect.gen(function*() {
        const store = yield* KeyValueStore
        const set = yield* reload(store, "big")
        // 70,000 members: 18 chunks of 4,096, so a load reads more than one page of chunks.
        const view = yield* StoreView.staged(store, PARTITION)
        yield* set.add(view, Array.from({ length: 70_000 }, (_, i) => ({ member: `member:${i}`, score: i % 1000 })))
        yield* store.batch(PARTITION, view.ops())
        for (let round = 0; round < 5; round++) {
          yield* churn(store, set, round + 1, 20, 300, 80_000)
          const fresh = yield* reload(store, "big")
          fresh.state.check()
          expect(contents(fresh)).toEqual(contents(set))
        }
        const chunks = yield* store.scan(PARTITION, "big", { gte: new Uint8Array([3]), lt: new Uint8Array([4]) })
        expect(chunks.length).toBeGreaterThanOrEqual(17)
      }),
      { deltaRecordsMax: 2_000, loadChunkSize: 500 }
    ), 120_000)

  itMemory("rolls the memory back when staging fails, so the set matches the store", () =>
    withConfig(
      Effect.gen(function*() {
        const store = yield* KeyValueStore
        const set = yield* reload(store, "rollback")
        const seed = yield* StoreView.staged(store, PARTITION)
        yield* set.add(seed, Array.from({ length: 30 }, (_, i) => ({ member: `m${i}`, score: i })))
        yield* store.batch(PARTITION, seed.ops())
        const before = contents(set)
        // A write set of at most 3 keys: an add of 5 members (or the snapshot it triggers) cannot fit.
        const tiny = yield* StoreView.staged(store, PARTITION, 3)
        expect(yield* failure(set.add(tiny, Array.from({ length: 5 }, (_, i) => ({ member: `n${i}`, score: i }))))).toBe("InvalidArgument(ops)")
        expect(yield* failure(set.removeRange(tiny, { by: "rank", min: 0, max: 9 }))).toBe("InvalidArgument(ops)")
        expect(contents(set)).toEqual(before)
        set.state.check()
        expect(contents(yield* reload(store, "rollback"))).toEqual(before)
      }),
      { deltaRecordsMax: 8 }
    ))

  itMemory("loads a consistent set after a snapshot rewrite interrupted at any write, and recovers (direct view)", () =>
    withConfig(
      Effect.gen(function*() {
        const store = yield* KeyValueStore
        for (let failAt = 0; failAt < 12; failAt++) {
          const namespace = `crash${failAt}`
          const set = yield* reload(store, namespace)
          const direct = StoreView.direct(store, PARTITION)
          // Seven adds: the seventh passes the delta bound and writes a first snapshot; five more
          // leave five deltas beside it.
          for (let i = 0; i < 12; i++) yield* set.add(direct, [{ member: `m${i}`, score: i }])
          const before = contents(set)
          // The next add passes the bound again: a new snapshot, the manifest, five delta and one
          // chunk deletions, written one by one, and the store fails at write number `failAt`.
          let writes = 0
          const failing: StoreView.StoreView = {
            ...direct,
            put: (ns, key, value) => (writes++ === failAt ? Effect.fail(new StoreUnavailable({ backend: "test", message: "crash" })) : direct.put(ns, key, value)),
            delete: (ns, key) => (writes++ === failAt ? Effect.fail(new StoreUnavailable({ backend: "test", message: "crash" })) : direct.delete(ns, key))
          }
          const outcome = yield* failure(set.add(failing, [{ member: "m0", score: 100 }, { member: "new", score: -1 }]))
          const after = contents(yield* reload(store, namespace))
          const expectedAfter = [{ member: "new", score: -1 }, ...before.filter((entry) => entry.member !== "m0"), { member: "m0", score: 100 }]
          if (outcome === "success") expect(after).toEqual(expectedAfter)
          else expect([JSON.stringify(before), JSON.stringify(expectedAfter)]).toContain(JSON.stringify(after))
          expect(outcome).toBe(failAt < 8 ? "StoreUnavailable()" : "success")
          // The same engine carries on (its memory was rolled back): the next write, even of a
          // member that already has a delta, retries the rewrite, and a reload agrees with it.
          yield* set.add(direct, [{ member: "m11", score: 11.5 }])
          expect(contents(yield* reload(store, namespace))).toEqual(contents(set))
        }
      }),
      { deltaRecordsMax: 6 }
    ))

  it("survives a restart of LevelDB: snapshot, deltas and long members", async () => {
    const directory = tempDir("zset-level")
    const namespace = "restart"
    const first = ManagedRuntime.make(LevelStore.layer({ directory }))
    const expected = await first.runPromise(withConfig(
      Effect.gen(function*() {
        const store = yield* KeyValueStore
        const set = yield* reload(store, namespace)
        yield* churn(store, set, 7, 30, 200, 3_000)
        const view = yield* StoreView.staged(store, PARTITION)
        yield* set.add(view, [{ member: "L".repeat(70_000 / 2), score: Infinity }, { member: "日本".repeat(200), score: -Infinity }])
        yield* store.batch(PARTITION, view.ops())
        return contents(set)
      }),
      { deltaRecordsMax: 1_000 }
    ))
    await first.dispose()
    const second = ManagedRuntime.make(LevelStore.layer({ directory }))
    const reloaded = await second.runPromise(Effect.gen(function*() {
      return yield* reload(yield* KeyValueStore, namespace)
    }))
    await second.dispose()
    reloaded.state.check()
    expect(contents(reloaded)).toEqual(expected)
    expect(expected.length).toBeGreaterThan(1_000)
  }, 60_000)

  itMemory("refuses a corrupt record with SortedSetCorrupt naming the key", () =>
    Effect.gen(function*() {
      const store = yield* KeyValueStore
      const set = yield* reload(store, "corrupt")
      yield* set.add(StoreView.direct(store, PARTITION), [{ member: "a", score: 1 }])
      // A delta of generation 0 (the one before any snapshot) whose kind byte is unknown.
      yield* store.put(PARTITION, "corrupt", new Uint8Array([1, 0, 0, 0, 0, 1, 0x62]), new Uint8Array([9, 9]))
      const exit = yield* Effect.exit(reload(store, "corrupt"))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
      expect(error?._tag === "Some" ? error.value : undefined).toMatchObject({ _tag: "SortedSetCorrupt", namespace: "corrupt", key: "01000000000162" })
    }))
})

describe("single writer", () => {
  itMemory("dies on overlapping writes, the caller's contract broken", () =>
    Effect.gen(function*() {
      const store = yield* KeyValueStore
      const direct = StoreView.direct(store, PARTITION)
      const set = yield* reload(store, "overlap")
      const slow: StoreView.StoreView = { ...direct, put: (ns, key, value) => Effect.andThen(Effect.sleep("10 millis"), direct.put(ns, key, value)) }
      const exit = yield* Effect.exit(Effect.all([set.add(slow, [{ member: "a", score: 1 }]), set.add(slow, [{ member: "b", score: 1 }])], { concurrency: 2 }))
      expect(Exit.isFailure(exit) && Cause.hasDies(exit.cause)).toBe(true)
    }))
})

describe("messages", () => {
  it("carry ±inf scores through JSON and refuse NaN", () => {
    const codec = Schema.toCodecJson(Messages.Score)
    expect(Schema.encodeSync(codec)(Infinity)).toBe("+inf")
    expect(Schema.encodeSync(codec)(-Infinity)).toBe("-inf")
    expect(Schema.encodeSync(codec)(1.5)).toBe(1.5)
    expect(Schema.decodeUnknownSync(codec)("-inf")).toBe(-Infinity)
    expect(Schema.decodeUnknownSync(codec)("inf")).toBe(Infinity)
    expect(() => Schema.encodeSync(codec)(Number.NaN)).toThrow()
    expect(() => Schema.decodeUnknownSync(codec)("NaN")).toThrow()
  })

  itMemory("run through `handle` and encode to the HTTP answers' JSON", () =>
    Effect.gen(function*() {
      const store = yield* KeyValueStore
      const view = StoreView.direct(store, PARTITION)
      const set = yield* reload(store, "messages")
      const decode = Schema.decodeUnknownSync(Schema.toCodecJson(Messages.Request))
      const run = function*(json: unknown) {
        const request = decode(json)
        const reply = yield* Messages.handle(set, view, request)
        return Schema.encodeSync(Schema.toCodecJson(Messages.Replies[request._tag] as Schema.Codec<unknown, unknown>))(reply)
      }
      expect(yield* run({ _tag: "Add", members: [{ member: "a", score: "+inf" }, { member: "b", score: 2 }], ch: true })).toEqual({ count: 2 })
      expect(yield* run({ _tag: "IncrBy", member: "b", by: 1 })).toEqual({ score: 3 })
      expect(yield* run({ _tag: "Score", member: "a" })).toEqual({ score: "+inf" })
      expect(yield* run({ _tag: "Score", member: "zz" })).toEqual({ score: null })
      expect(yield* run({ _tag: "Rank", member: "a", rev: true })).toEqual({ rank: 0 })
      expect(yield* run({ _tag: "Range", by: "score", min: "(2", max: "+inf" })).toEqual({ members: [{ member: "b", score: 3 }, { member: "a", score: "+inf" }] })
      expect(yield* run({ _tag: "Count", min: "-inf", max: 3 })).toEqual({ count: 1 })
      expect(yield* run({ _tag: "Card" })).toEqual({ card: 2 })
      expect(yield* run({ _tag: "Pop", side: "max" })).toEqual({ members: [{ member: "a", score: "+inf" }] })
      expect(yield* run({ _tag: "RemoveRange", by: "lex", min: "-", max: "+" })).toEqual({ count: 1 })
      expect(yield* run({ _tag: "Remove", members: ["b"] })).toEqual({ count: 0 })
      expect(yield* failure(Messages.handle(set, view, decode({ _tag: "Add", members: [{ member: "", score: 1 }] })))).toBe("InvalidArgument(member)")
    }))
})
