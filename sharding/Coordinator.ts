/**
 * Shard coordination through Redis: membership with expiring heartbeats, shard leases whose
 * epoch grows on every acquisition (in the same Lua script), the shard map, and change notices
 * over pub/sub. Each operation is one script or command (see `internal/clusterRedis.ts`); this
 * module only runs them and reads their replies. It decides nothing: `ShardManager` does.
 */
import { Context, Effect, Layer, Queue, Schema, type Scope } from "effect"
import type { RedisClient } from "../persistence/RedisConnection.js"
import { describeError, RedisConnection } from "../persistence/RedisConnection.js"
import { StoreUnavailable } from "../persistence/StoreError.js"
import * as ClusterRedis from "./internal/clusterRedis.js"

/** What a worker tells the cluster about itself. */
export interface WorkerDescription {
  readonly id: string
  readonly address: string
  readonly weight: number
  /** Whether the worker's store is shared between processes (Redis) or local (LevelDB, memory). */
  readonly shared: boolean
  readonly startedAt: number
}

/** A live worker and when its heartbeat expires (Redis time, ms). */
export interface Member extends WorkerDescription {
  readonly expiry: number
}

/** The cluster refused a worker: its settings differ, or a local store cannot be shared. */
export class JoinRefused extends Schema.TaggedError<JoinRefused>()("JoinRefused", {
  reason: Schema.Literals(["settings", "local-store"]),
  message: Schema.String
}) {}

/** One shard's lease as the map reads it. */
export interface Lease {
  readonly owner: string
  readonly epoch: number
}

/** A request that every worker hold its writes (a dump or restore of the whole store runs). */
export interface PauseRequest {
  readonly token: string
  /** After it ends, workers drop waiting writes and entity state (a restore). */
  readonly restart: boolean
}

/** Where a worker stands on a pause request. */
export type PauseAck = "paused" | "resumed"

/** Redis coordination for one cluster. */
export interface CoordinatorShape {
  readonly join: (worker: WorkerDescription, settings: string, leaseMillis: number) => Effect.Effect<void, JoinRefused | StoreUnavailable>
  /**
   * Checks, without joining, that `settings` are the cluster's (a client-only process routes by
   * them): fails `JoinRefused` when they differ; passes when no worker has set them yet.
   */
  readonly checkSettings: (settings: string) => Effect.Effect<void, JoinRefused | StoreUnavailable>
  /** Extends this worker's membership; false when it had expired (join again). */
  readonly heartbeat: (workerId: string, leaseMillis: number) => Effect.Effect<boolean, StoreUnavailable>
  /** The live workers and Redis's current time. */
  readonly members: Effect.Effect<{ readonly workers: ReadonlyArray<Member>; readonly now: number }, StoreUnavailable>
  readonly leave: (workerId: string) => Effect.Effect<void, StoreUnavailable>
  /** Takes the free shards among `shards`; answers the shards held afterwards with their epochs. */
  readonly acquire: (workerId: string, shards: ReadonlyArray<number>, leaseMillis: number) => Effect.Effect<ReadonlyMap<number, number>, StoreUnavailable>
  /**
   * Gives a shard this worker holds a new epoch above `above` (renewing its lease); answers it,
   * or undefined when the lease is no longer this worker's.
   */
  readonly raiseEpoch: (workerId: string, shard: number, above: number, leaseMillis: number) => Effect.Effect<number | undefined, StoreUnavailable>
  /** Renews this worker's leases; answers the shards still held. */
  readonly renew: (workerId: string, shards: ReadonlyArray<number>, leaseMillis: number) => Effect.Effect<ReadonlySet<number>, StoreUnavailable>
  readonly release: (workerId: string, shards: ReadonlyArray<number>) => Effect.Effect<number, StoreUnavailable>
  /** Every shard's lease (undefined while free). */
  readonly map: (shardCount: number) => Effect.Effect<ReadonlyArray<Lease | undefined>, StoreUnavailable>
  /** Tells every worker that shards or membership changed. */
  readonly notify: Effect.Effect<void>
  /** Change notices for the scope (a bounded queue; a slow reader loses the oldest). */
  readonly notices: Effect.Effect<Queue.Dequeue<void>, StoreUnavailable, Scope.Scope>
  /** The pause request in force, if any. */
  readonly pauseRequest: Effect.Effect<PauseRequest | undefined, StoreUnavailable>
  /** Places a pause request that lives `ttlMillis` unless renewed; false when another is in force. */
  readonly requestPause: (request: PauseRequest, ttlMillis: number) => Effect.Effect<boolean, StoreUnavailable>
  /** Renews this request's lifetime; false when it is no longer in force. */
  readonly renewPause: (request: PauseRequest, ttlMillis: number) => Effect.Effect<boolean, StoreUnavailable>
  /** Withdraws this request (no-op when another is in force). */
  readonly clearPause: (request: PauseRequest) => Effect.Effect<void, StoreUnavailable>
  /** Records where this worker stands on request `token`. */
  readonly ackPause: (token: string, workerId: string, ack: PauseAck, ttlMillis: number) => Effect.Effect<void, StoreUnavailable>
  /** The workers' answers to request `token`. */
  readonly pauseAcks: (token: string) => Effect.Effect<ReadonlyMap<string, PauseAck>, StoreUnavailable>
}

/** The coordinator service. */
export class Coordinator extends Context.Service<Coordinator, CoordinatorShape>()("shardfeed/Coordinator") {}

/** Options of the Redis coordinator. */
export interface CoordinatorOptions {
  readonly cluster: string
  /** Prefix of every key (default `sf`). */
  readonly keyPrefix?: string | undefined
}

interface ScriptCommands {
  sfJoin(numberOfKeys: number, ...args: Array<string>): Promise<Array<string>>
  sfHeartbeat(numberOfKeys: number, ...args: Array<string>): Promise<number>
  sfMembers(numberOfKeys: number, ...args: Array<string>): Promise<Array<string>>
  sfLeave(numberOfKeys: number, ...args: Array<string>): Promise<number>
  sfAcquire(numberOfKeys: number, ...args: Array<string>): Promise<Array<string | number>>
  sfRaiseEpoch(numberOfKeys: number, ...args: Array<string>): Promise<number>
  sfRenew(numberOfKeys: number, ...args: Array<string>): Promise<Array<number>>
  sfRelease(numberOfKeys: number, ...args: Array<string>): Promise<number>
  sfClearPause(numberOfKeys: number, ...args: Array<string>): Promise<number>
  sfRenewPause(numberOfKeys: number, ...args: Array<string>): Promise<number>
}

const NOTICES_MAX = 64

/** A stored pause request; anything else there is treated as a request to hold writes. */
const parsePause = (value: string): PauseRequest => {
  try {
    const parsed = JSON.parse(value) as Partial<PauseRequest>
    return { token: String(parsed.token ?? value), restart: parsed.restart === true }
  } catch {
    return { token: value, restart: false }
  }
}

/** Builds the coordinator over the process's `RedisConnection`. */
export const make = (options: CoordinatorOptions): Effect.Effect<CoordinatorShape, never, RedisConnection> =>
  Effect.gen(function*() {
    const connection = yield* RedisConnection
    const client: RedisClient = connection.client
    const scripts: Record<string, string> = {
      sfJoin: ClusterRedis.join,
      sfHeartbeat: ClusterRedis.heartbeat,
      sfMembers: ClusterRedis.members,
      sfLeave: ClusterRedis.leave,
      sfAcquire: ClusterRedis.acquire,
      sfRaiseEpoch: ClusterRedis.raiseEpoch,
      sfRenew: ClusterRedis.renew,
      sfRelease: ClusterRedis.release,
      sfClearPause: ClusterRedis.clearPause,
      sfRenewPause: ClusterRedis.renewPause
    }
    for (const [name, lua] of Object.entries(scripts)) client.defineCommand(name, { lua })
    const commands = client as unknown as ScriptCommands
    const keys = ClusterRedis.keys(options.keyPrefix ?? "sf", options.cluster)

    const call = <A>(f: () => Promise<A>): Effect.Effect<A, StoreUnavailable> =>
      Effect.tryPromise({ try: f, catch: (cause) => new StoreUnavailable({ backend: "redis-coordination", message: describeError(cause) }) })

    const coordinator: CoordinatorShape = {
      join: (worker, settings, leaseMillis) =>
        Effect.flatMap(
          call(() => commands.sfJoin(3, keys.settings, keys.workers, keys.info, worker.id, JSON.stringify(worker), String(leaseMillis), settings, worker.shared ? "1" : "0")),
          ([verdict, detail]) => {
            if (verdict === "ok") return Effect.void
            if (verdict === "settings") {
              return Effect.fail(new JoinRefused({ reason: "settings", message: `the cluster runs with settings ${detail}, this worker with ${settings}` }))
            }
            return Effect.fail(new JoinRefused({
              reason: "local-store",
              message: `worker ${detail} is in the cluster and ${worker.shared ? "its" : "this worker's"} store is local to one process; ` +
                "workers of one cluster must share a Redis store (--store redis)"
            }))
          }
        ),
      checkSettings: (settings) =>
        Effect.flatMap(call(() => client.get(keys.settings)), (existing) =>
          existing === null || existing === settings
            ? Effect.void
            : Effect.fail(new JoinRefused({ reason: "settings", message: `the cluster runs with settings ${existing}, this client with ${settings}` }))),
      heartbeat: (workerId, leaseMillis) => Effect.map(call(() => commands.sfHeartbeat(1, keys.workers, workerId, String(leaseMillis))), (alive) => alive === 1),
      members: Effect.map(call(() => commands.sfMembers(2, keys.workers, keys.info)), (flat) => {
        const now = Number(flat[flat.length - 1])
        const workers: Array<Member> = []
        for (let i = 0; i + 2 < flat.length; i += 3) {
          const description = JSON.parse(flat[i + 1]!) as Partial<WorkerDescription>
          workers.push({
            id: flat[i]!,
            address: description.address ?? "",
            weight: description.weight ?? 1,
            shared: description.shared === true,
            startedAt: description.startedAt ?? 0,
            expiry: Number(flat[i + 2])
          })
        }
        return { workers, now }
      }),
      leave: (workerId) => Effect.asVoid(call(() => commands.sfLeave(2, keys.workers, keys.info, workerId))),
      acquire: (workerId, shards, leaseMillis) =>
        shards.length === 0
          ? Effect.succeed(new Map())
          : Effect.map(
            call(() => commands.sfAcquire(1 + shards.length, keys.epochs, ...shards.map(keys.lease), workerId, String(leaseMillis), ...shards.map(String))),
            (flat) => {
              const held = new Map<number, number>()
              for (let i = 0; i + 1 < flat.length; i += 2) held.set(Number(flat[i]), Number(flat[i + 1]))
              return held
            }
          ),
      raiseEpoch: (workerId, shard, above, leaseMillis) =>
        Effect.map(
          call(() => commands.sfRaiseEpoch(2, keys.epochs, keys.lease(shard), workerId, String(shard), String(above), String(leaseMillis))),
          (epoch) => (Number(epoch) > 0 ? Number(epoch) : undefined)
        ),
      renew: (workerId, shards, leaseMillis) =>
        shards.length === 0
          ? Effect.succeed(new Set())
          : Effect.map(
            call(() => commands.sfRenew(shards.length, ...shards.map(keys.lease), workerId, String(leaseMillis))),
            (flags) => new Set(shards.filter((_, i) => flags[i] === 1))
          ),
      release: (workerId, shards) =>
        shards.length === 0 ? Effect.succeed(0) : call(() => commands.sfRelease(shards.length, ...shards.map(keys.lease), workerId)),
      map: (shardCount) =>
        Effect.map(
          call(() => client.mget(...Array.from({ length: shardCount }, (_, shard) => keys.lease(shard)))),
          (values) =>
            values.map((value) => {
              if (value === null) return undefined
              const space = value.indexOf(" ")
              return { owner: value.slice(0, space), epoch: Number(value.slice(space + 1)) }
            })
        ),
      notify: Effect.ignore(call(() => client.publish(keys.changes, "changed"))),
      notices: Effect.gen(function*() {
        const queue = yield* Queue.sliding<void>(NOTICES_MAX)
        // The listener only hands notices to the queue; the manager drains it at its own pace.
        // After a reconnection, notices published meanwhile are lost: one wakes the manager.
        const notice = () => void Queue.offerUnsafe(queue, undefined)
        yield* connection.subscribe(keys.changes, notice, notice)
        return queue
      }),
      pauseRequest: Effect.map(call(() => client.get(keys.pause)), (value) => (value === null ? undefined : parsePause(value))),
      requestPause: (request, ttlMillis) =>
        Effect.map(call(() => client.set(keys.pause, JSON.stringify(request), "PX", ttlMillis, "NX")), (reply) => reply === "OK"),
      renewPause: (request, ttlMillis) =>
        Effect.map(call(() => commands.sfRenewPause(1, keys.pause, JSON.stringify(request), String(ttlMillis))), (renewed) => renewed === 1),
      clearPause: (request) => Effect.asVoid(call(() => commands.sfClearPause(1, keys.pause, JSON.stringify(request)))),
      ackPause: (token, workerId, ack, ttlMillis) =>
        Effect.asVoid(call(() => client.multi().hset(keys.pauseAcks, workerId, `${token} ${ack}`).pexpire(keys.pauseAcks, ttlMillis).exec())),
      pauseAcks: (token) =>
        Effect.map(call(() => client.hgetall(keys.pauseAcks)), (all) => {
          const acks = new Map<string, PauseAck>()
          for (const [worker, value] of Object.entries(all)) {
            const [of, ack] = value.split(" ")
            if (of === token && (ack === "paused" || ack === "resumed")) acks.set(worker, ack)
          }
          return acks
        })
    }
    return coordinator
  })

/** The Redis coordinator as a layer (over the process's `RedisConnection`). */
export const layer = (options: CoordinatorOptions): Layer.Layer<Coordinator, never, RedisConnection> => Layer.effect(Coordinator, make(options))
