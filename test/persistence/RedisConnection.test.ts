/**
 * Goal: the process's Redis connections survive their connections dropping: a command that
 * nobody waits for (ioredis sends some of its own) fails without an unhandled rejection, which
 * would end a worker process, and a subscription keeps delivering after drops, including drops
 * while it is being made again.
 * Method: a connection on a Redis of the test's own; a cutter made before it cuts only its
 * connections (CLIENT KILL), never the test's publisher.
 */
import { Effect, Exit, Scope } from "effect"
import { Cluster, Command, Redis } from "ioredis"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as RedisConnection from "../../persistence/RedisConnection.js"
import { connectionCutter } from "../support/connectionCutter.js"
import { type RedisProcess, startRedis, startRedisCluster } from "../support/RedisServer.js"

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** Runs `body` with a connection on a fresh Redis (standalone unless `start` says) and a cutter of that connection's links. */
const withConnection = async (
  body: (connection: RedisConnection.RedisConnectionShape, scope: Scope.Closeable, cut: () => Promise<number>, redis: RedisProcess) => Promise<void>,
  start: () => Promise<RedisProcess> = startRedis
) => {
  const redis = await start()
  const cutter = await connectionCutter(redis)
  const scope = Effect.runSync(Scope.make())
  try {
    const connection = await Effect.runPromise(Scope.provide(RedisConnection.make({ url: redis.url }), scope))
    await body(connection, scope, cutter.cut, redis)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    cutter.close()
    await redis.stop()
  }
}

describe("Redis connections when their connections drop", () => {
  it("fail a command in flight that nobody waits for without an unhandled rejection", async () => {
    const unhandled: Array<unknown> = []
    const onUnhandled = (reason: unknown) => void unhandled.push(reason)
    process.on("unhandledRejection", onUnhandled)
    try {
      await withConnection(async (connection, _scope, cut) => {
        // A blocking pop stays in flight until the cut. It is sent the way ioredis sends its own
        // commands (straight to the connection, not through auto-pipelining) and its promise is
        // dropped, as ioredis drops those of a re-subscription.
        void (connection.client as Redis).sendCommand(new Command("BLPOP", ["nothing-comes", "10"]))
        await sleep(50)
        assert.ok((await cut()) > 0, "the connection was cut")
        // Unhandled rejections are reported after the microtasks of the turn that made them.
        await sleep(200)
        assert.equal(await connection.client.call("PING"), "PONG", "the connection is back")
      })
    } finally {
      process.off("unhandledRejection", onUnhandled)
    }
    assert.deepEqual(unhandled.map(String), [], "no unhandled rejection")
  }, 30_000)

  /**
   * Subscribes, cuts the connections 40 times in quick succession (so some cuts land while the
   * subscription is being made again), then publishes until a message arrives; answers how many
   * re-subscriptions were reported. No rejection may go unhandled meanwhile.
   */
  const throughDrops = async (connection: RedisConnection.RedisConnectionShape, scope: Scope.Closeable, cut: () => Promise<number>, redis: RedisProcess) => {
    const unhandled: Array<unknown> = []
    const onUnhandled = (reason: unknown) => void unhandled.push(reason)
    process.on("unhandledRejection", onUnhandled)
    const received: Array<string> = []
    let resubscribed = 0
    const publisher = redis.ports.length > 1
      ? new Cluster(redis.ports.map((port) => ({ host: "127.0.0.1", port })))
      : new Redis(redis.url)
    try {
      await Effect.runPromise(Scope.provide(
        connection.subscribe("news", (message) => void received.push(message), () => void resubscribed++),
        scope
      ))
      // Bounded: 40 rounds.
      for (let round = 0; round < 40; round++) {
        await cut()
        await sleep(round % 4 === 0 ? 60 : round % 4)
      }
      // Bounded: 10 s for the subscription to be back and a message to arrive.
      const deadline = Date.now() + 10_000
      while (!received.includes("after the drops") && Date.now() < deadline) {
        await publisher.publish("news", "after the drops")
        await sleep(50)
      }
      assert.ok(received.includes("after the drops"), `a message published after the drops arrives (resubscribed ${resubscribed} times)`)
    } finally {
      publisher.disconnect()
      process.off("unhandledRejection", onUnhandled)
    }
    assert.deepEqual(unhandled.map(String), [], "no unhandled rejection")
    return resubscribed
  }

  it("keep a subscription through repeated drops, including drops while it is made again", async () => {
    await withConnection(async (...args) => {
      assert.ok((await throughDrops(...args)) > 0, "each re-subscription is reported, for catching up")
    })
  }, 30_000)

  it("keep a subscription on a Redis Cluster through repeated drops of every node's connections", async () => {
    // The cluster client re-subscribes through a subscriber connection of its own (not reported).
    await withConnection(async (...args) => void (await throughDrops(...args)), () => startRedisCluster())
  }, 60_000)
})
