/**
 * The shared conformance suite of the storage layer: one contract for every backend, ours and
 * users'. Cases are data (`keyValueCases`, `indexedCases`) so that a test can run them against a
 * deliberately broken backend and show that they fail; `suite(name, makeLayer)` registers them
 * with vitest, once as given and once again under a key prefix (so prefix bugs show up in every
 * backend). Each case works in partitions of its own, so backends shared between runs are fine.
 */
import { strict as assert } from "node:assert"
import { Cause, Effect, Exit, Layer, ManagedRuntime, Result, Stream } from "effect"
import { describe, it } from "vitest"
import { IndexedStore, layerStores } from "../../persistence/IndexedStore.js"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as PrefixedStore from "../../persistence/PrefixedStore.js"
import { StoreBackend } from "../../persistence/StoreBackend.js"
import { StoreConfig } from "../../persistence/StoreConfig.js"

/** What the cases need: both store services and the backend below them. */
export type Stores = KeyValueStore | IndexedStore | StoreBackend

/** One conformance case: a goal and an Effect that fails (or dies) when the backend breaks it. */
export interface Case {
  readonly name: string
  readonly run: Effect.Effect<void, unknown, Stores>
}

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : Buffer.from(bytes).toString("utf8"))
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")
const bytes = (...values: Array<number>) => new Uint8Array(values)

/** A partition no other case (or run) uses. */
export const freshPartition = (): string => `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`

/** The failure of an effect, as a tagged value, or fails the case when it succeeded. */
const failureOf = <A, E>(effect: Effect.Effect<A, E, Stores>) =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return Effect.die(new Error("expected a failure, got success"))
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "None") return Effect.die(new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`))
    return Effect.succeed(error.value as E & { readonly _tag: string; readonly field?: string })
  })

const expectInvalid = <A, E>(effect: Effect.Effect<A, E, Stores>, field: string) =>
  Effect.map(failureOf(effect), (error) => {
    assert.equal(error._tag, "InvalidArgument", `expected InvalidArgument for ${field}`)
    assert.equal(error.field, field)
  })

/** Keys whose byte order differs from naive string or number order. */
const orderingKeys = [
  bytes(), bytes(0x00), bytes(0x00, 0x00), bytes(0x00, 0xff), bytes(0x01), bytes(0x7f), bytes(0x80), bytes(0xc3, 0xa9),
  bytes(0xff), bytes(0xff, 0x00), bytes(0xff, 0xff), bytes(0x61), bytes(0x61, 0x00), bytes(0x61, 0x61), bytes(0x62)
]

/** The key-value store cases. */
export const keyValueCases: ReadonlyArray<Case> = [
  {
    name: "put, get, getMany and delete round-trip values; a missing key is undefined",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      assert.equal(yield* store.get(p, "ns", "k"), undefined)
      yield* store.put(p, "ns", "k", "v1")
      assert.equal(text(yield* store.get(p, "ns", "k")), "v1")
      yield* store.put(p, "ns", "k", "v2")
      assert.equal(text(yield* store.get(p, "ns", "k")), "v2")
      yield* store.put(p, "ns", "other", "x")
      const many = yield* store.getMany(p, "ns", ["other", "missing", "k"])
      assert.deepEqual(many.map(text), ["x", undefined, "v2"])
      yield* store.delete(p, "ns", "k")
      assert.equal(yield* store.get(p, "ns", "k"), undefined)
      yield* store.delete(p, "ns", "never-there")
    })
  },
  {
    name: "namespaces and partitions are isolated from each other",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p1 = freshPartition()
      const p2 = freshPartition()
      yield* store.put(p1, "a", "k", "p1-a")
      yield* store.put(p1, "ab", "k", "p1-ab")
      yield* store.put(p2, "a", "k", "p2-a")
      assert.equal(text(yield* store.get(p1, "a", "k")), "p1-a")
      assert.equal(text(yield* store.get(p1, "ab", "k")), "p1-ab")
      assert.equal(text(yield* store.get(p2, "a", "k")), "p2-a")
      const scanned = yield* store.scan(p1, "a")
      assert.deepEqual(scanned.map((entry) => text(entry.value)), ["p1-a"])
    })
  },
  {
    name: "scans return binary keys in bytewise order, forward and reverse",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      yield* store.batch(p, orderingKeys.map((key) => ({ op: "put" as const, namespace: "ns", key, value: hex(key) })))
      const expected = [...orderingKeys].map(hex).sort()
      const forward = yield* store.scan(p, "ns")
      assert.deepEqual(forward.map((entry) => hex(entry.key)), expected)
      assert.deepEqual(forward.map((entry) => text(entry.value)), expected)
      const backward = yield* store.scan(p, "ns", { reverse: true })
      assert.deepEqual(backward.map((entry) => hex(entry.key)), [...expected].reverse())
      const limited = yield* store.scan(p, "ns", { reverse: true, limit: 3 })
      assert.deepEqual(limited.map((entry) => hex(entry.key)), [...expected].reverse().slice(0, 3))
    })
  },
  {
    name: "range bounds gte, gt, lte, lt and prefix select exactly their keys in both directions",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      const keys = ["a", "aa", "ab", "b", "ba", "c", "c\u00ff", "d"]
      yield* store.batch(p, keys.map((key) => ({ op: "put" as const, namespace: "ns", key, value: key })))
      const read = (options: Parameters<typeof store.scan>[2]) =>
        Effect.map(store.scan(p, "ns", options), (entries) => entries.map((entry) => text(entry.key)))
      assert.deepEqual(yield* read({ gte: "aa", lt: "b" }), ["aa", "ab"])
      assert.deepEqual(yield* read({ gt: "aa", lte: "b" }), ["ab", "b"])
      assert.deepEqual(yield* read({ gt: "aa", lte: "b", reverse: true }), ["b", "ab"])
      assert.deepEqual(yield* read({ gte: "c" }), ["c", "c\u00ff", "d"])
      assert.deepEqual(yield* read({ lt: "aa" }), ["a"])
      assert.deepEqual(yield* read({ lte: "aa", reverse: true }), ["aa", "a"])
      assert.deepEqual(yield* read({ prefix: "a" }), ["a", "aa", "ab"])
      assert.deepEqual(yield* read({ prefix: "b", reverse: true }), ["ba", "b"])
      assert.deepEqual(yield* read({ prefix: "c" }), ["c", "c\u00ff"])
      assert.deepEqual(yield* read({ prefix: "x" }), [])
      assert.deepEqual(yield* read({ gte: "b", lt: "b" }), [])
      assert.deepEqual(yield* read({ gt: "d" }), [])
    })
  },
  {
    name: "a prefix of 0xff bytes scans to the end of the namespace",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      const keys = [bytes(0xfe), bytes(0xff), bytes(0xff, 0x01), bytes(0xff, 0xff), bytes(0xff, 0xff, 0x00)]
      yield* store.batch(p, keys.map((key) => ({ op: "put" as const, namespace: "ns", key, value: "v" })))
      const all = yield* store.scan(p, "ns", { prefix: bytes(0xff, 0xff) })
      assert.deepEqual(all.map((entry) => hex(entry.key)), ["ffff", "ffff00"])
    })
  },
  {
    name: "streams read a range larger than one chunk, in order, and honour a total limit",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      const keys = Array.from({ length: 2_500 }, (_, i) => `k${String(i).padStart(5, "0")}`)
      for (let i = 0; i < keys.length; i += 1_000) {
        yield* store.batch(p, keys.slice(i, i + 1_000).map((key) => ({ op: "put" as const, namespace: "ns", key, value: key })))
      }
      const all = yield* Stream.runCollect(store.stream(p, "ns"))
      assert.deepEqual(all.map((entry) => text(entry.key)), keys)
      const reversed = yield* Stream.runCollect(store.stream(p, "ns", { reverse: true, gte: "k01000" }))
      assert.deepEqual(reversed.map((entry) => text(entry.key)), keys.slice(1_000).reverse())
      const limited = yield* Stream.runCollect(store.stream(p, "ns", { limit: 1_234 }))
      assert.equal(limited.length, 1_234)
    })
  },
  {
    name: "empty and large values are stored exactly",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      yield* store.put(p, "ns", "empty", new Uint8Array(0))
      const empty = yield* store.get(p, "ns", "empty")
      assert.ok(empty !== undefined, "an empty value is a value, not a missing key")
      assert.equal(empty.length, 0)
      const large = new Uint8Array(4 * 1024 * 1024)
      for (let i = 0; i < large.length; i += 4096) large[i] = (i / 4096) & 0xff
      large[large.length - 1] = 0x7e
      yield* store.put(p, "ns", "large", large)
      const read = yield* store.get(p, "ns", "large")
      assert.ok(read !== undefined && Buffer.compare(Buffer.from(read), Buffer.from(large)) === 0)
      const longKey = new Uint8Array(1024).fill(0x6b)
      yield* store.put(p, "ns", longKey, "v")
      assert.equal(text(yield* store.get(p, "ns", longKey)), "v")
    })
  },
  {
    name: "a batch is atomic: an invalid op anywhere leaves nothing of it applied",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const indexed = yield* IndexedStore
      const { keyBytesMax } = yield* StoreConfig
      const p = freshPartition()
      yield* store.put(p, "ns", "kept", "before")
      yield* expectInvalid(
        store.batch(p, [
          { op: "put", namespace: "ns", key: "a", value: "1" },
          { op: "delete", namespace: "ns", key: "kept" },
          { op: "append", topic: "t", values: ["x"] },
          { op: "put", namespace: "ns", key: new Uint8Array(keyBytesMax + 1), value: "too long a key" }
        ]),
        "key"
      )
      assert.equal(yield* store.get(p, "ns", "a"), undefined)
      assert.equal(text(yield* store.get(p, "ns", "kept")), "before")
      assert.equal(yield* indexed.position(p, "t"), 0)
    })
  },
  {
    name: "within one batch the last op on a key wins",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      yield* store.batch(p, [
        { op: "put", namespace: "ns", key: "a", value: "1" },
        { op: "delete", namespace: "ns", key: "a" },
        { op: "delete", namespace: "ns", key: "b" },
        { op: "put", namespace: "ns", key: "b", value: "2" },
        { op: "put", namespace: "ns", key: "c", value: "3" },
        { op: "put", namespace: "ns", key: "c", value: "4" }
      ])
      assert.deepEqual((yield* store.getMany(p, "ns", ["a", "b", "c"])).map(text), [undefined, "2", "4"])
    })
  },
  {
    name: "deleteRange removes exactly its range, across chunks",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      const keys = Array.from({ length: 2_100 }, (_, i) => `k${String(i).padStart(5, "0")}`)
      for (let i = 0; i < keys.length; i += 1_000) {
        yield* store.batch(p, keys.slice(i, i + 1_000).map((key) => ({ op: "put" as const, namespace: "ns", key, value: "v" })))
      }
      const deleted = yield* store.deleteRange(p, "ns", { gte: "k00005", lt: "k02095" })
      assert.equal(deleted, 2_090)
      const left = yield* store.scan(p, "ns")
      assert.deepEqual(left.map((entry) => text(entry.key)), [...keys.slice(0, 5), ...keys.slice(2_095)])
    })
  },
  {
    name: "versions: latest at or before a time, listing, and deleting older versions",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      yield* store.putVersion(p, "ns", "k", "v10", 10)
      yield* store.putVersion(p, "ns", "k", "v30", 30)
      yield* store.putVersion(p, "ns", "k", "v20", 20)
      yield* store.putVersion(p, "ns", "k2", "other", 25)
      yield* store.putVersion(p, "ns2", "k", "other-namespace", 40)
      const latest = yield* store.getLatest(p, "ns", "k")
      assert.deepEqual(latest && { value: text(latest.value), timestamp: latest.timestamp }, { value: "v30", timestamp: 30 })
      const at25 = yield* store.getLatest(p, "ns", "k", 25)
      assert.equal(at25 && text(at25.value), "v20")
      const at20 = yield* store.getLatest(p, "ns", "k", 20)
      assert.equal(at20 && text(at20.value), "v20")
      assert.equal(yield* store.getLatest(p, "ns", "k", 9), undefined)
      assert.deepEqual(yield* store.versions(p, "ns", "k"), [10, 20, 30])
      assert.equal(yield* store.deleteVersionsBefore(p, "ns", "k", 30), 2)
      assert.deepEqual(yield* store.versions(p, "ns", "k"), [30])
      assert.deepEqual(yield* store.versions(p, "ns", "k2"), [25])
      assert.equal(yield* store.get(p, "ns", "k"), undefined, "versions do not leak into plain keys")
    })
  },
  {
    name: "fencing: a lower epoch is rejected with nothing applied, equal and higher epochs are accepted",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      assert.equal(yield* store.epoch(p), 0)
      assert.equal(yield* store.registerEpoch(p, 5), 5)
      assert.equal(yield* store.registerEpoch(p, 3), 5, "registering a lower epoch keeps the higher one")
      const fenced = yield* failureOf(store.batch(p, [{ op: "put", namespace: "ns", key: "a", value: "stale" }], { epoch: 4 }))
      assert.equal(fenced._tag, "Fenced")
      assert.equal((fenced as unknown as { currentEpoch: number }).currentEpoch, 5)
      assert.equal(yield* store.get(p, "ns", "a"), undefined)
      yield* store.put(p, "ns", "a", "at-5", { epoch: 5 })
      assert.equal(text(yield* store.get(p, "ns", "a")), "at-5")
      yield* store.put(p, "ns", "a", "at-7", { epoch: 7 })
      assert.equal(yield* store.epoch(p), 7, "a higher fenced write raises the registered epoch")
      const late = yield* failureOf(store.put(p, "ns", "a", "late-5", { epoch: 5 }))
      assert.equal(late._tag, "Fenced")
      assert.equal(text(yield* store.get(p, "ns", "a")), "at-7")
      const other = freshPartition()
      yield* store.put(other, "ns", "a", "independent", { epoch: 1 })
      assert.equal(text(yield* store.get(other, "ns", "a")), "independent", "epochs are per partition")
    })
  },
  {
    name: "fencing: of two concurrent writers only the newer owner's writes land",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      yield* store.registerEpoch(p, 1)
      const writer = (epoch: number, count: number) =>
        Effect.forEach(
          Array.from({ length: count }, (_, i) => i),
          (i) => Effect.result(store.put(p, "ns", `w${epoch}-${i}`, "x", { epoch })),
          { concurrency: 8 }
        )
      const [old, fresh] = yield* Effect.all([
        writer(1, 100),
        Effect.flatMap(store.registerEpoch(p, 2), () => writer(2, 100))
      ], { concurrency: 2 })
      assert.ok(fresh.every(Result.isSuccess), "every write of the newer owner commits")
      const oldAccepted = old.filter(Result.isSuccess).length
      const stored = yield* store.scan(p, "ns", { prefix: "w1-" })
      assert.equal(stored.length, oldAccepted, "an old write is stored if and only if it was acknowledged")
      const afterFence = yield* Effect.result(store.put(p, "ns", "w1-late", "x", { epoch: 1 }))
      assert.ok(Result.isFailure(afterFence) && afterFence.failure._tag === "Fenced")
    })
  },
  {
    name: "commit applies many partitions' batches at once, each atomic and fenced on its own",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const [p1, p2, p3] = [freshPartition(), freshPartition(), freshPartition()]
      yield* store.registerEpoch(p2, 9)
      const results = yield* store.commit([
        { partition: p1, ops: [{ op: "put", namespace: "ns", key: "k", value: "1" }], epoch: 1 },
        { partition: p2, ops: [{ op: "put", namespace: "ns", key: "k", value: "2" }], epoch: 8 },
        { partition: p3, ops: [{ op: "put", namespace: "", key: "k", value: "3" }] },
        { partition: p3, ops: [{ op: "append", topic: "t", values: ["a", "b"] }] }
      ])
      assert.deepEqual(results.map((result) => (Result.isSuccess(result) ? "ok" : result.failure._tag)), [
        "ok", "Fenced", "InvalidArgument", "ok"
      ])
      assert.equal(text(yield* store.get(p1, "ns", "k")), "1")
      assert.equal(yield* store.get(p2, "ns", "k"), undefined)
      const last = results[3]!
      assert.ok(Result.isSuccess(last))
      assert.deepEqual(last.success.firstIndexes, [1])
    })
  },
  {
    name: "bad input is a typed InvalidArgument naming the field, and nothing is written",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const p = freshPartition()
      yield* expectInvalid(store.put(p, "", "k", "v"), "namespace")
      yield* expectInvalid(store.put(p, "\u0000t", "k", "v"), "namespace")
      yield* expectInvalid(store.get(p, "", "k"), "namespace")
      const { keyBytesMax } = yield* StoreConfig
      const longest = freshPartition()
      yield* store.put(longest, "ns", new Uint8Array(keyBytesMax).fill(7), "longest")
      assert.equal(text(yield* store.get(longest, "ns", new Uint8Array(keyBytesMax).fill(7))), "longest")
      yield* expectInvalid(store.put(p, "ns", new Uint8Array(keyBytesMax + 1), "v"), "key")
      yield* expectInvalid(store.put(p, "ns", "k", new Uint8Array(16 * 1024 * 1024 + 1)), "value")
      yield* expectInvalid(store.scan(p, "ns", { limit: 0 }), "limit")
      yield* expectInvalid(store.scan(p, "ns", { limit: 100_001 }), "limit")
      yield* expectInvalid(store.scan(p, "ns", { limit: 1.5 }), "limit")
      yield* expectInvalid(store.scan(p, "ns", { prefix: "a", gte: "a" }), "prefix")
      yield* expectInvalid(store.scan(p, "ns", { gte: "a", gt: "a" }), "gt")
      yield* expectInvalid(store.registerEpoch(p, -1), "epoch")
      yield* expectInvalid(store.registerEpoch(p, 1.5), "epoch")
      yield* expectInvalid(store.registerEpoch(p, Number.NaN), "epoch")
      yield* expectInvalid(store.put(p, "ns", "k", "v", { epoch: -2 }), "epoch")
      yield* expectInvalid(store.put("", "ns", "k", "v"), "partition")
      yield* expectInvalid(store.put("a{b}", "ns", "k", "v"), "partition")
      yield* expectInvalid(store.putVersion(p, "ns", "k", "v", -1), "timestamp")
      yield* expectInvalid(store.batch(p, []), "ops")
      assert.deepEqual(yield* store.scan(p, "ns"), [])
      assert.equal(yield* store.epoch(p), 0)
    })
  },
  {
    name: "export streams every record of the store",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const backend = yield* StoreBackend
      const [p1, p2] = [freshPartition(), freshPartition()]
      yield* store.put(p1, "ns", "a", "1")
      yield* store.put(p1, "other", "b", "2")
      yield* store.put(p2, "ns", bytes(0xff, 0x00), "3")
      const records = yield* Stream.runCollect(
        Stream.filter(backend.export, (record) => record.partition === p1 || record.partition === p2)
      )
      const seen = records.map((record) => `${record.partition === p1 ? "p1" : "p2"}/${record.namespace}/${hex(record.key)}=${text(record.value)}`).sort()
      assert.deepEqual(seen, ["p1/ns/61=1", "p1/other/62=2", "p2/ns/ff00=3"])
    })
  }
]

/** The indexed store cases. */
export const indexedCases: ReadonlyArray<Case> = [
  {
    name: "appends get consecutive indexes from 1, and position follows them",
    run: Effect.gen(function*() {
      const indexed = yield* IndexedStore
      const p = freshPartition()
      assert.equal(yield* indexed.position(p, "t"), 0)
      assert.equal(yield* indexed.append(p, "t", ["a", "b"]), 1)
      assert.equal(yield* indexed.append(p, "t", ["c"]), 3)
      assert.equal(yield* indexed.position(p, "t"), 3)
      const all = yield* indexed.scan(p, "t")
      assert.deepEqual(all.map((item) => [item.index, text(item.value)]), [[1, "a"], [2, "b"], [3, "c"]])
    })
  },
  {
    name: "topic scans honour from, to, reverse and limit; topics with shared prefixes stay apart",
    run: Effect.gen(function*() {
      const indexed = yield* IndexedStore
      const p = freshPartition()
      yield* indexed.append(p, "t", Array.from({ length: 10 }, (_, i) => `v${i + 1}`))
      yield* indexed.append(p, "tt", ["other"])
      const indexes = (options: Parameters<typeof indexed.scan>[2]) =>
        Effect.map(indexed.scan(p, "t", options), (items) => items.map((item) => item.index))
      assert.deepEqual(yield* indexes({ from: 3, to: 5 }), [3, 4, 5])
      assert.deepEqual(yield* indexes({ from: 3, to: 5, reverse: true }), [5, 4, 3])
      assert.deepEqual(yield* indexes({ from: 8 }), [8, 9, 10])
      assert.deepEqual(yield* indexes({ reverse: true, limit: 2 }), [10, 9])
      assert.deepEqual(yield* indexes({ from: 11 }), [])
      assert.deepEqual((yield* indexed.scan(p, "tt")).map((item) => text(item.value)), ["other"])
    })
  },
  {
    name: "truncateBefore drops old values but never reuses their indexes",
    run: Effect.gen(function*() {
      const indexed = yield* IndexedStore
      const p = freshPartition()
      yield* indexed.append(p, "t", ["1", "2", "3", "4"])
      assert.equal(yield* indexed.truncateBefore(p, "t", 3), 2)
      assert.deepEqual((yield* indexed.scan(p, "t")).map((item) => item.index), [3, 4])
      assert.equal(yield* indexed.position(p, "t"), 4)
      assert.equal(yield* indexed.append(p, "t", ["5"]), 5)
    })
  },
  {
    name: "deleteTopic removes values and position, so the topic starts again at 1",
    run: Effect.gen(function*() {
      const indexed = yield* IndexedStore
      const p = freshPartition()
      yield* indexed.append(p, "t", ["1", "2"])
      yield* indexed.append(p, "t2", ["kept"])
      assert.equal(yield* indexed.deleteTopic(p, "t"), 2)
      assert.equal(yield* indexed.position(p, "t"), 0)
      assert.deepEqual(yield* indexed.scan(p, "t"), [])
      assert.equal(yield* indexed.append(p, "t", ["again"]), 1)
      assert.equal(yield* indexed.position(p, "t2"), 1)
    })
  },
  {
    name: "a batch may hold puts and appends; a fenced one applies none of them",
    run: Effect.gen(function*() {
      const store = yield* KeyValueStore
      const indexed = yield* IndexedStore
      const p = freshPartition()
      const committed = yield* store.batch(p, [
        { op: "append", topic: "events", values: ["e1", "e2"] },
        { op: "put", namespace: "state", key: "s", value: "after-e2" },
        { op: "append", topic: "events", values: ["e3"] }
      ], { epoch: 2 })
      assert.deepEqual(committed.firstIndexes, [1, 3])
      const fenced = yield* Effect.result(store.batch(p, [
        { op: "append", topic: "events", values: ["stale"] },
        { op: "put", namespace: "state", key: "s", value: "stale" }
      ], { epoch: 1 }))
      assert.ok(Result.isFailure(fenced) && fenced.failure._tag === "Fenced")
      assert.equal(yield* indexed.position(p, "events"), 3)
      assert.equal(text(yield* store.get(p, "state", "s")), "after-e2")
      const fencedAppend = yield* Effect.result(indexed.append(p, "events", ["stale"], { epoch: 1 }))
      assert.ok(Result.isFailure(fencedAppend) && fencedAppend.failure._tag === "Fenced")
    })
  },
  {
    name: "concurrent appends get distinct consecutive indexes",
    run: Effect.gen(function*() {
      const indexed = yield* IndexedStore
      const p = freshPartition()
      const firsts = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => indexed.append(p, "t", [`v${i}`, `w${i}`]),
        { concurrency: 20 }
      )
      assert.deepEqual([...firsts].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => 2 * i + 1))
      const all = yield* Stream.runCollect(indexed.stream(p, "t"))
      assert.equal(all.length, 200)
      for (const first of firsts) {
        const pair = all.filter((item) => item.index === first || item.index === first + 1).map((item) => text(item.value)!)
        assert.equal(pair[0]!.slice(1), pair[1]!.slice(1), "one append's values are adjacent")
      }
    })
  },
  {
    name: "topic streams cross chunk boundaries in both directions",
    run: Effect.gen(function*() {
      const indexed = yield* IndexedStore
      const p = freshPartition()
      yield* indexed.append(p, "t", Array.from({ length: 2_300 }, (_, i) => String(i + 1)))
      const forward = yield* Stream.runCollect(indexed.stream(p, "t", { from: 2 }))
      assert.deepEqual(forward.map((item) => item.index), Array.from({ length: 2_299 }, (_, i) => i + 2))
      const backward = yield* Stream.runCollect(indexed.stream(p, "t", { reverse: true, to: 2_000 }))
      assert.deepEqual(backward.map((item) => Number(text(item.value))), Array.from({ length: 2_000 }, (_, i) => 2_000 - i))
    })
  },
  {
    name: "bad topic input is a typed InvalidArgument naming the field",
    run: Effect.gen(function*() {
      const indexed = yield* IndexedStore
      const p = freshPartition()
      yield* expectInvalid(indexed.append(p, "", ["x"]), "topic")
      yield* expectInvalid(indexed.append(p, "t", []), "values")
      yield* expectInvalid(indexed.position(p, ""), "topic")
      yield* expectInvalid(indexed.scan(p, "t", { limit: 0 }), "limit")
      yield* expectInvalid(indexed.scan(p, "t", { from: -1 }), "from")
      yield* expectInvalid(indexed.truncateBefore(p, "t", -1), "index")
      yield* expectInvalid(indexed.append(p, "t", ["x"], { epoch: 0.5 }), "epoch")
      assert.equal(yield* indexed.position(p, "t"), 0)
    })
  }
]

/** The stores of `makeLayer`, re-layered under a key prefix over the same backend. */
export const prefixed = <E>(makeLayer: () => Layer.Layer<Stores, E>, prefix = "conformance-prefix") => () =>
  layerStores(PrefixedStore.layer(prefix).pipe(Layer.provide(makeLayer())))

/** Runs every case against a fresh instance of the layer; returns the names of the failed cases. */
export const runCases = async <E>(
  cases: ReadonlyArray<Case>,
  makeLayer: () => Layer.Layer<Stores, E>
): Promise<ReadonlyArray<string>> => {
  const runtime = ManagedRuntime.make(makeLayer())
  const failed: Array<string> = []
  try {
    for (const testCase of cases) {
      const exit = await runtime.runPromiseExit(testCase.run)
      if (Exit.isFailure(exit)) failed.push(testCase.name)
    }
  } finally {
    await runtime.dispose()
  }
  return failed
}

/** Checks that a store is refused with `StoreClosed` once its layer's scope has closed. */
const closedCase = <E>(makeLayer: () => Layer.Layer<Stores, E>) => async () => {
  const runtime = ManagedRuntime.make(makeLayer())
  const [store, indexed] = await runtime.runPromise(Effect.all([KeyValueStore, IndexedStore]))
  await runtime.dispose()
  const outcomes: ReadonlyArray<Exit.Exit<unknown, unknown>> = await Promise.all([
    Effect.runPromiseExit(store.get("p", "ns", "k")),
    Effect.runPromiseExit(store.put("p", "ns", "k", "v")),
    Effect.runPromiseExit(store.scan("p", "ns")),
    Effect.runPromiseExit(indexed.append("p", "t", ["v"]))
  ])
  for (const exit of outcomes) {
    assert.ok(Exit.isFailure(exit))
    const error = Cause.findErrorOption(exit.cause)
    assert.ok(error._tag === "Some" && (error.value as { _tag: string })._tag === "StoreClosed", Cause.pretty(exit.cause))
  }
}

/**
 * Registers the conformance suite for a backend: every case (of both services, unless `cases`
 * says otherwise), then every case again under a key prefix, then use-after-close. `makeLayer` is
 * called once per group, so it must give a fresh instance each time (a new temp directory for
 * LevelDB, for example).
 */
export const suite = <E>(name: string, makeLayer: () => Layer.Layer<Stores, E>, cases: ReadonlyArray<Case> = [...keyValueCases, ...indexedCases]): void => {
  const register = (label: string, layer: () => Layer.Layer<Stores, E | unknown>) =>
    describe(label, () => {
      let runtime: ManagedRuntime.ManagedRuntime<Stores, unknown> | undefined
      const shared = () => (runtime ??= ManagedRuntime.make(layer()))
      for (const testCase of cases) {
        it(testCase.name, async () => {
          const exit = await shared().runPromiseExit(testCase.run)
          if (Exit.isFailure(exit)) throw new Error(Cause.pretty(exit.cause))
        })
      }
      it("releases the store after the group", async () => {
        await runtime?.dispose()
        runtime = undefined
      })
    })
  describe(name, () => {
    register("as given", makeLayer)
    register("under a key prefix", prefixed(makeLayer))
    it("refuses use after close with StoreClosed", closedCase(makeLayer))
  })
}

/** The suite of the key-value service alone. */
export const keyValueSuite = <E>(name: string, makeLayer: () => Layer.Layer<Stores, E>): void => suite(name, makeLayer, keyValueCases)

/** The suite of the indexed service alone. */
export const indexedSuite = <E>(name: string, makeLayer: () => Layer.Layer<Stores, E>): void => suite(name, makeLayer, indexedCases)
