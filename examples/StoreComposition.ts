/**
 * Composing storage layers in an Effect program: LevelDB as the backend, wrapped by a key prefix
 * (a tenant) and by metrics, with the key-value and indexed stores on top. Swap the backend line
 * for `RedisStore.layerBackend(...)` plus a `RedisConnection` layer and nothing else changes.
 *
 * Run: `npm run build && node dist/examples/StoreComposition.js [directory]`
 */
import { Effect, Layer, Metric } from "effect"
import { IndexedStore, KeyValueStore, LevelStore, MeteredStore, PrefixedStore } from "../src/index.js"

const directory = process.argv[2] ?? "./data/example-store"

/** LevelDB, then a tenant prefix, then metrics: each layer wraps the backend below it. */
const backend = MeteredStore.layer.pipe(
  Layer.provide(PrefixedStore.layer("tenant-a")),
  Layer.provide(LevelStore.layerBackend({ directory }))
)

const stores = IndexedStore.layerStores(backend)

const program = Effect.gen(function*() {
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
    `appended at index ${committed.firstIndexes[0]}; newest events: ${events.map((event) => Buffer.from(event.value).toString()).join(", ")}; ${writes} metered series`
  )
})

Effect.runPromise(program.pipe(Effect.provide(stores))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
