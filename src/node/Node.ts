/**
 * A shardfeed node on the embedded default: LevelDB in one directory, every shard local, the
 * built-in entity types registered, and the HTTP API serving them. `serve` runs one for the
 * scope; closing the scope (SIGTERM or SIGINT under `NodeRuntime.runMain`) stops accepting
 * requests, drains and commits every shard, and closes the store.
 */
import { Effect, Layer, type Scope } from "effect"
import type { AddressInfo } from "node:net"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig, type RuntimeConfigShape } from "../../actors/RuntimeConfig.js"
import * as WritePause from "../../actors/WritePause.js"
import { layerStores } from "../../persistence/IndexedStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import type { Messenger } from "../../actors/Messenger.js"
import type { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as MeteredStore from "../../persistence/MeteredStore.js"
import * as Feed from "../feed/Feed.js"
import type { StoreBackend } from "../../persistence/StoreBackend.js"
import * as AdminRoutes from "../server/AdminRoutes.js"
import * as ClusterRoutes from "../server/ClusterRoutes.js"
import * as EntityRoutes from "../server/EntityRoutes.js"
import * as FeedRoutes from "../server/FeedRoutes.js"
import * as SearchRoutes from "../server/SearchRoutes.js"
import * as SortedSetRoutes from "../server/SortedSetRoutes.js"
import * as DeadLetters from "../durable/DeadLetters.js"
import type * as DurableConfig from "../durable/DurableConfig.js"
import * as DurableMessages from "../durable/DurableMessages.js"
import * as Maintenance from "../durable/Maintenance.js"
import * as DurableRoutes from "../server/DurableRoutes.js"
import * as Search from "../search/Search.js"
import * as SearchEntity from "../search/SearchEntity.js"
import * as SortedSetEntity from "../sortedset/SortedSetEntity.js"
import * as HttpServer from "../server/HttpServer.js"
import * as ClusterPause from "../../sharding/ClusterPause.js"
import type { Coordinator } from "../../sharding/Coordinator.js"
import type { ShardManager } from "../../sharding/ShardManager.js"
import * as Worker from "../../sharding/Worker.js"
import * as ClusterView from "./ClusterView.js"

/** The settings of a node's durable work (where it has some: a Redis). */
export interface DurableWorkOptions {
  /** Seconds between record compactions of the API's feeds (default 600; 0: none). */
  readonly compactEverySeconds?: number | undefined
  /** Settings of durable messages (attempts, de-duplication window, lock duration...). */
  readonly durable?: Partial<DurableConfig.DurableConfig> | undefined
}

/** How to run a node. */
export interface NodeOptions extends DurableWorkOptions {
  /** The LevelDB directory (created when missing). */
  readonly data: string
  readonly host: string
  readonly port: number
  /** When set, every route but `/health` requires it. */
  readonly token?: string | undefined
  readonly workerId?: string | undefined
  readonly bodyLimitBytes?: number | undefined
  /** fsync every commit (default false: a commit survives a crash of the process, not of the machine). */
  readonly sync?: boolean | undefined
  /** Overrides of the runtime's bounds (shard count, mailbox capacity, ...). */
  readonly runtime?: Partial<RuntimeConfigShape> | undefined
  /** A Redis for durable work (durable messages and dead letters through BullMQ); none by default. */
  readonly redis?: string | undefined
}

/** The node refused to start; the message says why and what to do. */
export class NodeConfigError extends Error {
  readonly _tag = "NodeConfigError"
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"])
const COMPACT_EVERY_DEFAULT = 600
/** Not `Maintenance`'s default queue, so an application's own maintenance on the same Redis is apart. */
const BUILT_IN_MAINTENANCE_QUEUE = "shardfeed-builtin-maintenance"
const COMPACT_EVERY_MAX = 365 * 24 * 3_600

/** Refuses settings that would be unsafe or invalid. */
export const validate = (options: NodeOptions): Effect.Effect<NodeOptions, NodeConfigError> => {
  if (!LOOPBACK.has(options.host) && (options.token === undefined || options.token.length === 0)) {
    return Effect.fail(new NodeConfigError(
      `refusing to listen on ${options.host} without a token: anyone who reaches it could read and write every feed. ` +
        "Pass --token (or SHARDFEED_TOKEN), or bind to 127.0.0.1."
    ))
  }
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    return Effect.fail(new NodeConfigError(`--http port ${options.port} must be 0 to 65535`))
  }
  const compact = options.compactEverySeconds
  if (compact !== undefined && (!Number.isInteger(compact) || compact < 0 || compact > COMPACT_EVERY_MAX)) {
    return Effect.fail(new NodeConfigError(`--compact-every ${compact} must be 0 (never) to ${COMPACT_EVERY_MAX} seconds (a year)`))
  }
  return Effect.succeed(options)
}

/** The services of a single node: store, runtime with every shard, built-in entity types. */
export const layer = (options: NodeOptions) => {
  const runtimeConfig: RuntimeConfigShape = { ...defaults, ...options.runtime }
  const stores = layerStores(MeteredStore.layer.pipe(Layer.provide(LevelStore.layerBackend({ directory: options.data, sync: options.sync }))))
  const view = ClusterView.layerSingle({ workerId: options.workerId ?? "node-1", address: `${options.host}:${options.port}`, shardCount: runtimeConfig.shardCount })
  return Layer.mergeAll(builtIns, WritePause.layerLocal, view).pipe(
    Layer.provideMerge(EntityRuntime.layerLocal),
    Layer.provideMerge(stores),
    Layer.provideMerge(Layer.succeed(RuntimeConfig)(runtimeConfig))
  )
}

/** What the routes of a node need. */
export type NodeServices =
  | ClusterView.ClusterView
  | EntityRuntime.EntityRuntime
  | Messenger
  | KeyValueStore
  | StoreBackend
  | Search.Search
  | WritePause.WritePause

/** The routes every node serves, with or without durable work. */
const common = [...ClusterRoutes.routes, ...FeedRoutes.routes(), ...SortedSetRoutes.routes, ...SearchRoutes.routes, ...AdminRoutes.routes]

/** Every route of HTTP API v1 this node serves. */
export const routes: ReadonlyArray<HttpServer.Route<NodeServices>> = [...common, ...EntityRoutes.routes]

/** Every route of a node with durable work: durable messages, dead letters, queue depths and maintenance. */
export const durableRoutes: ReadonlyArray<
  HttpServer.Route<NodeServices | DurableMessages.DurableMessages | DeadLetters.DeadLetters | Maintenance.Maintenance>
> = [...common, ...EntityRoutes.askRoutes, ...DurableRoutes.routes, ...DurableRoutes.maintenanceRoutes]

/**
 * Durable work over `services` (whose messenger delivers it), through the Redis at `url`, under
 * the BullMQ key prefix `prefix`: durable messages, and maintenance that compacts the records of
 * the API's feeds and merges the API's search indexes every `compactEverySeconds` (once per
 * period however many processes run it).
 * The built-in maintenance has a queue of its own, whose schedules only this code sets: each
 * process registers its own period (the last one started wins) and 0 removes the schedule.
 */
const withDurable = <E>(services: Layer.Layer<NodeServices, E>, url: string, prefix: string, options: DurableWorkOptions) => {
  const { compactEverySeconds = COMPACT_EVERY_DEFAULT, durable = {} } = options
  const every = { everyMillis: compactEverySeconds * 1_000 }
  const tasks = compactEverySeconds === 0 ? [] : [Maintenance.feedCompaction(Feed.Json, every), Maintenance.searchMergeAll(every)]
  const maintenance = Maintenance.layer({ url, prefix, queueName: BUILT_IN_MAINTENANCE_QUEUE, tasks, prune: true })
  return Layer.mergeAll(DurableMessages.layer({ url, config: { ...durable, prefix } satisfies Partial<DurableConfig.DurableConfig> }), maintenance).pipe(
    Layer.provideMerge(services)
  )
}

/** Serves the HTTP API for the scope; answers the bound address. */
export const serve = (options: NodeOptions): Effect.Effect<AddressInfo, unknown, Scope.Scope> =>
  Effect.flatMap(validate(options), (valid) =>
    valid.redis === undefined
      ? serveWith(layer(valid), routes, valid)
      : serveWith(withDurable(layer(valid), valid.redis, "shardfeed", valid), durableRoutes, valid))

/** The built-in entity types, registered with whatever runtime and messenger are below. */
export const builtIns = Layer.mergeAll(Feed.layer(Feed.Json), SortedSetEntity.layer, SearchEntity.layer, Search.layer)

/** Builds `services` for the scope and serves `served` over them. */
const serveWith = <R, E>(
  services: Layer.Layer<R, E>,
  served: ReadonlyArray<HttpServer.Route<R>>,
  options: Pick<NodeOptions, "host" | "port" | "token" | "bodyLimitBytes">
): Effect.Effect<AddressInfo, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(services)
    return yield* HttpServer.make(served, {
      host: options.host,
      port: options.port,
      token: options.token,
      bodyLimitBytes: options.bodyLimitBytes
    }).pipe(Effect.provideContext(context))
  })

/** How to run a worker of a Redis-coordinated cluster that also serves HTTP. */
export interface WorkerNodeOptions extends Worker.WorkerOptions, DurableWorkOptions {
  readonly host: string
  readonly port: number
  readonly token?: string | undefined
  readonly bodyLimitBytes?: number | undefined
}

/** A worker's services: the cluster worker, the built-in entity types, its cluster view. */
export const workerLayer = (options: Worker.WorkerOptions) => {
  // Writes are held cluster-wide where the store is shared; a worker on its own store holds its
  // own; a gateway holds no data and refuses dumps and restores.
  const pause: Layer.Layer<WritePause.WritePause, never, EntityRuntime.EntityRuntime | Coordinator | ShardManager> = options.clientOnly === true
    ? Layer.succeed(WritePause.WritePause)(WritePause.refusing)
    : options.store._tag === "Redis"
    ? ClusterPause.layer
    : WritePause.layerLocal
  return Layer.merge(ClusterView.layerFromManager, pause).pipe(Layer.provideMerge(Worker.layer(options, builtIns)))
}

/**
 * Joins a cluster as a worker and serves the HTTP API for the scope (any worker routes any
 * request). Durable work runs on the coordination Redis, in BullMQ queues of the cluster's own
 * prefix (hash-tagged on a Redis Cluster: `{shardfeed.<cluster>}`), every worker consuming them.
 */
/** The BullMQ key prefix of a cluster's durable work (`dead-letters --cluster` reads the same). */
export const clusterPrefix = (cluster: string): string => `shardfeed.${cluster}`

export const serveWorker = (options: WorkerNodeOptions): Effect.Effect<AddressInfo, unknown, Scope.Scope> =>
  Effect.flatMap(validate({ ...options, data: "" }), () => {
    const services = workerLayer(options)
    if (options.clientOnly === true) return serveWith(services, routes, options)
    const cluster = options.sharding?.clusterName ?? "default"
    return serveWith(withDurable(services, options.redisUrl, clusterPrefix(cluster), options), durableRoutes, options)
  })
