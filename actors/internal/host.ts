/**
 * What an entity cell needs from its runtime: stores, limits, the group committer, the clock,
 * shard ownership, and where to report events, metrics and logs.
 */
import type { IndexedStoreShape } from "../../persistence/IndexedStore.js"
import type { KeyValueStoreShape } from "../../persistence/KeyValueStore.js"
import type { StoreConfigShape } from "../../persistence/StoreConfig.js"
import type { EntityEvent } from "../EntityEvent.js"
import type { RuntimeConfigShape } from "../RuntimeConfig.js"
import type { GroupCommitter } from "./groupCommit.js"

/** The runtime, as its cells see it. */
export interface Host {
  readonly config: RuntimeConfigShape
  readonly storeConfig: StoreConfigShape
  readonly store: KeyValueStoreShape
  readonly indexed: IndexedStoreShape
  readonly committer: GroupCommitter
  readonly now: () => number
  /**
   * The epoch this process holds a shard at, or undefined when it does not hold it (or its
   * lease deadline passed): the tenure an entity's state in memory belongs to.
   */
  readonly epochOf: (shard: number) => number | undefined
  readonly event: (event: EntityEvent) => void
  /** A message left a mailbox. */
  readonly dequeued: () => void
  readonly handled: (type: string, seconds: number, outcome: "ok" | "error") => void
  readonly poisoned: (type: string) => void
  readonly log: (message: string, detail?: unknown) => void
}
