/**
 * A worker of a Redis-coordinated cluster, as one layer: the store (Redis for a cluster of many;
 * LevelDB or memory for a cluster of one), the entity runtime (owning the shards the manager
 * acquires), the worker transport, the shard manager and the router as the `Messenger`. An
 * application hosting its own entity types registers them on top with `EntityRuntime.register`;
 * `clientOnly` joins no shard at all and only routes (a process that sends without hosting).
 */
import { Effect, Layer } from "effect"
import { SocketServer } from "effect/socket"
import * as EntityRuntime from "../actors/EntityRuntime.js"
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
  /** host:port the worker transport listens on (port 0 picks one); others reach it there. */
  readonly transport: { readonly host: string; readonly port: number }
  readonly sharding?: Partial<ShardingConfigShape> | undefined
  readonly runtime?: Partial<RuntimeConfigShape> | undefined
}

/** Parses `--store redis|level:<dir>|memory`. */
export const parseStore = (text: string): StoreOption | string => {
  if (text === "redis") return { _tag: "Redis" }
  if (text === "memory") return { _tag: "Memory" }
  if (text.startsWith("level:") && text.length > 6) return { _tag: "Level", directory: text.slice(6) }
  return `--store ${text} must be redis, level:<directory> or memory`
}

const stores = (options: WorkerOptions) => {
  const store = options.store
  const backend: Layer.Layer<StoreBackend, unknown, RedisConnection.RedisConnection> = store._tag === "Redis"
    ? RedisStore.layerBackend({ keyPrefix: store.keyPrefix }).pipe(
      Layer.provide(store.url === undefined ? Layer.empty : RedisConnection.layer({ url: store.url }))
    )
    : store._tag === "Level"
    ? LevelStore.layerBackend({ directory: store.directory })
    : MemoryStore.layerBackend
  return layerStores(MeteredStore.layer.pipe(Layer.provide(backend)))
}

/** A worker of a cluster; its layer leaves the cluster gracefully when its scope closes. */
export const layer = (options: WorkerOptions) => {
  const runtimeConfig = Layer.succeed(RuntimeConfig)({ ...runtimeDefaults, ...options.runtime })
  const connection = RedisConnection.layer({ url: options.redisUrl })
  const base = EntityRuntime.layerRuntime.pipe(
    Layer.provideMerge(stores(options)),
    Layer.provideMerge(connection),
    Layer.provideMerge(runtimeConfig)
  )
  const transport = WorkerTransport.layerServer(options.transport)
  // The manager advertises the transport's bound address, known once the server listens.
  const cluster = Layer.unwrap(Effect.gen(function*() {
    const server = yield* SocketServer.SocketServer
    const port = (server.address as { readonly port?: number }).port ?? options.transport.port
    const sharding: ShardingConfigShape = { ...shardingDefaults(), ...options.sharding, address: `${options.transport.host}:${port}` }
    const shared = options.store._tag === "Redis"
    return Router.layer.pipe(
      Layer.provideMerge(ShardManager.layer({ sharedStore: shared })),
      Layer.provideMerge(Coordinator.layer({ cluster: sharding.clusterName })),
      Layer.provideMerge(Layer.succeed(ShardingConfig)(sharding))
    )
  }))
  return cluster.pipe(Layer.provideMerge(transport), Layer.provideMerge(base))
}
