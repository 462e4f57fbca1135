/**
 * Holding every write of a deployment while the whole store is read or rewritten: what a dump
 * of a store without snapshots (Redis) needs to be one point in time, and what a restore needs
 * so that no entity writes from the state it had before. The runtime knows how to hold its own
 * commits (`EntityRuntime.pauseWrites`); this service decides whose: this process alone
 * (`local`), or every worker of a cluster (`sharding/ClusterPause.ts`).
 */
import { Context, Effect, Layer, Schema, Semaphore } from "effect"
import { EntityRuntime, type EntityRuntimeShape } from "./EntityRuntime.js"

/** The writes could not be held (a worker did not answer, or another pause is running). */
export class PauseFailed extends Schema.TaggedError<PauseFailed>()("PauseFailed", { message: Schema.String }) {}

/** Writes held for a dump. */
export interface DumpHold {
  /** Fails if the hold was lost while the dump ran. */
  readonly intact: Effect.Effect<void, PauseFailed>
  /** Lets writes go. */
  readonly release: Effect.Effect<void>
}

/** No hold: the store reads a snapshot. */
export const noHold: DumpHold = { intact: Effect.void, release: Effect.void }

/** What the admin routes run dumps and restores through. */
export interface WritePauseShape {
  /**
   * Prepares a dump: nothing where the store reads one snapshot (LevelDB); where it cannot
   * (Redis shared by workers), holds every write until `release` runs (the dump's end, success
   * or not). `intact` fails if the hold was lost meanwhile: the dump runs it before it marks
   * the archive complete. Failing here lets a route answer 503 before it sends anything.
   */
  readonly holdForDump: Effect.Effect<DumpHold, PauseFailed>
  /**
   * Runs a restore with every write held; afterwards writes waiting from before are failed
   * (never acknowledged) and every resident entity recovers from the restored store.
   */
  readonly restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PauseFailed, R>
}

/** The write pause service. */
export class WritePause extends Context.Service<WritePause, WritePauseShape>()("shardfeed/WritePause") {}

/** Why writes and entity state were dropped after a restore. */
const RESTORED = "the store was restored"

/** Holds this runtime's commits around `effect`; `after` runs while they are still held, and commits resume whatever happens. */
const holding = <A, E, R>(runtime: EntityRuntimeShape, effect: Effect.Effect<A, E, R>, after: () => void = () => undefined) =>
  Effect.acquireUseRelease(runtime.pauseWrites, () => effect, () =>
    Effect.sync(() => {
      try {
        after()
      } finally {
        runtime.resumeWrites()
      }
    }))

/** After a restore: no write from before lands, and every entity reads the store again. */
export const forgetBefore = (runtime: EntityRuntimeShape) => () => {
  runtime.discardWaitingWrites(RESTORED)
  runtime.resetEntities(RESTORED)
}

/**
 * This process is the only writer (the embedded default, over LevelDB's snapshots): a dump
 * needs no hold; restores hold this runtime's commits, one restore at a time.
 */
export const local = (runtime: EntityRuntimeShape): Effect.Effect<WritePauseShape> =>
  Effect.map(Semaphore.make(1), (oneAtATime) => ({
    holdForDump: Effect.succeed(noHold),
    restore: (effect) => oneAtATime.withPermits(1)(holding(runtime, effect, forgetBefore(runtime)))
  }))

/** `local` over the process's runtime. */
export const layerLocal: Layer.Layer<WritePause, never, EntityRuntime> = Layer.effect(WritePause, Effect.flatMap(EntityRuntime, local))

/** A process that holds no data (a gateway): dumps and restores go to a worker that does. */
export const refusing: WritePauseShape = {
  holdForDump: Effect.fail(new PauseFailed({ message: "this process holds no data (a gateway): dump through a worker" })),
  restore: () => Effect.fail(new PauseFailed({ message: "this process holds no data (a gateway): restore through a worker" }))
}
