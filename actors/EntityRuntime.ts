/**
 * The in-process entity host on nact. It keeps one nact actor per resident entity, activates an
 * entity on its first message (recovering its state from the store first), runs one message at a
 * time per entity, commits writes by group commit, answers after the commit, passivates idle
 * entities and enforces the resident cap. It is told which shards it owns and at which epoch
 * (`assignShard`) and when to let one go (`stopShard`); it knows nothing about how ownership is
 * decided (Redis coordination lives in `sharding/`).
 *
 * The runtime is itself a `Messenger`: in the embedded default, clients deliver straight to it.
 */
import { Context, Effect, Exit, Layer, Option, PubSub, Schedule, type Scope, Stream } from "effect"
import { dispatch, spawn, start, stop } from "nact"
import { IndexedStore } from "../persistence/IndexedStore.js"
import { utf8Length } from "../persistence/internal/bytes.js"
import { KeyValueStore } from "../persistence/KeyValueStore.js"
import { StoreBackend } from "../persistence/StoreBackend.js"
import { StoreConfig } from "../persistence/StoreConfig.js"
import type { InvalidArgument, ReadError } from "../persistence/StoreError.js"
import { type AnyEntityType, type Behavior, ID_BYTES_MAX, type Registered } from "./Entity.js"
import { InvalidMessage, MailboxFull, Overloaded, ShardNotOwned, UnknownEntityType } from "./EntityError.js"
import type { EntityEvent } from "./EntityEvent.js"
import { EntityMetrics } from "./EntityMetrics.js"
import { AskTracker } from "./internal/askTracker.js"
import { EntityCell } from "./internal/entityCell.js"
import { GroupCommitter } from "./internal/groupCommit.js"
import { type Holding, Holdings, HoldingsLog } from "./internal/holdings.js"
import type { Host } from "./internal/host.js"
import { type Envelope, Messenger, type MessengerShape } from "./Messenger.js"
import { RuntimeConfig, type RuntimeConfigShape, validate } from "./RuntimeConfig.js"
import { partitionOf, shardOf } from "./ShardId.js"

export { type Holding, HoldingsLog, type HoldingsLogShape } from "./internal/holdings.js"

/** Counts for dashboards and tests. */
export interface RuntimeStats {
  readonly resident: number
  readonly residentByType: ReadonlyMap<string, number>
  readonly mailboxDepth: number
  readonly ownedShards: number
  readonly asksInFlight: number
}

/** The entity runtime. */
export interface EntityRuntimeShape extends MessengerShape {
  readonly config: RuntimeConfigShape
  /** Registers an entity type's behaviour, with the services its handlers need. */
  readonly register: <R>(behavior: Behavior<R>) => Effect.Effect<void, InvalidArgument, R>
  /**
   * Takes ownership of a shard at `epoch`, registered with the store so that older owners are
   * fenced; unless the store has seen `epoch` or a later one already: a tenure at such an epoch
   * could not be fenced apart from the one that registered it, so nothing is taken and the
   * store's epoch is answered (the caller takes the shard again above it).
   */
  readonly assignShard: (shard: number, epoch: number) => Effect.Effect<{ readonly held: boolean; readonly registered: number }, ReadError>
  /** Stops taking messages for a shard, drains and commits them, passivates its entities. */
  readonly stopShard: (shard: number) => Effect.Effect<void>
  /**
   * Lets a shard go at once, without draining: its lease is lost or about to be. Its messages are
   * refused (`ShardNotOwned`) and its commits fail; its entities passivate when idle.
   */
  readonly dropShard: (shard: number) => void
  /**
   * Sets the time (ms since the epoch) after which this process must not commit for a shard:
   * its lease ends then unless renewed. Commits check it just before they are sent.
   */
  readonly setLeaseDeadline: (shard: number, deadline: number) => void
  /**
   * Drops every owned shard whose lease deadline has passed (another worker may own it by now)
   * and answers them: what a worker that cannot reach its coordinator does, so its holdings end
   * at their deadlines instead of lingering until it can renew.
   */
  readonly dropLapsed: () => ReadonlyArray<number>
  /**
   * Holds every commit from now on (a dump or restore of the whole store is running); completes
   * once no commit is with the store. Messages are still handled; their replies wait.
   */
  readonly pauseWrites: Effect.Effect<void>
  /** Lets commits run again. */
  readonly resumeWrites: () => void
  /**
   * While paused: fails every write waiting to commit, answering its messages
   * `EntityUnavailable` with `reason` (the store was restored under them); answers how many
   * entities lost writes.
   */
  readonly discardWaitingWrites: (reason: string) => number
  /**
   * Makes every resident entity recover from the store before its next message (the store was
   * restored under it); a handler running now is answered `EntityUnavailable`. Call it while
   * writes are paused and after `discardWaitingWrites`, so no write from the old state lands.
   */
  readonly resetEntities: (reason: string) => void
  /** Shards owned now, with their epochs. */
  readonly owned: () => ReadonlyMap<number, number>
  /** Shards held now and recently, with epochs and times (see `internal/holdings.ts`). */
  readonly holdings: () => ReadonlyArray<Holding>
  /** The lifecycle events as they happen (a slow subscriber loses the oldest). */
  readonly events: Stream.Stream<EntityEvent>
  readonly stats: () => RuntimeStats
  /** The shard of an entity. */
  readonly shardOf: (type: string, id: string) => number
  /** A registered entity type by name. */
  readonly entityType: (name: string) => AnyEntityType | undefined
}

/** The entity runtime service. */
export class EntityRuntime extends Context.Service<EntityRuntime, EntityRuntimeShape>()("shardfeed/EntityRuntime") {}

const ASKS_IN_FLIGHT_MAX = 1_000_000
const EVENTS_BUFFER = 4_096

/**
 * Checks an entity id: 1 to `bytesMax` (the type's `idBytesMax`, 512 by default) bytes of UTF-8
 * without U+0000 (which separates keys).
 */
export const validateEntityId = (type: string, id: string, bytesMax = ID_BYTES_MAX): InvalidMessage | undefined =>
  typeof id !== "string" || id.length === 0 || utf8Length(id) > bytesMax || id.includes("\u0000")
    ? new InvalidMessage({ entity: `${type}/${String(id).slice(0, 64)}`, field: "id", message: `must be 1 to ${bytesMax} bytes of UTF-8 without U+0000` })
    : undefined

/** Builds a runtime that owns no shard yet. */
export const make: Effect.Effect<EntityRuntimeShape, InvalidArgument, KeyValueStore | IndexedStore | StoreBackend | Scope.Scope> = Effect.gen(function*() {
  const config = yield* Effect.flatMap(RuntimeConfig, validate)
  const storeConfig = yield* StoreConfig
  const store = yield* KeyValueStore
  const indexed = yield* IndexedStore
  const context = yield* Effect.context<never>()
  const metrics = new EntityMetrics(context)
  const events = yield* PubSub.sliding<EntityEvent>(EVENTS_BUFFER)
  const system = start()
  const registry = new Map<string, Registered>()
  // Insertion order is the resident cap's CLOCK order: activation appends, and the hand moves an
  // entity used since it last passed to the back (see `makeRoom`).
  const cells = new Set<EntityCell>()
  // The same cells by type, then id: what `deliver` looks up for every message.
  const byTypeAndId = new Map<string, Map<string, EntityCell>>()
  const byShard = new Map<number, Set<EntityCell>>()
  const owned = new Map<number, number>()
  const stopping = new Set<number>()
  const leaseDeadlines = new Map<number, number>()
  const holdings = new Holdings((shard) => leaseDeadlines.get(shard), Date.now, yield* HoldingsLog)
  const tracker = new AskTracker(ASKS_IN_FLIGHT_MAX, Date.now)
  let mailboxDepth = 0
  let actorNames = 0

  // A shard past its lease deadline is neither served nor committed for: another worker may own it by now.
  const epochOf = (shard: number): number | undefined => {
    const deadline = leaseDeadlines.get(shard)
    return deadline !== undefined && Date.now() >= deadline ? undefined : owned.get(shard)
  }
  /** Ends the shard's holding (at its deadline, if that passed) and forgets it; answers whether it was owned. */
  const forget = (shard: number): boolean => {
    holdings.end(shard)
    const had = owned.delete(shard)
    stopping.delete(shard)
    leaseDeadlines.delete(shard)
    return had
  }
  const committer = new GroupCommitter(
    yield* StoreBackend,
    epochOf,
    config.commitOpsMax,
    (report) => metrics.committed(report.outcome, report.writes, report.writesByType, report.participants),
    (shard) => {
      forget(shard)
      PubSub.publishUnsafe(events, { _tag: "ShardFenced", shard })
    }
  )

  const host: Host = {
    config,
    storeConfig,
    store,
    indexed,
    committer,
    now: Date.now,
    epochOf,
    event: (event) => void PubSub.publishUnsafe(events, event),
    dequeued: () => {
      mailboxDepth--
    },
    handled: (type, seconds, outcome) => metrics.handled(type, seconds, outcome),
    poisoned: (type) => metrics.poisoned(type),
    log: (message, detail) => {
      Effect.runFork(Effect.logWarning(message, ...(detail === undefined ? [] : [String(detail)])))
    }
  }

  const passivate = (cell: EntityCell, reason: "idle" | "resident-cap" | "shard-stopped") => {
    cell.moveTo("passivating")
    cells.delete(cell)
    const ofType = byTypeAndId.get(cell.type)
    ofType?.delete(cell.id)
    byShard.get(cell.shard)?.delete(cell)
    stop(cell.actor as Parameters<typeof stop>[0])
    cell.moveTo("stopped")
    mailboxDepth -= cell.queued
    metrics.active(cell.type, ofType?.size ?? 0)
    PubSub.publishUnsafe(events, { _tag: "Passivated", type: cell.type, id: cell.id, reason })
  }

  /**
   * Makes room under the resident cap (the CLOCK approximation of least recently used): from the
   * oldest activation on, an entity used since the hand last passed gets a second chance (moved
   * to the back, where this same scan meets it again), an idle one that was not is passivated.
   * The scan is bounded by two turns of the hand: after one, no flag is left, so the least
   * recently used idle entity is found in the second. Only when every resident entity is busy
   * is there no room (`Overloaded`). Each turn clears the flags it passes, so the cost is
   * amortized over the activations that follow.
   */
  const makeRoom = (): boolean => {
    let scanned = 0
    const scanMax = 2 * cells.size + 1
    for (const cell of cells.values()) {
      if (cells.size < config.residentEntitiesMax) return true
      if (scanned++ >= scanMax) break
      if (cell.touched) {
        cell.touched = false
        cells.delete(cell)
        cells.add(cell)
      } else if (cell.idle) {
        passivate(cell, "resident-cap")
      }
    }
    return cells.size < config.residentEntitiesMax
  }

  const activate = (registered: Registered, id: string, shard: number): EntityCell | undefined => {
    if (cells.size >= config.residentEntitiesMax && !makeRoom()) return undefined
    const cell = new EntityCell(host, registered, id, shard, partitionOf(shard))
    cell.actor = spawn(system, (state: unknown, envelope: Envelope) => {
      const pending = cell.handle(envelope)
      return pending === undefined ? state : pending.then(() => state)
    }, `e${++actorNames}`)
    cells.add(cell)
    let ofType = byTypeAndId.get(cell.type)
    if (ofType === undefined) byTypeAndId.set(cell.type, (ofType = new Map()))
    ofType.set(id, cell)
    let shardCells = byShard.get(shard)
    if (shardCells === undefined) {
      shardCells = new Set()
      byShard.set(shard, shardCells)
    }
    shardCells.add(cell)
    metrics.active(cell.type, ofType.size)
    return cell
  }

  const refuse = (envelope: Envelope, error: unknown) => {
    if (envelope.reply !== undefined) envelope.reply(Exit.fail(error))
    else host.log(`message ${envelope.tag} to ${envelope.type}/${envelope.id} refused`, (error as { _tag?: string })._tag)
  }

  /** Finds or activates the entity of an envelope, or refuses the envelope. */
  const cellFor = (envelope: Envelope): EntityCell | undefined => {
    const existing = byTypeAndId.get(envelope.type)?.get(envelope.id)
    if (existing !== undefined) {
      if (!existing.registered.behavior.handlers.has(envelope.tag)) {
        refuse(envelope, new InvalidMessage({ entity: existing.label, field: "message", message: `unknown message ${envelope.tag}` }))
        return undefined
      }
      if (!owned.has(existing.shard) || stopping.has(existing.shard)) {
        refuse(envelope, new ShardNotOwned({ entity: existing.label, shard: existing.shard }))
        return undefined
      }
      existing.touched = true
      return existing
    }
    const registered = registry.get(envelope.type)
    if (registered === undefined) return void refuse(envelope, new UnknownEntityType({ type: envelope.type }))
    const badId = validateEntityId(envelope.type, envelope.id, registered.behavior.entity.idBytesMax)
    if (badId !== undefined) return void refuse(envelope, badId)
    if (!registered.behavior.handlers.has(envelope.tag)) {
      return void refuse(envelope, new InvalidMessage({ entity: `${envelope.type}/${envelope.id}`, field: "message", message: `unknown message ${envelope.tag}` }))
    }
    const shard = shardOf(envelope.type, envelope.id, config.shardCount)
    if (!owned.has(shard) || stopping.has(shard)) {
      return void refuse(envelope, new ShardNotOwned({ entity: `${envelope.type}/${envelope.id}`, shard }))
    }
    const cell = activate(registered, envelope.id, shard)
    if (cell === undefined) refuse(envelope, new Overloaded({ resident: cells.size }))
    return cell
  }

  const deliver = (incoming: Envelope): void => {
    const envelope = tracker.track(incoming)
    if (envelope === undefined) return
    const cell = cellFor(envelope)
    if (cell === undefined) return
    const capacity = cell.registered.behavior.options.mailboxCapacityMax ?? config.mailboxCapacityMax
    if (cell.queued >= capacity) return refuse(envelope, new MailboxFull({ entity: cell.label, capacity }))
    cell.queued++
    mailboxDepth++
    dispatch(cell.actor as Parameters<typeof dispatch>[0], envelope)
  }

  /** Passivates idle entities past their type's idle time; runs on the runtime's own fiber. */
  const sweep = Effect.sync(() => {
    const now = Date.now()
    for (const cell of [...cells.values()]) {
      const idleMillis = cell.registered.behavior.options.idlePassivationMillis ?? config.idlePassivationMillis
      if (cell.idle && (now - cell.lastActive >= idleMillis || !owned.has(cell.shard) && !stopping.has(cell.shard))) {
        passivate(cell, now - cell.lastActive >= idleMillis ? "idle" : "shard-stopped")
      }
    }
    metrics.mailbox(mailboxDepth)
  })
  const sweepEvery = Math.max(10, Math.min(1_000, Math.floor(config.idlePassivationMillis / 4)))
  yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(sweepEvery)))
  yield* Effect.forkScoped(Effect.repeat(Effect.sync(() => tracker.tick()), Schedule.spaced(50)))

  const waitIdle = (shardCells: ReadonlySet<EntityCell>, deadline: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      const busy = [...shardCells].some((cell) => !cell.idle)
      if (!busy || Date.now() >= deadline) return Effect.void
      return Effect.flatMap(Effect.sleep(5), () => waitIdle(shardCells, deadline))
    })

  const stopShard = (shard: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (!owned.has(shard)) return Effect.void
      const started = Date.now()
      stopping.add(shard)
      const shardCells = byShard.get(shard) ?? new Set<EntityCell>()
      return Effect.map(waitIdle(shardCells, started + config.stopShardTimeoutMillis), () => {
        const count = shardCells.size
        for (const cell of [...shardCells]) {
          if (!cell.idle) host.log(`entity ${cell.label} still busy when shard ${shard} stopped`)
          passivate(cell, "shard-stopped")
        }
        byShard.delete(shard)
        forget(shard)
        PubSub.publishUnsafe(events, { _tag: "ShardStopped", shard, entities: count, millis: Date.now() - started })
      })
    })

  yield* Effect.addFinalizer(() =>
    Effect.forEach([...owned.keys()], stopShard, { discard: true, concurrency: "unbounded" }).pipe(
      Effect.andThen(Effect.sync(() => stop(system)))
    )
  )

  const dropShard = (shard: number) => {
    if (!forget(shard)) return
    PubSub.publishUnsafe(events, { _tag: "ShardStopped", shard, entities: byShard.get(shard)?.size ?? 0, millis: 0 })
  }

  const runtime: EntityRuntimeShape = {
    config,
    deliver,
    register: <R>(behavior: Behavior<R>) =>
      Effect.map(Effect.context<R>(), (handlerContext) => {
        // Handlers may always talk to other entities: through the messenger of the registering
        // context (the cluster router, when there is one), or else this runtime.
        const messenger = Option.getOrElse(Context.getOption(handlerContext as Context.Context<never>, Messenger), () => runtime)
        const context = Context.add(handlerContext, Messenger, messenger) as Context.Context<never>
        registry.set(behavior.entity.type, { behavior: behavior as Behavior<unknown>, context })
      }),
    assignShard: (shard, epoch) =>
      Effect.gen(function*() {
        const partition = partitionOf(shard)
        const before = yield* store.epoch(partition)
        if (before >= epoch) return { held: false, registered: before }
        const registered = yield* store.registerEpoch(partition, epoch)
        if (registered > epoch) return { held: false, registered }
        owned.set(shard, epoch)
        holdings.begin(shard, epoch)
        PubSub.publishUnsafe(events, { _tag: "ShardAssigned", shard, epoch })
        return { held: true, registered }
      }),
    stopShard,
    dropShard,
    dropLapsed: () => {
      const lapsed = [...owned.keys()].filter((shard) => epochOf(shard) === undefined)
      for (const shard of lapsed) dropShard(shard)
      return lapsed
    },
    setLeaseDeadline: (shard, deadline) => {
      leaseDeadlines.set(shard, deadline)
    },
    pauseWrites: Effect.promise(() => committer.pause()),
    resumeWrites: () => committer.resume(),
    discardWaitingWrites: (reason) => committer.discardWaiting(reason),
    resetEntities: (reason) => {
      for (const cell of cells.values()) cell.forget(reason)
    },
    owned: () => owned,
    holdings: () => holdings.snapshot(),
    events: Stream.fromPubSub(events),
    stats: () => ({ resident: cells.size, residentByType: new Map(Array.from(byTypeAndId, ([type, ofType]) => [type, ofType.size] as const)), mailboxDepth, ownedShards: owned.size, asksInFlight: tracker.size }),
    shardOf: (type, id) => shardOf(type, id, config.shardCount),
    entityType: (name) => registry.get(name)?.behavior.entity
  }
  return runtime
})

/**
 * Takes every shard at the next epoch: the embedded default, where this process is the only
 * writer. The epoch still grows on every start, so a stale process could never write late.
 */
export const assignAllShards = (runtime: EntityRuntimeShape): Effect.Effect<void, ReadError, KeyValueStore> =>
  Effect.flatMap(KeyValueStore, (store) =>
    Effect.forEach(
      Array.from({ length: runtime.config.shardCount }, (_, shard) => shard),
      (shard) => Effect.flatMap(store.epoch(partitionOf(shard)), (epoch) => Effect.asVoid(runtime.assignShard(shard, epoch + 1))),
      { concurrency: 16, discard: true }
    ))

/** A runtime owning no shards (the scale-out coordinator assigns them); the router is the `Messenger`. */
export const layerRuntime: Layer.Layer<EntityRuntime, InvalidArgument, KeyValueStore | IndexedStore | StoreBackend> = Layer.effect(EntityRuntime, make)

/** A runtime owning no shards, also as the `Messenger` (every shard this process will own). */
export const layer: Layer.Layer<EntityRuntime | Messenger, InvalidArgument, KeyValueStore | IndexedStore | StoreBackend> = Layer.effectContext(
  Effect.map(make, (runtime) => Context.make(EntityRuntime, runtime).pipe(Context.add(Messenger, runtime)))
)

/** A runtime owning every shard: the embedded default on one process. */
export const layerLocal: Layer.Layer<EntityRuntime | Messenger, InvalidArgument | ReadError, KeyValueStore | IndexedStore | StoreBackend> = Layer.effectContext(
  Effect.gen(function*() {
    const runtime = yield* make
    yield* assignAllShards(runtime)
    return Context.make(EntityRuntime, runtime).pipe(Context.add(Messenger, runtime))
  })
)

/** Registers a behaviour when the layer is built. */
export const register = <R>(behavior: Behavior<R>): Layer.Layer<never, InvalidArgument, EntityRuntime | R> =>
  Layer.effectDiscard(Effect.flatMap(EntityRuntime, (runtime) => runtime.register(behavior)))
