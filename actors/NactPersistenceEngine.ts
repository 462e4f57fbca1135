/**
 * A nact persistence engine over shardfeed's stores, so that a plain nact `spawnPersistent` actor
 * keeps its events and snapshots in the memory, LevelDB or Redis backend:
 *
 *   const system = start(configurePersistence(NactPersistenceEngine.make(store, indexed)))
 *
 * Events of a persistence key are a topic of the indexed store (nact's sequence numbers are the
 * topic's indexes), snapshots are versioned values of the key-value store. Everything lives in one
 * partition (default `nact`). It does not shard or fence: nact's persistent actors are
 * single-process by design.
 */
import { Effect } from "effect"
import type { PersistenceEngine } from "nact"
import type { IndexedStoreShape } from "../persistence/IndexedStore.js"
import type { KeyValueStoreShape } from "../persistence/KeyValueStore.js"

/** The event shape nact hands to `persist`. */
interface NactEvent {
  readonly data: unknown
  readonly sequenceNumber: number
  readonly key: string
  readonly tags: ReadonlyArray<string>
  readonly createdAt: number
  readonly isDeleted?: boolean
}

/** The snapshot shape nact hands to `takeSnapshot`. */
interface NactSnapshot {
  readonly data: unknown
  readonly sequenceNumber: number
  readonly key: string
  readonly createdAt: number
}

const SNAPSHOTS = "nact-snapshots"
const PAGE = 1_000

const encode = (value: unknown) => JSON.stringify(value)
const decode = <A>(bytes: Uint8Array): A => JSON.parse(Buffer.from(bytes).toString("utf8")) as A

/** The engine nact calls; all methods return Promises, as nact expects. */
export interface NactEngine {
  /** The events of a key from `offset`: folded page by page with `reduce`, or all of them awaited as an array. */
  events(persistenceKey: string, offset?: number, limit?: number, tags?: ReadonlyArray<string>): PromiseLike<Array<NactEvent>> & {
    reduce<U>(reducer: (previous: U, event: NactEvent, index: number) => U, initial: U): Promise<U>
  }
  latestSnapshot(persistenceKey: string): Promise<NactSnapshot | undefined>
  takeSnapshot(snapshot: NactSnapshot): Promise<void>
  persist(event: NactEvent): Promise<NactEvent>
}

/**
 * Builds a nact persistence engine over a key-value store and an indexed store. It is typed as
 * nact's `PersistenceEngine` too, so `configurePersistence` takes it as it is; one cast is needed
 * for that, because nact's declarations type the event stream's `then` as an array of DOM `Event`s
 * (its `Event` name resolves to the DOM's), where nact itself yields persisted events, as this does.
 */
export const make = (store: KeyValueStoreShape, indexed: IndexedStoreShape, options: { readonly partition?: string } = {}): NactEngine & PersistenceEngine =>
  makeEngine(store, indexed, options) as NactEngine & PersistenceEngine

const makeEngine = (store: KeyValueStoreShape, indexed: IndexedStoreShape, options: { readonly partition?: string }): NactEngine => {
  const partition = options.partition ?? "nact"
  const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
  return {
    events: (persistenceKey, offset = 0, limit, tags) => {
      const reduce = async <U>(reducer: (previous: U, event: NactEvent, index: number) => U, initial: U): Promise<U> => {
        let accumulator = initial
        let next = offset + 1
        let index = 0
        const last = limit === undefined ? Number.MAX_SAFE_INTEGER : offset + limit
        // Page by page, so a long event log is never held in memory at once.
        while (next <= last) {
          const page = await run(indexed.scan(partition, persistenceKey, { from: next, to: last, limit: PAGE }))
          for (const item of page) {
            const event = decode<NactEvent>(item.value)
            if (tags === undefined || tags.length === 0 || tags.every((tag) => event.tags.includes(tag))) {
              accumulator = await reducer(accumulator, event, index++)
            }
            next = item.index + 1
          }
          if (page.length < PAGE) break
        }
        return accumulator
      }
      return {
        reduce,
        then: (onFulfilled, onRejected) =>
          reduce<Array<NactEvent>>((events, event) => {
            events.push(event)
            return events
          }, []).then(onFulfilled, onRejected)
      }
    },
    latestSnapshot: async (persistenceKey) => {
      const latest = await run(store.getLatest(partition, SNAPSHOTS, persistenceKey))
      return latest === undefined ? undefined : decode<NactSnapshot>(latest.value)
    },
    takeSnapshot: (snapshot) => run(store.putVersion(partition, SNAPSHOTS, snapshot.key, encode(snapshot), snapshot.sequenceNumber)),
    persist: async (event) => {
      const index = await run(indexed.append(partition, event.key, [encode(event)]))
      if (index !== event.sequenceNumber) {
        // nact numbers events itself; a gap means two writers share the key, which nact forbids.
        throw new Error(`nact event ${event.key}#${event.sequenceNumber} stored at index ${index}: the key has another writer`)
      }
      return event
    }
  }
}
