/**
 * Goal: the process's Redis connections survive their connections dropping: a command that
 * nobody waits for (ioredis sends some of its own) fails without an unhandled rejection, which
 * would end a worker process, and a subscription keeps delivering after drops, including drops
 * while it is being made again.
 * Method: a connection on a Redis of the test's own; a cutter made before it cuts only its
 * connections (CLIENT KILL), never the test's publisher.
 */
import { Effect, Exit, Scope } from "effect"
import { Command, Redis } from "ioredis"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as RedisConnection from "../../persistence/RedisConnection.js"
import { connectionCutter } from "../support/connectionCutter.js"
import { startRedis } from "../support/RedisServer.js"

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** Runs `body` with a connection on a fresh Redis and a cutter of that connection's links. */
const withConnection = async (body: (connection: RedisConnection.RedisConnectionShape, scope: Scope.Closeable, cut: () => Promise<number>, url: string) => Promise<void>) => {
  const redis = await startRedis()
  const cutter = await connectionCutter(redis)
  const scope = Effect.runSync(Scope.make())
  try {
    const connection = await Effect.runPromise(Scope.provide(RedisConnection.make({ url: redis.url }), scope))
    await body(connection, scope, cutter.cut, redis.url)
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

  it("keep a subscription through repeated drops, including drops while it is made again", async () => {
    await withConnection(async (connection, scope, cut, url) => {
      const received: Array<string> = []
      let resubscribed = 0
      await Effect.runPromise(Scope.provide(
        connection.subscribe("news", (message) => void received.push(message), () => void resubscribed++),
        scope
      ))
      const publisher = new Redis(url)
      try {
        // Bounded: 40 rounds. Cuts come quickly after one another, so some land while the
        // subscription is being made again.
        for (let round = 0; round < 40; round++) {
          await cut()
          await sleep(round % 4 === 0 ? 60 : round % 4)
        }
        // Bounded: 5 s for the subscription to be back and a message to arrive.
        const deadline = Date.now() + 5_000
        while (!received.includes("after the drops") && Date.now() < deadline) {
          await publisher.publish("news", "after the drops")
          await sleep(50)
        }
        assert.ok(received.includes("after the drops"), `a message published after the drops arrives (resubscribed ${resubscribed} times)`)
        assert.ok(resubscribed > 0, "each re-subscription is reported, for catching up")
      } finally {
        publisher.disconnect()
      }
    })
  }, 30_000)
})
