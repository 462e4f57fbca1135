/**
 * Goal: an entity never acts on state read under an earlier tenure of its shard. When a process
 * loses a shard (its lease ran out) and takes it again later at a higher epoch, another process
 * may have written the entity meanwhile: the entity still resident from the first tenure must
 * read its state again, and writes computed from the old state must not commit under the new
 * epoch.
 * Method: two runtimes over one memory store, as two workers sharing Redis. Runtime A owns the
 * shard at epoch 1 and counts to 5; it loses the shard (dropShard, as on a lost lease) while
 * the counter stays resident; runtime B takes the shard at epoch 2 and counts to 8, then hands
 * it off; A takes it again at epoch 3. A's next increment must answer 9 (the old code answered
 * 6 and overwrote B's writes).
 */
import { Context, Effect, Exit, Layer, Schema, Scope } from "effect"
import { Rpc } from "effect/rpc"
import { describe, expect, it } from "vitest"
import * as Entity from "../../actors/Entity.js"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig } from "../../actors/RuntimeConfig.js"
import { shardOf } from "../../actors/ShardId.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"

const Increment = Rpc.make("Increment", { success: Schema.Number })
const Tally = Entity.make("tenure-tally", [Increment])
const decode = (bytes: Uint8Array | undefined) => (bytes === undefined ? 0 : Number(Buffer.from(bytes).toString()))
const behavior = Entity.direct(Tally, {
  recover: ({ view }) => Effect.map(view.get("count", ""), (bytes) => ({ count: decode(bytes) })),
  handlers: {
    Increment: (_, context) =>
      Effect.gen(function*() {
        context.state.count++
        yield* context.view.put("count", "", String(context.state.count))
        return context.state.count
      })
  }
})

const SHARDS = 8

describe("shard tenure", () => {
  it("re-reads an entity's state when its shard is taken again at a new epoch", async () => {
    const scope = Effect.runSync(Scope.make())
    try {
      await Effect.runPromise(Effect.gen(function*() {
        const stores = yield* Layer.build(MemoryStore.layer)
        const config = Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: SHARDS })
        const runtimeOver = Layer.provideMerge(EntityRuntime.register(behavior), EntityRuntime.layerRuntime).pipe(
          Layer.provide(config),
          Layer.provide(Layer.succeedContext(stores)),
          Layer.fresh
        )
        const A = Context.get(yield* Layer.build(runtimeOver), EntityRuntime.EntityRuntime)
        const B = Context.get(yield* Layer.build(runtimeOver), EntityRuntime.EntityRuntime)
        const shard = shardOf(Tally.type, "x", SHARDS)
        const count = (runtime: EntityRuntime.EntityRuntimeShape) =>
          EntityClient.fromMessenger(Tally, runtime, 5_000).ask("x", "Increment")

        yield* A.assignShard(shard, 1)
        for (let i = 0; i < 5; i++) yield* count(A)
        A.dropShard(shard)
        expect(Exit.isFailure(yield* Effect.exit(count(A))), "A no longer serves the shard").toBe(true)

        yield* B.assignShard(shard, 2)
        expect([yield* count(B), yield* count(B), yield* count(B)]).toEqual([6, 7, 8])
        yield* B.stopShard(shard)

        yield* A.assignShard(shard, 3)
        expect(yield* count(A), "A reads what B wrote").toBe(9)
        expect(yield* count(A)).toBe(10)
      }).pipe(Scope.provide(scope)))
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })

  it("lets go of shards whose leases ran out, their holdings ending at the deadline", async () => {
    const scope = Effect.runSync(Scope.make())
    try {
      await Effect.runPromise(Effect.gen(function*() {
        const layer = Layer.provideMerge(EntityRuntime.register(behavior), EntityRuntime.layerRuntime).pipe(
          Layer.provide(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: SHARDS })),
          Layer.provide(MemoryStore.layer)
        )
        const runtime = Context.get(yield* Layer.build(layer), EntityRuntime.EntityRuntime)
        const shard = shardOf(Tally.type, "x", SHARDS)
        const other = (shard + 1) % SHARDS
        yield* runtime.assignShard(shard, 1)
        yield* runtime.assignShard(other, 1)
        const lapsedAt = Date.now() - 1_000
        runtime.setLeaseDeadline(shard, lapsedAt)
        runtime.setLeaseDeadline(other, Date.now() + 60_000)
        expect(runtime.dropLapsed()).toEqual([shard])
        expect([...runtime.owned().keys()]).toEqual([other])
        const ended = runtime.holdings().find((holding) => holding.shard === shard)!
        expect(ended.ended).toBe(true)
        expect(ended.until, "the holding ended when the lease did, not when it was noticed").toBe(lapsedAt)
        expect(Exit.isFailure(yield* Effect.exit(EntityClient.fromMessenger(Tally, runtime, 5_000).ask("x", "Increment")))).toBe(true)
        expect(runtime.dropLapsed(), "nothing else has lapsed").toEqual([])
      }).pipe(Scope.provide(scope)))
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
