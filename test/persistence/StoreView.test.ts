/**
 * Goal: a staged view reads exactly what the store would hold if its staged writes were applied,
 * and its `ops()` applied as one batch produce that state.
 * Method: seeded random puts and deletes over a pre-filled memory store, checking gets and scans
 * (every bound kind, both directions, small limits) against a plain sorted model after each step.
 */
import { Effect } from "effect"
import { strict as assert } from "node:assert"
import { describe } from "vitest"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as StoreView from "../../persistence/StoreView.js"
import { itLayer } from "../support/itEffect.js"
import { random } from "../support/random.js"

const it = itLayer(MemoryStore.layer)

describe("StoreView.staged", () => {
  it("reads its own writes, scans included, and commits them as one batch", () =>
    Effect.gen(function*() {
      const seed = Date.now() % 1_000_000
      console.log(`StoreView seed ${seed}`)
      const next = random(seed)
      const store = yield* KeyValueStore
      const partition = "view"
      const keyOf = (n: number) => `k${String(n).padStart(3, "0")}`
      const model = new Map<string, string>()
      for (let i = 0; i < 60; i += 2) {
        model.set(keyOf(i), `stored${i}`)
        yield* store.put(partition, "ns", keyOf(i), `stored${i}`)
      }
      const view = yield* StoreView.staged(store, partition)
      const text = (bytes: Uint8Array) => Buffer.from(bytes).toString()
      for (let step = 0; step < 400; step++) {
        const key = keyOf(Math.floor(next() * 70))
        if (next() < 0.4) {
          yield* view.delete("ns", key)
          model.delete(key)
        } else {
          yield* view.put("ns", key, `v${step}`)
          model.set(key, `v${step}`)
        }
        const probe = keyOf(Math.floor(next() * 70))
        const got = yield* view.get("ns", probe)
        assert.equal(got === undefined ? undefined : text(got), model.get(probe), `get ${probe} at step ${step}`)
        const low = keyOf(Math.floor(next() * 70))
        const reverse = next() < 0.5
        const limit = 1 + Math.floor(next() * 12)
        const sorted = [...model.keys()].sort()
        const inRange = sorted.filter((k) => k >= low)
        const expected = (reverse ? inRange.reverse() : inRange).slice(0, limit)
        const scanned = yield* view.scan("ns", { gte: low, reverse, limit })
        assert.deepEqual(scanned.map((entry) => text(entry.key)), expected, `scan at step ${step}`)
      }
      yield* store.batch(partition, view.ops())
      view.clear()
      const all = yield* store.scan(partition, "ns")
      assert.deepEqual(all.map((entry) => [text(entry.key), text(entry.value)]), [...model.entries()].sort())
    }))

  it("refuses writes past its bound and checks input when staged", () =>
    Effect.gen(function*() {
      const store = yield* KeyValueStore
      const view = yield* StoreView.staged(store, "bounded", 3)
      yield* view.put("ns", "a", "1")
      yield* view.put("ns", "b", "2")
      yield* view.put("ns", "c", "3")
      yield* view.put("ns", "a", "again")
      const over = yield* Effect.flip(view.put("ns", "d", "4"))
      assert.equal(over._tag === "InvalidArgument" && over.field, "ops")
      const empty = yield* Effect.flip(view.put("", "x", "1"))
      assert.equal(empty._tag === "InvalidArgument" && empty.field, "namespace")
      assert.equal(view.size(), 3)
    }))
})

describe("prefix scans", () => {
  it("leave a Buffer prefix given by the caller unchanged", () =>
    Effect.gen(function*() {
      const store = yield* KeyValueStore
      yield* store.put("buffers", "ns", "d\u0000k", "v")
      const prefix = Buffer.from("d\u0000")
      const found = yield* store.scan("buffers", "ns", { prefix })
      assert.equal(found.length, 1)
      assert.equal(prefix.toString("hex"), "6400", "the prefix was not incremented in place")
    }))
})
