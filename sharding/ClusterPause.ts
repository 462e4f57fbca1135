/**
 * Holding every write of a cluster, for a dump of a shared Redis store (which has no snapshot to
 * read) and for a restore. The worker that runs the operation places a pause request in Redis
 * (one at a time, renewed while it runs, so a crashed worker's request ends by itself), wakes
 * every shard manager, and waits until every live worker says it holds its commits; each one
 * then has no commit with the store and moves no shard (see `ShardManager`). After the
 * operation the request is withdrawn; after a restore every worker drops the writes that were
 * waiting and its entities' state, and the operation waits until they say so.
 */
import { Duration, Effect, Exit, Layer, Schedule, Scope } from "effect"
import { randomUUID } from "node:crypto"
import { PauseFailed, WritePause, type WritePauseShape } from "../actors/WritePause.js"
import type { StoreUnavailable } from "../persistence/StoreError.js"
import { Coordinator, type PauseAck, type PauseRequest } from "./Coordinator.js"
import { ShardManager } from "./ShardManager.js"

const POLL_MILLIS = 50

/** The cluster's write pause, over this worker's coordinator and shard manager. */
export const make = Effect.gen(function*() {
  const coordinator = yield* Coordinator
  const manager = yield* ShardManager
  const { refreshMillis, leaseMillis } = manager.config
  /** A request lives this long without renewal; it is renewed three times as often. */
  const ttlMillis = Math.max(10_000, 5 * refreshMillis)
  /** Every live worker answers within a few of its rounds, or the operation is refused. */
  const answerMillis = 3 * refreshMillis + leaseMillis + 5_000

  const unavailable = (error: StoreUnavailable) => new PauseFailed({ message: `the coordination Redis failed: ${error.message}` })

  /** Waits until every live worker's answer to `token` is `ack`; fails naming the silent ones. */
  const answered = (token: string, ack: PauseAck) =>
    Effect.gen(function*() {
      const deadline = Date.now() + answerMillis
      // Bounded: polls until the deadline.
      for (;;) {
        const { workers } = yield* coordinator.members
        const acks = yield* coordinator.pauseAcks(token)
        const silent = workers.filter((worker) => acks.get(worker.id) !== ack).map((worker) => worker.id)
        if (silent.length === 0) return
        if (Date.now() > deadline) {
          return yield* Effect.fail(new PauseFailed({ message: `worker${silent.length > 1 ? "s" : ""} ${silent.join(", ")} did not answer (${ack}) within ${answerMillis} ms` }))
        }
        yield* Effect.sleep(POLL_MILLIS)
      }
    }).pipe(Effect.catchTag("StoreUnavailable", (error) => Effect.fail(unavailable(error))))

  const withdraw = (request: PauseRequest) =>
    Effect.gen(function*() {
      yield* coordinator.clearPause(request)
      yield* coordinator.notify
      manager.requestRefresh()
    })

  /** Holds every worker's writes in `scope`; closing it lets them go. */
  const hold = (restart: boolean) =>
    Effect.gen(function*() {
      const request: PauseRequest = { token: randomUUID(), restart }
      const placed = yield* Effect.mapError(coordinator.requestPause(request, ttlMillis), unavailable)
      if (!placed) return yield* Effect.fail(new PauseFailed({ message: "another dump or restore is holding the cluster's writes" }))
      yield* Effect.addFinalizer(() =>
        withdraw(request).pipe(
          // After a restore, answer only once every worker has dropped its stale state.
          Effect.andThen(restart ? answered(request.token, "resumed") : Effect.void),
          Effect.catch((error) => Effect.logWarning(`write pause ${request.token}: ${String(error)}`))
        ))
      yield* coordinator.notify
      manager.requestRefresh()
      yield* Effect.forkScoped(Effect.repeat(Effect.ignore(coordinator.renewPause(request, ttlMillis)), Schedule.spaced(Duration.millis(ttlMillis / 3))))
      yield* answered(request.token, "paused")
    })

  return {
    holdForDump: Effect.gen(function*() {
      const scope = yield* Scope.make()
      const exit = yield* Effect.exit(Scope.provide(hold(false), scope))
      if (Exit.isFailure(exit)) {
        yield* Scope.close(scope, exit)
        return yield* Effect.failCause(exit.cause)
      }
      return Scope.close(scope, Exit.void)
    }),
    restore: (effect) => Effect.scoped(Effect.andThen(hold(true), effect))
  } satisfies WritePauseShape
})

/** The cluster's write pause as the worker's `WritePause`. */
export const layer: Layer.Layer<WritePause, never, Coordinator | ShardManager> = Layer.effect(WritePause, make)
