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
    }).pipe(Effect.catch((error) => Effect.logWarning(`write pause ${request.token}: could not withdraw it: ${String(error)}`)))

  /**
   * Holds every worker's writes in `scope` until it closes. The request is renewed meanwhile;
   * `lost` turns true if a renewal finds it gone (it expired: a long Redis outage), after which
   * workers may be writing again and the operation must not be trusted.
   */
  const hold = (request: PauseRequest) =>
    Effect.gen(function*() {
      const placed = yield* Effect.mapError(coordinator.requestPause(request, ttlMillis), unavailable)
      if (!placed) return yield* Effect.fail(new PauseFailed({ message: "another dump or restore is holding the cluster's writes" }))
      const state = { lost: false }
      yield* Effect.addFinalizer(() => withdraw(request))
      yield* coordinator.notify
      manager.requestRefresh()
      const renew = Effect.flatMap(Effect.result(coordinator.renewPause(request, ttlMillis)), (renewed) =>
        Effect.sync(() => {
          // A failed renewal may still leave the request in force; only a missing one is lost.
          if (renewed._tag === "Success" && !renewed.success) state.lost = true
        }))
      yield* Effect.forkScoped(Effect.repeat(renew, Schedule.spaced(Duration.millis(ttlMillis / 3))))
      yield* answered(request.token, "paused")
      return state
    })

  const lostError = (request: PauseRequest) =>
    new PauseFailed({ message: `the pause request ${request.token} expired while the operation ran (the coordination Redis was out too long)` })

  return {
    holdForDump: Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const request: PauseRequest = { token: randomUUID(), restart: false }
        const scope = yield* Scope.make()
        const exit = yield* Effect.exit(restore(Scope.provide(hold(request), scope)))
        if (Exit.isFailure(exit)) {
          yield* Scope.close(scope, exit)
          return yield* Effect.failCause(exit.cause)
        }
        const state = exit.value
        return {
          intact: Effect.suspend(() => (state.lost ? Effect.fail(lostError(request)) : Effect.void)),
          release: Scope.close(scope, Exit.void)
        }
      })
    ),
    restore: (effect) =>
      Effect.gen(function*() {
        const request: PauseRequest = { token: randomUUID(), restart: true }
        const result = yield* Effect.scoped(Effect.gen(function*() {
          const state = yield* hold(request)
          const value = yield* effect
          if (state.lost) return yield* Effect.fail(lostError(request))
          return value
        }))
        // Answer once every worker has dropped the writes and state from before the restore.
        yield* answered(request.token, "resumed")
        return result
      })
  } satisfies WritePauseShape
})

/** The cluster's write pause as the worker's `WritePause`. */
export const layer: Layer.Layer<WritePause, never, Coordinator | ShardManager> = Layer.effect(WritePause, make)
