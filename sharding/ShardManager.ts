/**
 * One worker's part in a Redis-coordinated cluster. Every refresh it renews its heartbeat and its
 * shard leases, computes the target assignment from the live workers (a pure function: every
 * worker computes the same), hands off the shards it should no longer own (stop taking messages,
 * drain and commit, passivate, then release the lease) and acquires the free shards it should
 * own (each acquisition raises the shard's epoch and registers it with the store, which fences
 * any older owner). Moves per refresh are rate-limited. A shard whose lease cannot be renewed
 * stops committing before the lease ends. It also keeps the shard map that routers read.
 *
 * It decides and carries out; Redis operations are the `Coordinator`'s, entity hosting the
 * runtime's.
 */
import { Context, Effect, Exit, Layer, Metric, PubSub, Queue, Result, Scope, Stream } from "effect"
import type { EntityEvent } from "../actors/EntityEvent.js"
import { EntityRuntime } from "../actors/EntityRuntime.js"
import { forgetBefore } from "../actors/WritePause.js"
import { assign } from "./Assignment.js"
import { Coordinator, type Member, type PauseRequest } from "./Coordinator.js"
import { ShardingConfig, type ShardingConfigShape, validate } from "./ShardingConfig.js"

/** An owner as routers see it. */
export interface Owner {
  readonly worker: string
  readonly address: string
  readonly epoch: number
}

/** What happens to shards, as a stream and as metrics. */
export type ShardEvent =
  | { readonly _tag: "ShardAcquired"; readonly shard: number; readonly epoch: number }
  | { readonly _tag: "ShardReleased"; readonly shard: number }
  | { readonly _tag: "ShardLost"; readonly shard: number }
  /** The store refused a commit for the shard: another worker holds it at a later epoch; this one dropped it. */
  | { readonly _tag: "FencingRejected"; readonly shard: number }
  /** This worker began moving shards (`moves` planned in its first round). */
  | { readonly _tag: "RebalanceStarted"; readonly moves: number }
  /** Every move since `RebalanceStarted` is done, hand-offs included, and none is left to make. */
  | { readonly _tag: "RebalanceEnded"; readonly millis: number }
  | { readonly _tag: "WritesPaused"; readonly token: string }
  | { readonly _tag: "WritesResumed"; readonly token: string }

/** The shard manager and the shard map it keeps. */
export interface ShardManagerShape {
  readonly workerId: string
  readonly config: ShardingConfigShape
  readonly shardCount: number
  /** The owner of a shard as last read (undefined while it is free or moving). */
  readonly owner: (shard: number) => Owner | undefined
  /** The live workers as last read. */
  readonly members: () => ReadonlyArray<Member>
  /** Asks for an early refresh of the map (coalesced; a sender that met a moved shard calls it). */
  readonly requestRefresh: () => void
  /**
   * Joins the cluster and starts taking shards (idempotent). A worker calls it once its entity
   * types are registered, so no message reaches it for a type it does not know yet.
   */
  readonly start: Effect.Effect<void, unknown>
  readonly events: Stream.Stream<ShardEvent>
}

/** The shard manager service. */
export class ShardManager extends Context.Service<ShardManager, ShardManagerShape>()("shardfeed/ShardManager") {}

/** Shards this worker owns. */
export const ownedShards = Metric.gauge("shardfeed_shards_owned", { description: "Shards this worker owns" })
/** Lease renewals, by `outcome` (`ok`, `lost`, `failed`). */
export const leaseRenewals = Metric.counter("shardfeed_lease_renewals_total", { description: "Shard lease renewals" })
/** Rebalances ended (from a worker's first move to its last hand-off done). */
export const rebalances = Metric.counter("shardfeed_rebalances_total", { description: "Rebalances ended" })
/** How long a worker's rebalances took, first move to last hand-off done, in seconds. */
export const rebalanceSeconds = Metric.histogram("shardfeed_rebalance_seconds", {
  description: "Rebalance duration, first move to last hand-off done",
  boundaries: Metric.exponentialBoundaries({ start: 0.05, factor: 2, count: 12 })
})
/** Shards acquired and released, by `action`. */
export const shardMoves = Metric.counter("shardfeed_shard_moves_total", { description: "Shards acquired or released" })

const SETTINGS_HASH = "murmur3-x86-32"
/** How long a worker's answer to a pause request lives without being repeated. */
const PAUSE_ACK_MILLIS = 60_000

interface Options {
  /** Whether this worker's store is shared between processes (Redis) or local. */
  readonly sharedStore: boolean
  /** Joins no membership and owns no shard: only reads the map, for a process that only sends. */
  readonly clientOnly?: boolean | undefined
}

/** Runs the manager for the scope: joins, then refreshes until the scope closes (a graceful leave). */
export const make = (options: Options): Effect.Effect<ShardManagerShape, unknown, EntityRuntime | Coordinator | Scope.Scope> =>
  Effect.gen(function*() {
    const config = yield* Effect.flatMap(ShardingConfig, validate)
    const runtime = yield* EntityRuntime
    const coordinator = yield* Coordinator
    const context = yield* Effect.context<never>()
    const shardCount = runtime.config.shardCount
    const settings = JSON.stringify({ shardCount, hash: SETTINGS_HASH })
    const description = {
      id: config.workerId,
      address: config.address,
      weight: config.weight,
      shared: options.sharedStore,
      startedAt: Date.now()
    }
    const clientOnly = options.clientOnly === true
    const scope = yield* Effect.scope
    let started = false
    const events = yield* PubSub.sliding<ShardEvent>(1_024)
    const publish = (event: ShardEvent) => void PubSub.publishUnsafe(events, event)
    let owners: ReadonlyArray<Owner | undefined> = new Array(shardCount).fill(undefined)
    let members: ReadonlyArray<Member> = []
    const handingOff = new Set<number>()
    /** When this worker's current rebalance began (undefined: none in progress). */
    let rebalanceStartedAt: number | undefined
    const wake = yield* Queue.sliding<void>(1)
    const maxMoves = Math.max(1, Math.ceil(shardCount * config.rebalanceFraction))
    const margin = Math.floor(config.refreshMillis / 2)

    const readMap = Effect.gen(function*() {
      const leases = yield* coordinator.map(shardCount)
      const addresses = new Map(members.map((member) => [member.id, member.address]))
      owners = leases.map((lease) => {
        if (lease === undefined) return undefined
        const address = addresses.get(lease.owner)
        return address === undefined ? undefined : { worker: lease.owner, address, epoch: lease.epoch }
      })
    })

    /** Counts and announces a shard the runtime has just dropped: its lease is gone. */
    const lost = (shard: number) => {
      handingOff.delete(shard)
      Metric.withAttributes(leaseRenewals, { outcome: "lost" }).updateUnsafe(1, context)
      publish({ _tag: "ShardLost", shard })
    }

    /** Renews this worker's leases; shards it no longer holds are dropped at once. */
    const renewLeases = (runtimeOwned: ReadonlyArray<number>) =>
      Effect.gen(function*() {
        const started = Date.now()
        const renewed = yield* coordinator.renew(config.workerId, runtimeOwned, config.leaseMillis)
        for (const shard of runtimeOwned) {
          if (renewed.has(shard)) {
            runtime.setLeaseDeadline(shard, started + config.leaseMillis - margin)
            Metric.withAttributes(leaseRenewals, { outcome: "ok" }).updateUnsafe(1, context)
          } else {
            runtime.dropShard(shard)
            lost(shard)
          }
        }
      })

    /** Drains a shard, then releases its lease; runs beside the refresh loop. */
    const handOff = (shard: number) =>
      Effect.gen(function*() {
        yield* runtime.stopShard(shard)
        yield* Effect.ignore(coordinator.release(config.workerId, [shard]))
        Metric.withAttributes(shardMoves, { action: "released" }).updateUnsafe(1, context)
        publish({ _tag: "ShardReleased", shard })
        yield* coordinator.notify
      }).pipe(Effect.ensuring(Effect.sync(() => handingOff.delete(shard))))

    // The assignment is a pure function of the membership: computed again only when it changes.
    let lastTarget: { readonly key: string; readonly target: ReadonlyArray<string | null> } | undefined
    const targetOf = (live: ReadonlyArray<Member>): ReadonlyArray<string | null> => {
      const workers = live.map((member) => ({ id: member.id, weight: member.weight })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      const key = JSON.stringify(workers)
      if (lastTarget === undefined || lastTarget.key !== key) lastTarget = { key, target: assign(workers, shardCount) }
      return lastTarget.target
    }

    /**
     * Follows the cluster's pause request: on a new one, holds this runtime's commits (waiting
     * for the round with the store) and says so; while it lasts, says so every round; when it is
     * gone, drops what a restore made stale, lets commits run and says so. Answers whether
     * writes are held, so the round moves no shard meanwhile.
     */
    let following: PauseRequest | undefined
    /** Ends the request followed so far: a restore's stale writes and state go first. */
    const endPause = (resume: boolean) =>
      Effect.gen(function*() {
        const ended = following!
        following = undefined
        try {
          if (ended.restart) forgetBefore(runtime)()
        } finally {
          if (resume) runtime.resumeWrites()
        }
        publish({ _tag: "WritesResumed", token: ended.token })
        yield* coordinator.ackPause(ended.token, config.workerId, "resumed", PAUSE_ACK_MILLIS)
      })
    const followPause = Effect.gen(function*() {
      const request = yield* coordinator.pauseRequest
      if (request !== undefined) {
        if (following?.token !== request.token) {
          // A request that ended unseen (another followed at once) still gets its clean-up;
          // commits stay held for the new one.
          if (following !== undefined) yield* endPause(false)
          else yield* runtime.pauseWrites
          following = request
          publish({ _tag: "WritesPaused", token: request.token })
        }
        yield* coordinator.ackPause(request.token, config.workerId, "paused", PAUSE_ACK_MILLIS)
        return true
      }
      if (following !== undefined) yield* endPause(true)
      return false
    })

    /**
     * A client reads the membership and the map, nothing else. It routes by its own shard count
     * and hash, so it checks them against the cluster's every round (the first workers may
     * start after it): with other settings its map is emptied (nothing is routed, messages end
     * `ShardNotOwned`) rather than sending messages to workers that do not own them.
     */
    const clientRound = Effect.gen(function*() {
      const checked = yield* Effect.result(coordinator.checkSettings(settings))
      if (Result.isFailure(checked)) {
        owners = new Array(shardCount).fill(undefined)
        return yield* Effect.fail(checked.failure)
      }
      members = (yield* coordinator.members).workers
      yield* readMap
    })

    const ownerRound = Effect.gen(function*() {
      const alive = yield* coordinator.heartbeat(config.workerId, config.leaseMillis)
      if (!alive) yield* coordinator.join(description, settings, config.leaseMillis)
      const membership = yield* coordinator.members
      members = membership.workers
      const runtimeOwned = [...runtime.owned().keys()]
      yield* renewLeases(runtimeOwned)
      // Shards do not move while writes are held: a hand-off waits for commits.
      const held = yield* followPause
      const target = targetOf(members)
      // The rate limit: at most `maxMoves` moves per round, hand-offs still draining included,
      // so a rolling deploy never has more than that share of the shards in motion here.
      const budget = held ? 0 : Math.max(0, maxMoves - handingOff.size)
      const giveUp = [...runtime.owned().keys()].filter((shard) => target[shard] !== config.workerId && !handingOff.has(shard)).slice(0, budget)
      const wanted = target.flatMap((owner, shard) => (owner === config.workerId && !runtime.owned().has(shard) ? [shard] : [])).slice(0, budget - giveUp.length)
      const started = Date.now()
      if (giveUp.length + wanted.length > 0 && rebalanceStartedAt === undefined) {
        rebalanceStartedAt = started
        publish({ _tag: "RebalanceStarted", moves: giveUp.length + wanted.length })
      }
      for (const shard of giveUp) {
        handingOff.add(shard)
        yield* Effect.forkDetach(handOff(shard))
      }
      const acquired = yield* coordinator.acquire(config.workerId, wanted, config.leaseMillis)
      for (const [shard, acquiredEpoch] of acquired) {
        let epoch = acquiredEpoch
        let taken = yield* runtime.assignShard(shard, epoch)
        if (!taken.held) {
          // The store has registered this epoch or a later one: coordination fell behind it (its
          // data was lost, or the store is another Redis). Writing at such an epoch would not be
          // fenced apart from the tenure that registered it, so the shard takes a new one above.
          const raised = yield* coordinator.raiseEpoch(config.workerId, shard, taken.registered, config.leaseMillis)
          if (raised === undefined) continue
          yield* Effect.logWarning(`shard ${shard}: coordination epoch ${epoch} is not above the one the store registered (${taken.registered}); took the shard at ${raised}`)
          epoch = raised
          taken = yield* runtime.assignShard(shard, epoch)
          if (!taken.held) {
            yield* Effect.ignore(coordinator.release(config.workerId, [shard]))
            continue
          }
        }
        runtime.setLeaseDeadline(shard, started + config.leaseMillis - margin)
        Metric.withAttributes(shardMoves, { action: "acquired" }).updateUnsafe(1, context)
        publish({ _tag: "ShardAcquired", shard, epoch })
      }
      if (acquired.size > 0) yield* coordinator.notify
      // Ended once a round plans no move and no hand-off is still draining.
      if (rebalanceStartedAt !== undefined && giveUp.length + wanted.length === 0 && handingOff.size === 0) {
        const millis = Date.now() - rebalanceStartedAt
        rebalanceStartedAt = undefined
        rebalances.updateUnsafe(1, context)
        rebalanceSeconds.updateUnsafe(millis / 1000, context)
        publish({ _tag: "RebalanceEnded", millis })
      }
      ownedShards.updateUnsafe(runtime.owned().size, context)
      yield* readMap
    })
    const round = clientOnly ? clientRound : ownerRound

    const start = Effect.gen(function*() {
      if (started) return
      started = true
      if (!clientOnly) yield* coordinator.join(description, settings, config.leaseMillis)
      else yield* coordinator.checkSettings(settings)
      const notices = yield* Scope.provide(coordinator.notices, scope)
      // Notices only wake the loop early; the loop runs at least every refresh either way.
      yield* Effect.forkIn(Effect.forever(Effect.flatMap(Queue.take(notices), () => Queue.offer(wake, undefined))), scope)
      const loop = Effect.forever(
        Effect.gen(function*() {
          const exit = yield* Effect.exit(round)
          if (Exit.isFailure(exit)) {
            Metric.withAttributes(leaseRenewals, { outcome: "failed" }).updateUnsafe(1, context)
            yield* Effect.logWarning("shard manager round failed; retrying", exit.cause)
            // Leases that ran out meanwhile are gone whatever happens next: let those shards go now.
            for (const shard of runtime.dropLapsed()) lost(shard)
          }
          yield* Effect.race(Effect.sleep(config.refreshMillis), Queue.take(wake))
        })
      )
      yield* round.pipe(Effect.ignore)
      yield* Effect.forkIn(loop, scope)
    })
    // A graceful leave: out of the membership first (the others take over the assignment), then
    // every shard drained and released. The refresh loop has stopped by then (it closes with the
    // scope, before this finalizer runs), so the leases of shards still draining are renewed
    // here until every hand-off is done: a drain may take up to `stopShardTimeoutMillis`, far
    // past a lease, and its commits must not be refused for a lease it let lapse.
    yield* Effect.addFinalizer(() =>
      clientOnly || !started ? Effect.void : Effect.gen(function*() {
        yield* Effect.ignore(coordinator.leave(config.workerId))
        yield* Effect.ignore(coordinator.notify)
        const keepLeases = Effect.forever(
          Effect.andThen(Effect.sleep(config.refreshMillis), Effect.ignore(Effect.suspend(() => renewLeases([...runtime.owned().keys()]))))
        )
        yield* Effect.raceFirst(
          Effect.forEach([...runtime.owned().keys()], (shard) => handOff(shard), { concurrency: 32, discard: true }),
          keepLeases
        )
      })
    )
    return {
      workerId: config.workerId,
      config,
      shardCount,
      owner: (shard) => owners[shard],
      members: () => members,
      requestRefresh: () => void Queue.offerUnsafe(wake, undefined),
      start,
      // The runtime learns of fencing from the store; the cluster's stream says so too, read from
      // the runtime's events only while someone listens.
      events: Stream.merge(
        Stream.fromPubSub(events),
        runtime.events.pipe(
          Stream.filter((event): event is Extract<EntityEvent, { readonly _tag: "ShardFenced" }> => event._tag === "ShardFenced"),
          Stream.map((event): ShardEvent => ({ _tag: "FencingRejected", shard: event.shard }))
        )
      )
    } satisfies ShardManagerShape
  })

/** The manager as a layer; `sharedStore` says whether the store may be shared by several workers. */
export const layer = (options: Options): Layer.Layer<ShardManager, unknown, EntityRuntime | Coordinator> =>
  Layer.effect(ShardManager, make(options))
