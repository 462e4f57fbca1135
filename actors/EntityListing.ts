/**
 * Listing the entities of a type from the store, across every shard, in id order: what
 * `Feed.list` and the index listing of search maintenance need. A direct-style entity keeps its
 * records in its own slice of its shard's partition (namespace `<type>.<namespace>`, keys
 * `<id> 0x00 <key>`), so the entities that keep one record in a namespace of their own under the
 * empty key (a feed's head, an index's definition) are listed by scanning that namespace in
 * every shard. Reads committed data only.
 */
import { Effect } from "effect"
import { compare, concat, fromBytes, prefixSuccessor, toBytes } from "../persistence/internal/bytes.js"
import { KeyValueStore } from "../persistence/KeyValueStore.js"
import { InvalidArgument, type ReadError } from "../persistence/StoreError.js"
import { RuntimeConfig } from "./RuntimeConfig.js"
import { partitionOf } from "./ShardId.js"

/** Options of a listing. */
export interface ListOptions {
  /** Only ids that start with this. */
  readonly prefix?: string | undefined
  /** 1 to 1,000 (default 100). */
  readonly limit?: number | undefined
  /** Resume after the last id of a previous page (its `cursor`). */
  readonly cursor?: string | undefined
}

/** A page of ids, and the cursor of the next one (null at the end). */
export interface Page {
  readonly ids: ReadonlyArray<string>
  readonly cursor: string | null
}

/** Records read per store scan at least. */
const SCAN_PAGE = 256

const NUL = new Uint8Array(1)

/**
 * The ids of entities of `type` holding their one record of `namespace` (and, with
 * `keep`, whose record and id, as UTF-8, pass it), in UTF-8 order. Each shard is scanned for at most `limit` ids
 * below the current `limit`-th best, so memory stays O(limit) however many entities there are.
 */
export const list = (
  type: string,
  namespace: string,
  options: ListOptions = {},
  keep: (value: Uint8Array, id: Uint8Array) => boolean = () => true
): Effect.Effect<Page, ReadError | InvalidArgument, KeyValueStore> =>
  Effect.gen(function*() {
    const limit = options.limit ?? 100
    if (!Number.isInteger(limit) || limit < 1 || limit > 1_000) return yield* Effect.fail(new InvalidArgument({ field: "limit", message: "must be an integer from 1 to 1000" }))
    let after: string | undefined
    if (options.cursor !== undefined) {
      after = Buffer.from(options.cursor, "base64url").toString("utf8")
      if (after.length === 0 || Buffer.from(after).toString("base64url") !== options.cursor) {
        return yield* Effect.fail(new InvalidArgument({ field: "cursor", message: "is not a listing cursor" }))
      }
    }
    const store = yield* KeyValueStore
    const { shardCount } = yield* RuntimeConfig
    const scoped = `${type}.${namespace}`
    const prefix = toBytes(options.prefix ?? "")
    const end = prefixSuccessor(prefix)
    // The best ids so far as UTF-8 bytes (the keys without their 0x00), compared as they are.
    let best: Array<Uint8Array> = []
    const afterKey = after === undefined ? undefined : toBytes(`${after}\u0000`)
    const start = afterKey !== undefined && Buffer.compare(afterKey, prefix) >= 0 ? { gt: afterKey } : { gte: prefix }
    // Records are read in pages of at least SCAN_PAGE, whatever `limit`, so records that `keep`
    // refuses (deleted feeds' heads stay) cost a read per page of them, not one each.
    const page = Math.max(limit, SCAN_PAGE)
    for (let shard = 0; shard < shardCount; shard++) {
      let lower: { readonly gt: Uint8Array } | { readonly gte: Uint8Array } = start
      // Bounded: each round moves past `page` records of this shard, or ends its range. Records
      // that `keep` refuses are passed over, so they can never hide the ones after them; once a
      // page yields `limit` ids, nothing later in this shard can rank among the first `limit`.
      for (;;) {
        const worst = best.length === limit ? best[best.length - 1] : undefined
        const upper = worst !== undefined ? { lt: concat([worst, NUL]) } : end === undefined ? {} : { lt: end }
        const entries = yield* store.scan(partitionOf(shard), scoped, { ...lower, ...upper, limit: page })
        const ids: Array<Uint8Array> = []
        for (const entry of entries) {
          const id = entry.key.subarray(0, entry.key.length - 1)
          if (keep(entry.value, id)) ids.push(id)
        }
        if (ids.length > 0) best = [...best, ...ids].sort(compare).slice(0, limit)
        if (entries.length < page || ids.length >= limit) break
        lower = { gt: entries[entries.length - 1]!.key }
      }
    }
    const last = best[best.length - 1]
    return { ids: best.map(fromBytes), cursor: best.length === limit && last !== undefined ? Buffer.from(last).toString("base64url") : null }
  })
