/**
 * The Redis backend against the shared conformance suite, on the private standalone redis-server
 * and on the private 3-master Redis Cluster that the test setup starts. Each group uses a key
 * prefix of its own. Also: Redis unreachable gives `StoreUnavailable` in bounded time, and the
 * store works again once Redis is back; a connection that drops mid-write never makes a write
 * count twice.
 */
import { Cause, Effect, Exit, Layer, ManagedRuntime } from "effect"
import { describe, expect, inject, it } from "vitest"
import { IndexedStore } from "../../persistence/IndexedStore.js"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import { IN_FLIGHT_LOST, redactUrl } from "../../persistence/RedisConnection.js"
import * as RedisStore from "../../persistence/RedisStore.js"
import { suite } from "../conformance/StoreSuite.js"
import { connectionCutter } from "../support/connectionCutter.js"
import { errorTag } from "../support/errorTag.js"
import { startRedis } from "../support/RedisServer.js"

const unique = (label: string) => `${label}${Math.random().toString(36).slice(2, 8)}`

suite("redis backend (standalone)", () => RedisStore.layer({ url: inject("redisUrl"), keyPrefix: unique("kvs") }))

suite("redis backend (3-master cluster)", () =>
  RedisStore.layer({
    url: inject("redisClusterPorts").map((port) => `redis://127.0.0.1:${port}`).join(","),
    keyPrefix: unique("kvc")
  }))

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

  it("stores each append once when connections drop with writes in flight, and says their outcome is unknown", async () => {
    // ioredis re-sends unanswered commands after reconnecting by default; Redis may have run one
    // and lost only its reply, and a topic append run twice stores its values twice.
    const redis = await startRedis()
    // Made before the store connects: it cuts only the store's connection.
    const cutter = await connectionCutter(redis)
    // A long timeout: commands in flight must fail when their connection drops, not by timing out.
    const runtime = ManagedRuntime.make(RedisStore.layer({ url: redis.url, keyPrefix: unique("drops"), commandTimeoutMillis: 60_000 }))
    try {
      const store = await runtime.runPromise(Effect.service(IndexedStore))
      const acknowledged = new Set<string>()
      const failures: Array<string> = []
      let next = 0
      let writing = true
      const writer = async () => {
        while (writing) {
          const token = `t${next++}`
          const exit = await runtime.runPromiseExit(store.append("p", "topic", [token]))
          if (Exit.isSuccess(exit)) acknowledged.add(token)
          else failures.push(Cause.pretty(exit.cause))
        }
      }
      const writers = Array.from({ length: 30 }, writer)
      // Bounded: 40 rounds at most, each dropping the store's connection while writes are in flight.
      for (let round = 0; round < 40 && !failures.some((failure) => failure.includes(IN_FLIGHT_LOST)); round++) {
        await new Promise((resolve) => setTimeout(resolve, 30))
        await cutter.cut()
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
      writing = false
      await Promise.all(writers)
      const stored: Array<string> = []
      // Bounded: the topic holds fewer values than tokens were drawn.
      for (let from = 1; from <= next + 1;) {
        const page = await runtime.runPromise(store.scan("p", "topic", { from, limit: 1_000 }))
        if (page.length === 0) break
        for (const one of page) stored.push(Buffer.from(one.value).toString("utf8"))
        from = page[page.length - 1]!.index + 1
      }
      expect(stored.length - new Set(stored).size).toBe(0)
      const kept = new Set(stored)
      for (const token of acknowledged) expect(kept.has(token)).toBe(true)
      expect(failures.some((failure) => failure.includes(IN_FLIGHT_LOST))).toBe(true)
    } finally {
      cutter.close()
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
