/**
 * A counter entity in the direct persistence style: its value lives under one key of its own
 * slice of the store, read by `recover` and written by `Increment`. The write commits before the
 * reply is sent, so an acknowledged increment is never lost.
 */
import { Effect, Schema } from "effect"
import { Rpc } from "effect/rpc"
import * as Entity from "../../actors/Entity.js"

/** Adds `by` and answers the new value. */
export const Increment = Rpc.make("Increment", { payload: { by: Schema.Number }, success: Schema.Number })
/** Answers the current value. */
export const Get = Rpc.make("Get", { success: Schema.Number })

/** The counter entity type. */
export const Counter = Entity.make("counter", [Increment, Get])

const decode = (bytes: Uint8Array | undefined) => (bytes === undefined ? 0 : Number(Buffer.from(bytes).toString()))

/** The counter's behaviour. */
export const CounterBehavior = Entity.direct(Counter, {
  recover: ({ view }) => Effect.map(view.get("value", ""), decode),
  handlers: {
    Increment: ({ by }, context) =>
      Effect.gen(function*() {
        const next = context.state + by
        yield* context.view.put("value", "", String(next))
        context.setState(next)
        return next
      }),
    Get: (_, context) => Effect.succeed(context.state)
  }
})
