/**
 * A worker of a Redis-coordinated cluster, as one layer: the store (Redis for a cluster of many;
 * LevelDB or memory for a cluster of one), the entity runtime (owning the shards the manager
 * acquires), the worker transport, the shard manager and the router as the `Messenger`. An
 * application hosting its own entity types registers them on top with `EntityRuntime.register`;
 * `clientOnly` joins no shard at all and only routes (a process that sends without hosting).
 * Entity types to host are given to `layer`, which registers them before the worker joins.
 */
import { Effect, Layer } from "effect"
import { SocketServer } from "effect/socket"
import * as Fs from "node:fs"
import * as EntityRuntime from "../actors/EntityRuntime.js"
import { HoldingsLog, type HoldingsLogShape } from "../actors/EntityRuntime.js"
import { defaults as runtimeDefaults, RuntimeConfig, type RuntimeConfigShape } from "../actors/RuntimeConfig.js"
import { layerStores } from "../persistence/IndexedStore.js"
import * as LevelStore from "../persistence/LevelStore.js"
import * as MemoryStore from "../persistence/MemoryStore.js"
import * as MeteredStore from "../persistence/MeteredStore.js"
import type { StoreBackend } from "../persistence/StoreBackend.js"
import * as RedisConnection from "../persistence/RedisConnection.js"
import * as RedisStore from "../persistence/RedisStore.js"
import * as Coordinator from "./Coordinator.js"
import * as Router from "./Router.js"
import { defaults as shardingDefaults, ShardingConfig, type ShardingConfigShape } from "./ShardingConfig.js"
import * as ShardManager from "./ShardManager.js"
import * as WorkerTransport from "./WorkerTransport.js"

/** Where a worker keeps data. */
export type StoreOption =
  | { readonly _tag: "Redis"; readonly url?: string | undefined; readonly keyPrefix?: string | undefined }
  | { readonly _tag: "Level"; readonly directory: string }
  | { readonly _tag: "Memory" }

/** How to run a worker. */
export interface WorkerOptions {
  /** The coordination Redis (`redis://`, `rediss://`, or comma-separated cluster nodes). */
  readonly redisUrl: string
  readonly store: StoreOption
  /**
   * host:port the worker transport listens on (port 0 picks one); others reach it there, unless
   * `advertise` gives the host:port they reach it on (behind NAT, a port mapping or a proxy).
   */
  readonly transport: { readonly host: string; readonly port: number; readonly advertise?: string | undefined }
  readonly sharding?: Partial<ShardingConfigShape> | undefined
  readonly runtime?: Partial<RuntimeConfigShape> | undefined
  /** Hosts no shard and joins no membership: only routes messages to the workers (default false). */
  readonly clientOnly?: boolean | undefined
  /**
   * A file to append one JSON line to per shard holding begun or ended (shard, epoch, since,
   * until): an audit of when this worker could write each shard, written synchronously.
   */
  readonly holdingsLog?: string | undefined
}

/** Appends holdings to a file as JSON lines, one synchronous write each. */
const layerHoldingsLog = (path: string) =>
  Layer.effect(HoldingsLog)(
    Effect.map(
      Effect.acquireRelease(Effect.sync(() => Fs.openSync(path, "a")), (fd) => Effect.sync(() => Fs.closeSync(fd))),
      (fd): HoldingsLogShape => (holding) => {
        try {
          Fs.writeSync(fd, `${JSON.stringify(holding)}\n`)
        } catch {
          // An audit log that cannot be written must not stop the worker.
        }
      }
    )
  )

/** Parses `--store redis|level:<dir>|memory`. */
export const parseStore = (text: string): StoreOption | string => {
  if (text === "redis") return { _tag: "Redis" }
  if (text === "memory") return { _tag: "Memory" }
  if (text.startsWith("level:") && text.length > 6) return { _tag: "Level", directory: text.slice(6) }
  return `--store ${text} must be redis, level:<directory> or memory`
}

const stores = (options: WorkerOptions) => {
  const store = options.store
  // Each cluster's data is its own by default: shard epochs registered by one cluster must never
  // fence (or be fenced by) another cluster's shard of the same number on the same Redis.
  const cluster = options.sharding?.clusterName ?? shardingDefaults().clusterName
  const backend: Layer.Layer<StoreBackend, unknown, RedisConnection.RedisConnection> = store._tag === "Redis"
    ? RedisStore.layerBackend({ keyPrefix: store.keyPrefix ?? `sf.${cluster}` }).pipe(
      Layer.provide(store.url === undefined ? Layer.empty : RedisConnection.layer({ url: store.url }))
    )
    : store._tag === "Level"
    ? LevelStore.layerBackend({ directory: store.directory })
    : MemoryStore.layerBackend
  return layerStores(MeteredStore.layer.pipe(Layer.provide(backend)))
}

/**
 * A worker of a cluster: `entities` registers the entity types it hosts (with the router as
 * their messenger), and only then does it join the cluster and take shards, so no message
 * reaches it for a type it does not know yet. Its layer leaves the cluster gracefully when its
 * scope closes.
 */
export const layer = <ROut = never, E = never, RIn = never>(
  options: WorkerOptions,
  entities: Layer.Layer<ROut, E, RIn> = Layer.empty as unknown as Layer.Layer<ROut, E, RIn>
) => {
  const runtimeConfig = Layer.succeed(RuntimeConfig)({ ...runtimeDefaults, ...options.runtime })
  const connection = RedisConnection.layer({ url: options.redisUrl })
  // A client writes nothing: its runtime never owns a shard, so it needs no real store.
  const base = EntityRuntime.layerRuntime.pipe(
    Layer.provideMerge(stores(options.clientOnly === true ? { ...options, store: { _tag: "Memory" } } : options)),
    Layer.provideMerge(connection),
    Layer.provideMerge(runtimeConfig),
    Layer.provideMerge(options.holdingsLog === undefined ? Layer.empty : layerHoldingsLog(options.holdingsLog))
  )
  const transport = WorkerTransport.layerServer(options.transport)
  // The manager advertises the transport's bound address, known once the server listens.
  const cluster = Layer.unwrap(Effect.gen(function*() {
    const server = yield* SocketServer.SocketServer
    const port = (server.address as { readonly port?: number }).port ?? options.transport.port
    const address = options.transport.advertise ?? `${options.transport.host}:${port}`
    const sharding: ShardingConfigShape = { ...shardingDefaults(), ...options.sharding, address }
    const shared = options.store._tag === "Redis"
    return Router.layer.pipe(
      Layer.provideMerge(ShardManager.layer({ sharedStore: shared, clientOnly: options.clientOnly })),
      Layer.provideMerge(Coordinator.layer({ cluster: sharding.clusterName })),
      Layer.provideMerge(Layer.succeed(ShardingConfig)(sharding))
    )
  }))
  const hosted = entities.pipe(Layer.provideMerge(cluster.pipe(Layer.provideMerge(transport), Layer.provideMerge(base))))
  return Layer.effectDiscard(Effect.flatMap(ShardManager.ShardManager, (manager) => manager.start)).pipe(Layer.provideMerge(hosted))
}
