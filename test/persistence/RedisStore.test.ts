/**
 * The Redis backend against the shared conformance suite, on the private standalone redis-server
 * and on the private 3-master Redis Cluster that the test setup starts. Each group uses a key
 * prefix of its own. Also: Redis unreachable gives `StoreUnavailable` in bounded time, and the
 * store works again once Redis is back.
 */
import { Cause, Effect, Exit, Layer, ManagedRuntime } from "effect"
import { describe, expect, inject, it } from "vitest"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import { redactUrl } from "../../persistence/RedisConnection.js"
import * as RedisStore from "../../persistence/RedisStore.js"
import { suite } from "../conformance/StoreSuite.js"
import { startRedis } from "../support/RedisServer.js"

const unique = (label: string) => `${label}${Math.random().toString(36).slice(2, 8)}`

suite("redis backend (standalone)", () => RedisStore.layer({ url: inject("redisUrl"), keyPrefix: unique("kvs") }))

suite("redis backend (3-master cluster)", () =>
  RedisStore.layer({
    url: inject("redisClusterPorts").map((port) => `redis://127.0.0.1:${port}`).join(","),
    keyPrefix: unique("kvc")
  }))

const errorTag = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) return "success"
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" ? (error.value as { _tag: string })._tag : Cause.pretty(exit.cause)
}

describe("redis backend faults", () => {
  it("fails with StoreUnavailable within bounded time while Redis is down, and recovers when it returns", async () => {
    const redis = await startRedis()
    const runtime = ManagedRuntime.make(
      RedisStore.layer({ url: redis.url, keyPrefix: unique("fault"), commandTimeoutMillis: 1_000 })
    )
    try {
      await runtime.runPromise(Effect.flatMap(KeyValueStore, (store) => store.put("p", "ns", "k", "before")))
      await redis.stop().catch(() => undefined)
      const started = Date.now()
      const down = await runtime.runPromiseExit(Effect.flatMap(KeyValueStore, (store) => store.get("p", "ns", "k")))
      expect(errorTag(down)).toBe("StoreUnavailable")
      expect(Date.now() - started).toBeLessThan(5_000)
      const downWrite = await runtime.runPromiseExit(Effect.flatMap(KeyValueStore, (store) => store.put("p", "ns", "k", "x")))
      expect(errorTag(downWrite)).toBe("StoreUnavailable")
      await redis.restart!()
      const deadline = Date.now() + 10_000
      let recovered = false
      while (!recovered && Date.now() < deadline) {
        const exit = await runtime.runPromiseExit(Effect.flatMap(KeyValueStore, (store) => store.put("p", "ns", "k", "after")))
        recovered = Exit.isSuccess(exit)
        if (!recovered) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      expect(recovered).toBe(true)
    } finally {
      await runtime.dispose()
      await redis.stop()
    }
  })

  it("refuses to start against an unreachable Redis with StoreUnavailable, without the password", async () => {
    const started = Date.now()
    const exit = await Effect.runPromiseExit(
      Layer.build(RedisStore.layer({ url: "redis://user:secret-password@127.0.0.1:1", connectTimeoutMillis: 500 })).pipe(Effect.scoped)
    )
    expect(errorTag(exit)).toBe("StoreUnavailable")
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(Exit.isFailure(exit) && Cause.pretty(exit.cause).includes("secret-password")).toBe(false)
  })

  it("redacts passwords in URLs", () => {
    expect(redactUrl("redis://:pw@h:1,rediss://u:pw2@h:2/3")).toBe("redis://:***@h:1,rediss://u:***@h:2/3")
    expect(redactUrl("redis://h:1")).toBe("redis://h:1")
  })
})
