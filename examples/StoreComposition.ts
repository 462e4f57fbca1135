/**
 * Composing storage layers in an Effect program: LevelDB as the backend, wrapped by a key prefix
 * (a tenant) and by metrics, with the key-value and indexed stores on top. Then the same program
 * on Redis: only the backend line changes (`RedisStore.layerBackend` over a `RedisConnection`).
 *
 * Run: `npm run build && node dist/examples/StoreComposition.js [directory] [redis://host:port]`
 * (without a Redis URL, only the LevelDB run).
 */
import { Effect, Layer, Metric } from "effect"
import { IndexedStore, KeyValueStore, LevelStore, MeteredStore, PrefixedStore, RedisConnection, RedisStore, StoreBackend } from "../src/index.js"

const directory = process.argv[2] ?? "./data/example-store"
const redisUrl = process.argv[3]

/** Any backend, then a tenant prefix, then metrics: each layer wraps the one below it. */
const composed = <E, R>(base: Layer.Layer<StoreBackend.StoreBackend, E, R>) =>
  IndexedStore.layerStores(MeteredStore.layer.pipe(Layer.provide(PrefixedStore.layer("tenant-a")), Layer.provide(base)))

const onLevel = composed(LevelStore.layerBackend({ directory }))
const onRedis = (url: string) =>
  composed(RedisStore.layerBackend({ keyPrefix: "example" }).pipe(Layer.provide(RedisConnection.layer({ url }))))

const program = (backend: string) => Effect.gen(function*() {
  const store = yield* KeyValueStore.KeyValueStore
  const topics = yield* IndexedStore.IndexedStore
  // One atomic batch: a state update and two events of the same partition move together.
  const committed = yield* store.batch("shard-1", [
    { op: "put", namespace: "wallets", key: "alice", value: JSON.stringify({ balance: 90 }) },
    { op: "append", topic: "wallet/alice", values: [JSON.stringify({ deposited: 100 }), JSON.stringify({ spent: 10 })] }
  ])
  const events = yield* topics.scan("shard-1", "wallet/alice", { reverse: true, limit: 5 })
  const metrics = yield* Metric.snapshot
  const writes = metrics.filter((metric) => metric.id === "shardfeed_store_operations_total").length
  yield* Effect.log(
    `${backend}: appended at index ${committed.firstIndexes[0]}; newest events: ${events.map((event) => Buffer.from(event.value).toString()).join(", ")}; ${writes} metered series`
  )
})

const main = Effect.gen(function*() {
  yield* program("level").pipe(Effect.provide(onLevel))
  if (redisUrl !== undefined) yield* program("redis").pipe(Effect.provide(onRedis(redisUrl)))
})

Effect.runPromise(main).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
