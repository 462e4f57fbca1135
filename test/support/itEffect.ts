/**
 * A small stand-in for `@effect/vitest` (whose Effect 4 release needs a newer Node than 20):
 * `itEffect(name, effect)` runs a scoped Effect as a test and fails the test with the pretty
 * printed cause.
 */
import { Cause, Effect, Exit, Layer, type Scope } from "effect"
import { it } from "vitest"

const run = async <E>(effect: Effect.Effect<unknown, E, Scope.Scope>): Promise<void> => {
  const exit = await Effect.runPromiseExit(Effect.scoped(effect))
  if (Exit.isFailure(exit)) {
    throw new Error(Cause.pretty(exit.cause))
  }
}

/** Runs a scoped Effect as a vitest test. */
export const itEffect = <E>(
  name: string,
  effect: () => Effect.Effect<unknown, E, Scope.Scope>,
  timeoutMillis?: number
): void => {
  it(name, () => run(effect()), timeoutMillis)
}

/** Runs a scoped Effect with a layer provided as a vitest test. */
export const itLayer = <R, E, LE>(layer: Layer.Layer<R, LE>) =>
(
  name: string,
  effect: () => Effect.Effect<unknown, E, Scope.Scope | R>,
  timeoutMillis?: number
): void => {
  it(name, () => run(Effect.provide(effect(), Layer.fresh(layer))), timeoutMillis)
}
