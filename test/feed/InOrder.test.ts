/**
 * The feed handlers' step runner: steps run in order and stop at the first failure, and steps
 * that all answer with Exits give an Exit (what lets the runtime skip the fiber).
 */
import { Effect, Exit } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as InOrder from "../../src/feed/internal/inOrder.js"

describe("InOrder", () => {
  it("answers with an Exit when every step does, after running them in order", () => {
    const ran: Array<number> = []
    const result = InOrder.run([1, 2, 3].map((n) => () => {
      ran.push(n)
      return Effect.void
    }))
    assert.ok(Exit.isExit(result) && Exit.isSuccess(result))
    assert.deepEqual(ran, [1, 2, 3])
  })

  it("stops at the first failing step", () => {
    const ran: Array<number> = []
    const result = InOrder.run([
      () => (ran.push(1), Effect.void),
      () => (ran.push(2), Effect.fail("bad")),
      () => (ran.push(3), Effect.void)
    ])
    assert.deepEqual(ran, [1, 2])
    assert.deepEqual(result, Exit.fail("bad"))
  })

  it("runs the steps after a real Effect only when that Effect runs, in order", async () => {
    const ran: Array<string> = []
    const result = InOrder.run([
      () => (ran.push("a"), Effect.void),
      () => Effect.sync(() => void ran.push("b")),
      () => (ran.push("c"), Effect.void),
      () => Effect.suspend(() => (ran.push("d"), Effect.fail("late"))),
      () => (ran.push("e"), Effect.void)
    ])
    assert.ok(!Exit.isExit(result))
    assert.deepEqual(ran, ["a"])
    assert.deepEqual(await Effect.runPromiseExit(result), Exit.fail("late"))
    assert.deepEqual(ran, ["a", "b", "c", "d"])
  })

  it("as: keeps an Exit an Exit, and maps Effects", async () => {
    assert.deepEqual(InOrder.as(Effect.void, 7), Exit.succeed(7))
    assert.deepEqual(InOrder.as(Effect.fail("no"), 7), Exit.fail("no"))
    assert.equal(await Effect.runPromise(InOrder.as(Effect.sync(() => undefined), 7)), 7)
  })
})
