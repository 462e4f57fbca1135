/**
 * Shared pieces of the feed tests: a node hosting feeds on given stores, and a JSON feed type
 * whose clock the test controls.
 */
import { Layer, Schema } from "effect"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { RuntimeConfig, defaults } from "../../actors/RuntimeConfig.js"
import type { IndexedStore } from "../../persistence/IndexedStore.js"
import type { KeyValueStore } from "../../persistence/KeyValueStore.js"
import type { StoreBackend } from "../../persistence/StoreBackend.js"
import * as Feed from "../../src/feed/Feed.js"

/** The clock of the model's feed type: the test sets it. */
export const clock = { now: 1_000 }

/**
 * JSON feeds whose clock the test controls, with small records so that paging crosses many, and
 * compaction steps of three records so that compaction goes on in steps between other messages.
 */
export const ModelFeed = Feed.define("model", { entry: Schema.Json, clock: () => clock.now, limits: { recordEntriesMax: 4, compactRecordsMax: 3 } })

/** A node hosting the model's feeds and JSON feeds on `stores`. */
export const feedNode = <E>(stores: Layer.Layer<KeyValueStore | IndexedStore | StoreBackend, E>, shardCount = 16) =>
  Layer.mergeAll(Feed.layer(ModelFeed), Feed.layer(Feed.Json)).pipe(
    Layer.provideMerge(EntityRuntime.layerLocal),
    Layer.provideMerge(stores),
    Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount }))
  )

