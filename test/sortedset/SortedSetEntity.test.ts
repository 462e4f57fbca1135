/**
 * Goal: sorted sets as entities — operations through the runtime, every acknowledged write
 * surviving a restart, bad input refused with the field named and nothing written, and the HTTP
 * routes answering as the contract says (scores "+inf"/"-inf", errors with fields).
 * Method: the `zset` entity on LevelDB in a temp directory, reopened; then a node over HTTP.
 */
import { Effect, Layer } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig } from "../../actors/RuntimeConfig.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as SortedSetEntity from "../../src/sortedset/SortedSetEntity.js"
import { call, startNode } from "../server/support.js"
import { tempDir } from "../support/tempDir.js"

const node = (directory: string) =>
  SortedSetEntity.layer.pipe(
    Layer.provideMerge(EntityRuntime.layerLocal),
    Layer.provideMerge(LevelStore.layer({ directory })),
    Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 16 }))
  )

const run = <A, E>(layer: Layer.Layer<any, any>, effect: Effect.Effect<A, E, any>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, layer)) as Effect.Effect<A, E>)

describe("SortedSet entity", () => {
  it("answers as Redis through the runtime and keeps every acknowledged write across a restart", async () => {
    const directory = tempDir("zset-entity")
    await run(node(directory), Effect.gen(function*() {
      const sets = yield* SortedSetEntity.client
      const ask = sets.ask as (id: string, tag: string, payload?: unknown) => Effect.Effect<any, any>
      assert.deepEqual(yield* ask("board", "Add", { members: [{ member: "ada", score: 3 }, { member: "bob", score: 1 }, { member: "cy", score: Infinity }] }), { count: 3 })
      assert.deepEqual(yield* ask("board", "Add", { members: [{ member: "ada", score: 5 }], gt: true, ch: true }), { count: 1 })
      assert.deepEqual(yield* ask("board", "IncrBy", { member: "bob", by: 10 }), { score: 11 })
      assert.deepEqual(yield* ask("board", "Rank", { member: "cy", rev: true }), { rank: 0 })
      assert.deepEqual(yield* ask("board", "Range", { by: "score", min: "(5", max: "+inf" }), { members: [{ member: "bob", score: 11 }, { member: "cy", score: Infinity }] })
      assert.deepEqual(yield* ask("board", "Pop", { side: "min" }), { members: [{ member: "ada", score: 5 }] })
      yield* Effect.forEach(Array.from({ length: 500 }, (_, i) => i), (i) => ask(`many-${i % 10}`, "Add", { members: [{ member: `m${i}`, score: i }] }), { concurrency: 100, discard: true })
      const refused = yield* Effect.flip(ask("board", "Add", { members: [{ member: "", score: 1 }] }))
      assert.equal(refused._tag, "InvalidArgument")
      assert.equal(refused.field, "member")
      const nan = yield* Effect.flip(ask("board", "IncrBy", { member: "cy", by: -Infinity }))
      assert.equal(nan._tag, "InvalidArgument", "+inf plus -inf is NaN: refused, as Redis does")
    }))
    await run(node(directory), Effect.gen(function*() {
      const sets = yield* SortedSetEntity.client
      const ask = sets.ask as (id: string, tag: string, payload?: unknown) => Effect.Effect<any, any>
      assert.deepEqual(yield* ask("board", "Range", { by: "rank", min: 0, max: -1 }), { members: [{ member: "bob", score: 11 }, { member: "cy", score: Infinity }] })
      for (let k = 0; k < 10; k++) assert.deepEqual(yield* ask(`many-${k}`, "Card"), { card: 50 })
      assert.deepEqual(yield* ask("board", "Score", { member: "cy" }), { score: Infinity })
    }))
  })

  it("serves the sorted set routes of the HTTP contract", async () => {
    const server = await startNode()
    try {
      // Sent as text: JSON.stringify would turn 1e999 (read back as Infinity) into null.
      const add = await call(server.base, "POST", "/v1/zsets/top/add", '{"members":[{"member":"a","score":2},{"member":"b","score":"-inf"},{"member":"c","score":1e999}]}')
      assert.deepEqual(add.body, { count: 3 })
      assert.deepEqual((await call(server.base, "GET", "/v1/zsets/top/range?by=score&min=-inf&max=%2Binf")).body.members, [
        { member: "b", score: "-inf" }, { member: "a", score: 2 }, { member: "c", score: "+inf" }
      ])
      assert.deepEqual((await call(server.base, "GET", "/v1/zsets/top/range?min=0&max=0&rev=true")).body.members, [{ member: "c", score: "+inf" }])
      assert.deepEqual((await call(server.base, "GET", "/v1/zsets/top/range?by=lex&min=-&max=%2B&offset=1&limit=1")).body.members.length, 1)
      assert.deepEqual((await call(server.base, "POST", "/v1/zsets/top/incr", { member: "a", by: 0.5 })).body, { score: 2.5 })
      assert.deepEqual((await call(server.base, "GET", "/v1/zsets/top/score/a")).body, { score: 2.5 })
      assert.deepEqual((await call(server.base, "GET", "/v1/zsets/top/score/zz")).body, { score: null })
      assert.deepEqual((await call(server.base, "GET", "/v1/zsets/top/rank/a?rev=true")).body, { rank: 1 })
      assert.deepEqual((await call(server.base, "GET", "/v1/zsets/top/count?min=(2&max=%2Binf")).body, { count: 2 })
      // The contract's "+" written unencoded, as a query string reads it: a space.
      assert.deepEqual((await call(server.base, "GET", "/v1/zsets/top/count?min=(2&max=+inf")).body, { count: 2 })
      assert.equal((await call(server.base, "GET", "/v1/zsets/top/range?by=lex&min=-&max=+")).body.members.length, 3)
      // Bounds left out: the whole set.
      for (const by of ["rank", "score", "lex"]) {
        assert.equal((await call(server.base, "GET", `/v1/zsets/top/range?by=${by}`)).body.members.length, 3, by)
      }
      assert.deepEqual((await call(server.base, "GET", "/v1/zsets/top/count")).body, { count: 3 })
      assert.deepEqual((await call(server.base, "POST", "/v1/zsets/top/remove", { members: ["b", "nope"] })).body, { count: 1 })
      assert.deepEqual((await call(server.base, "POST", "/v1/zsets/top/pop", { side: "max", count: 1 })).body, { members: [{ member: "c", score: "+inf" }] })
      assert.deepEqual((await call(server.base, "GET", "/v1/zsets/top")).body, { card: 1 })
      const flags = await call(server.base, "POST", "/v1/zsets/top/add", { members: [{ member: "a", score: 1 }], nx: true, xx: true })
      assert.equal(flags.status, 400)
      const bound = await call(server.base, "GET", "/v1/zsets/top/range?by=score&min=(x&max=1")
      assert.equal(bound.status, 400)
      assert.equal(bound.body.error.field, "min")
      assert.deepEqual((await call(server.base, "GET", "/v1/zsets/top")).body, { card: 1 }, "the refused calls wrote nothing")
    } finally {
      await server.close()
    }
  })
})
