/**
 * Running a handler's steps in order without a fiber when they can: writes to a staged view,
 * the usual case, answer at once with an Exit (Effect 4's `Effect.void` and `Effect.fail` are
 * Exits), and a handler made only of such steps returns an Exit itself, which the entity
 * runtime takes as the reply without starting a fiber. Any step that is a real Effect makes the
 * rest an Effect, run in the same order.
 */
import { Effect, Exit } from "effect"

/** Runs `steps` in order, stopping at the first failure: synchronously while each answers with an Exit. */
export const run = <E, R>(steps: ReadonlyArray<() => Effect.Effect<void, E, R>>, from = 0): Effect.Effect<void, E, R> => {
  for (let i = from; i < steps.length; i++) {
    const effect = steps[i]!()
    if (!Exit.isExit(effect)) return i + 1 === steps.length ? effect : Effect.andThen(effect, Effect.suspend(() => run(steps, i + 1)))
    if (Exit.isFailure(effect)) return effect
  }
  return Effect.void
}

/** `Effect.as`, answering with an Exit when `effect` is one. */
export const as = <A, E, R>(effect: Effect.Effect<void, E, R>, value: A): Effect.Effect<A, E, R> => {
  if (!Exit.isExit(effect)) return Effect.as(effect, value)
  return Exit.isSuccess(effect) ? Exit.succeed(value) : (effect as Exit.Exit<never, E>)
}
