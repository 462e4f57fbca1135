/**
 * The sorted-set engine: Redis ZSET semantics over an in-memory `SortedSetState`, persisted
 * through a `StoreView` as a snapshot plus per-member deltas (see `internal/setStorage.ts`).
 * Every operation answers exactly what its Redis command answers (ZADD, ZINCRBY, ZREM, ZSCORE,
 * ZRANK/ZREVRANK, ZRANGE BYSCORE/BYLEX/REV/LIMIT, ZCOUNT, ZCARD, ZPOPMIN/ZPOPMAX, ZREMRANGEBY*).
 *
 * A write validates all of its input and plans its changes before touching anything, so bad
 * input changes nothing and stages nothing. It then applies the plan in memory and stages the
 * records on the view it is given; if staging fails, the memory is rolled back. The view is an
 * argument of each write because the entity runtime hands out a fresh staged view per message.
 *
 * It is entity-agnostic (no mailbox, no shard): one engine per set, one operation at a time
 * (the entity runtime's guarantee; overlapping writes are a defect). If the commit of a staged
 * view fails, the memory is ahead of the store: the caller must load the set again. It does not
 * parse HTTP.
 */
import { Context, Effect } from "effect"
import { InvalidArgument, type ReadError, type WriteError } from "../../persistence/StoreError.js"
import type { StoreView } from "../../persistence/StoreView.js"
import { indexInterval, parseIndex, parseLexBound, parseScoreBound } from "./internal/bounds.js"
import { hasLoneSurrogate, utf8LongerThan } from "./internal/memberOrder.js"
import { type Change, loadSet, type SetStorage } from "./internal/setStorage.js"
import { SortedSetCorrupt } from "./SortedSetError.js"
import type { RankInterval, ScoredMember, SortedSetState } from "./SortedSetState.js"

export type { ScoredMember } from "./SortedSetState.js"

/** The bounds of the engine, one named field each. */
export interface SortedSetConfigShape {
  /** Longest member in UTF-8 bytes (default 64 KiB, as the issue fixes); longer is `InvalidArgument`. */
  readonly memberBytesMax: number
  /**
   * Most members one add or remove may name, and one range removal may remove (default
   * 1,000,000): the work of one operation blocks the set, so it is bounded.
   */
  readonly membersPerOperationMax: number
  /** Most members one range or pop may return (default 100,000), so one reply stays bounded. */
  readonly resultMembersMax: number
  /**
   * Members with a delta record after which the next write rewrites the snapshot (default
   * 50,000). It bounds what a load reads beyond the snapshot (measured: 50,000 deltas cost about
   * 0.3 s of a 1M-member activation) and a write set's size: at most this many deletions plus
   * two writes per 4,096 members.
   */
  readonly deltaRecordsMax: number
  /** Delta records read per store round trip while loading (default 10,000). */
  readonly loadChunkSize: number
}

/** The engine bounds, with their defaults when nothing is provided. */
export const SortedSetConfig: Context.Reference<SortedSetConfigShape> = Context.Reference<SortedSetConfigShape>(
  "shardfeed/SortedSetConfig",
  {
    defaultValue: () => ({
      memberBytesMax: 64 * 1024,
      membersPerOperationMax: 1_000_000,
      resultMembersMax: 100_000,
      deltaRecordsMax: 50_000,
      loadChunkSize: 10_000
    })
  }
)

/** ZADD's options: `nx` only adds, `xx` only updates, `gt`/`lt` only move a score up/down, `ch` counts changes. */
export interface AddFlags {
  readonly nx?: boolean | undefined
  readonly xx?: boolean | undefined
  readonly gt?: boolean | undefined
  readonly lt?: boolean | undefined
  readonly ch?: boolean | undefined
}

/**
 * A range in Redis syntax. `by: "rank"`: `min`/`max` are start and stop indexes (negative from
 * the end; with `rev`, counted from the highest score). `by: "score"`: `1.5`, `(1.5`, `-inf`,
 * `+inf` (or numbers). `by: "lex"`: `[a`, `(a`, `-`, `+`. For score and lex, `min` is always the
 * lower bound, also with `rev`.
 */
export interface RangeBounds {
  readonly by: "rank" | "score" | "lex"
  readonly min: string | number
  readonly max: string | number
}

/** A range query: bounds, direction, and (score and lex only, as Redis) `offset` and `limit` (negative: all). */
export interface RangeQuery extends RangeBounds {
  readonly rev?: boolean | undefined
  readonly offset?: number | undefined
  readonly limit?: number | undefined
}

/** The end a pop takes from. */
export type Side = "min" | "max"

/** One sorted set. Reads look at memory only; writes stage their records on the view given. */
export interface SortedSet {
  readonly namespace: string
  /** ZADD: the number of members added (with `ch`: added or whose score changed). */
  readonly add: (view: StoreView, members: ReadonlyArray<ScoredMember>, flags?: AddFlags) => Effect.Effect<number, WriteError>
  /** ZINCRBY: the new score (the member is added with score `by` when absent). */
  readonly incrBy: (view: StoreView, member: string, by: number) => Effect.Effect<number, WriteError>
  /** ZREM: how many of the members were present and are now removed. */
  readonly remove: (view: StoreView, members: ReadonlyArray<string>) => Effect.Effect<number, WriteError>
  /** ZPOPMIN/ZPOPMAX: up to `count` (default 1) members from one end, popped order. */
  readonly pop: (view: StoreView, side: Side, count?: number) => Effect.Effect<Array<ScoredMember>, WriteError>
  /** ZREMRANGEBYRANK/BYSCORE/BYLEX: how many members were removed. */
  readonly removeRange: (view: StoreView, bounds: RangeBounds) => Effect.Effect<number, WriteError>
  /** ZSCORE: the score, or undefined when absent. */
  readonly score: (member: string) => Effect.Effect<number | undefined, InvalidArgument>
  /** ZRANK (ZREVRANK with `rev`): the 0-based rank, or undefined when absent. */
  readonly rank: (member: string, rev?: boolean) => Effect.Effect<number | undefined, InvalidArgument>
  /** ZRANGE with BYSCORE/BYLEX, REV and LIMIT: members with their scores, in range order. */
  readonly range: (query: RangeQuery) => Effect.Effect<Array<ScoredMember>, InvalidArgument>
  /** ZCOUNT: how many members have a score within the bounds. */
  readonly count: (min: string | number, max: string | number) => Effect.Effect<number, InvalidArgument>
  /** ZCARD: how many members. */
  readonly card: () => Effect.Effect<number>
  /** How the set is stored right now: delta records beside the snapshot, and the snapshot's generation. */
  readonly storage: () => { readonly deltaRecords: number; readonly generation: number }
  /** The in-memory state (read-only use: tests, exports, metrics). */
  readonly state: SortedSetState
}

const invalid = (field: string, message: string) => new InvalidArgument({ field, message })

/** Why `member` cannot be a member, or undefined. */
const checkMember = (member: unknown, field: string, config: SortedSetConfigShape): InvalidArgument | undefined => {
  if (typeof member !== "string") return invalid(field, "must be a string")
  if (member.length === 0) return invalid(field, "must not be empty")
  if (utf8LongerThan(member, config.memberBytesMax)) return invalid(field, `must be at most ${config.memberBytesMax} bytes in UTF-8`)
  // A lone surrogate has no UTF-8 form: "\ud800" and "\ufffd" would be the same Redis member.
  if (hasLoneSurrogate(member)) return invalid(field, "must be well-formed Unicode (it holds a lone surrogate)")
  return undefined
}

const checkScore = (score: unknown, field: string): InvalidArgument | undefined =>
  typeof score !== "number" || Number.isNaN(score) ? invalid(field, "must be a number (±Infinity allowed), not NaN") : undefined

/** −0 is stored and answered as 0: Redis ties them, and small Redis sets store "0" for both. */
const normalize = (score: number): number => (score === 0 ? 0 : score)

const checkFlags = (flags: AddFlags): InvalidArgument | undefined => {
  if (flags.nx === true && flags.xx === true) return invalid("flags", "nx and xx are not compatible")
  if ((flags.gt === true && flags.lt === true) || ((flags.gt === true || flags.lt === true) && flags.nx === true)) {
    return invalid("flags", "gt, lt and nx are not compatible with each other")
  }
  return undefined
}

/** Plans ZADD: each pair in turn, as Redis does, so a member given twice ends with its last accepted score. */
const planAdd = (state: SortedSetState, members: ReadonlyArray<ScoredMember>, flags: AddFlags) => {
  // One member (the common case) needs no map of what the earlier pairs planned.
  const planned = members.length === 1 ? undefined : new Map<string, number>()
  const changes: Array<Change> = []
  let added = 0
  let changed = 0
  for (const { member, score: given } of members) {
    const score = normalize(given)
    const current = planned?.get(member) ?? state.score(member)
    if (current === undefined) {
      if (flags.xx === true) continue
      added++
    } else {
      if (flags.nx === true) continue
      if ((flags.gt === true && !(score > current)) || (flags.lt === true && !(score < current))) continue
      if (score === current) continue
      changed++
    }
    if (planned === undefined) changes.push({ member, score })
    else planned.set(member, score)
  }
  if (planned !== undefined) for (const [member, score] of planned) changes.push({ member, score })
  return { changes, reply: flags.ch === true ? added + changed : added }
}

/** Applies changes to the state; returns the changes that undo them. */
const apply = (state: SortedSetState, changes: ReadonlyArray<Change>): Array<Change> =>
  changes.map(({ member, score }) => ({
    member,
    score: score === undefined ? state.delete(member) : state.set(member, score)
  }))

/** The writes of an engine: validate, plan, then `commit`. */
const writes = (namespace: string, state: SortedSetState, storage: SetStorage, config: SortedSetConfigShape) => {
  let writing = false

  /**
   * Applies `changes`, stages their records, and answers `reply`; rolls the memory back when
   * staging fails. The one place where a write happens; it also asserts that writes do not
   * overlap (the caller's single-writer contract).
   */
  const commit = <A>(view: StoreView, changes: ReadonlyArray<Change>, reply: A): Effect.Effect<A, WriteError> => {
    if (changes.length === 0) return Effect.succeed(reply)
    if (writing) return Effect.die(new Error(`SortedSet ${namespace}: overlapping writes (one operation at a time)`))
    writing = true
    const undo = apply(state, changes)
    return storage.stage(view, state, changes).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          writing = false
          if (exit._tag === "Failure") apply(state, undo)
        })
      ),
      Effect.as(reply)
    )
  }

  const removal = (members: ReadonlyArray<ScoredMember>): Array<Change> => members.map(({ member }) => ({ member, score: undefined }))

  return {
    add: (view, members, flags = {}) =>
      Effect.suspend(() => {
        const bad = checkFlags(flags) ?? checkAddMembers(members, config)
        if (bad !== undefined) return Effect.fail(bad)
        const plan = planAdd(state, members, flags)
        return commit(view, plan.changes, plan.reply)
      }),
    incrBy: (view, member, by) =>
      Effect.suspend(() => {
        const bad = checkMember(member, "member", config) ?? checkScore(by, "by")
        if (bad !== undefined) return Effect.fail(bad)
        const current = state.score(member)
        const score = normalize(current === undefined ? by : current + by)
        if (Number.isNaN(score)) return Effect.fail(invalid("by", "would make the score NaN (+inf plus -inf)"))
        return commit(view, score === current ? [] : [{ member, score }], score)
      }),
    remove: (view, members) =>
      Effect.suspend(() => {
        const bad = checkMembers(members, "members", config)
        if (bad !== undefined) return Effect.fail(bad)
        const present = new Set<string>()
        for (const member of members) if (state.score(member) !== undefined) present.add(member)
        return commit(view, Array.from(present, (member) => ({ member, score: undefined })), present.size)
      }),
    pop: (view, side, count = 1) =>
      Effect.suspend(() => {
        if (side !== "min" && side !== "max") return Effect.fail(invalid("side", "must be min or max"))
        if (!Number.isSafeInteger(count) || count < 0) return Effect.fail(invalid("count", "must be an integer of at least 0"))
        if (Math.min(count, state.card) > config.resultMembersMax) {
          return Effect.fail(invalid("count", `would pop more than ${config.resultMembersMax} members`))
        }
        const popped = state.slice({ start: 0, end: state.card }, side === "max", 0, count)
        return commit(view, removal(popped), popped)
      }),
    removeRange: (view, bounds) =>
      Effect.suspend(() => {
        const interval = intervalOf(state, bounds, false)
        if (interval instanceof InvalidArgument) return Effect.fail(interval)
        const size = interval.end - interval.start
        if (size > config.membersPerOperationMax) {
          return Effect.fail(invalid("range", `would remove ${size} members; at most ${config.membersPerOperationMax} per operation`))
        }
        const members = state.slice(interval, false)
        return commit(view, removal(members), members.length)
      })
  } satisfies Pick<SortedSet, "add" | "incrBy" | "remove" | "pop" | "removeRange">
}

/** The reads of an engine: memory only, validated like the writes. */
const reads = (state: SortedSetState, config: SortedSetConfigShape) => ({
  score: (member) =>
    Effect.suspend(() => {
      const bad = checkMember(member, "member", config)
      return bad !== undefined ? Effect.fail(bad) : Effect.succeed(state.score(member))
    }),
  rank: (member, rev = false) =>
    Effect.suspend(() => {
      const bad = checkMember(member, "member", config)
      return bad !== undefined ? Effect.fail(bad) : Effect.succeed(state.rank(member, rev))
    }),
  range: (query) =>
    Effect.suspend(() => {
      const paging = checkPaging(query)
      if (paging instanceof InvalidArgument) return Effect.fail(paging)
      const interval = intervalOf(state, query, query.rev === true)
      if (interval instanceof InvalidArgument) return Effect.fail(interval)
      const available = Math.max(0, interval.end - interval.start - paging.offset)
      if (Math.min(available, paging.limit ?? available) > config.resultMembersMax) {
        return Effect.fail(invalid("range", `would return more than ${config.resultMembersMax} members; narrow it or pass a limit`))
      }
      return Effect.succeed(state.slice(interval, query.rev === true, paging.offset, paging.limit))
    }),
  count: (min, max) =>
    Effect.suspend(() => {
      const interval = intervalOf(state, { by: "score", min, max }, false)
      return interval instanceof InvalidArgument ? Effect.fail(interval) : Effect.succeed(interval.end - interval.start)
    }),
  card: () => Effect.sync(() => state.card)
} satisfies Pick<SortedSet, "score" | "rank" | "range" | "count" | "card">)

/** Builds the engine over a loaded state and its storage. */
const make = (namespace: string, state: SortedSetState, storage: SetStorage, config: SortedSetConfigShape): SortedSet => ({
  namespace,
  state,
  storage: () => ({ deltaRecords: storage.deltaCount, generation: storage.generation }),
  ...writes(namespace, state, storage, config),
  ...reads(state, config)
})

const checkMembers = (members: ReadonlyArray<string>, field: string, config: SortedSetConfigShape): InvalidArgument | undefined => {
  if (!Array.isArray(members) || members.length === 0) return invalid(field, "must hold at least one member")
  if (members.length > config.membersPerOperationMax) return invalid(field, `must hold at most ${config.membersPerOperationMax} members`)
  for (const member of members) {
    const bad = checkMember(member, "member", config)
    if (bad !== undefined) return bad
  }
  return undefined
}

const checkAddMembers = (members: ReadonlyArray<ScoredMember>, config: SortedSetConfigShape): InvalidArgument | undefined => {
  if (!Array.isArray(members) || members.length === 0) return invalid("members", "must hold at least one member")
  if (members.length > config.membersPerOperationMax) return invalid("members", `must hold at most ${config.membersPerOperationMax} members`)
  for (const entry of members) {
    const bad = checkMember(entry?.member, "member", config) ?? checkScore(entry.score, "score")
    if (bad !== undefined) return bad
  }
  return undefined
}

/** Checks `offset` and `limit` (Redis allows them with score and lex ranges only). */
const checkPaging = (query: RangeQuery): { readonly offset: number; readonly limit: number | undefined } | InvalidArgument => {
  const { offset, limit } = query
  if (query.by === "rank" && (offset !== undefined || limit !== undefined)) {
    return invalid(offset !== undefined ? "offset" : "limit", "offset and limit apply to score and lex ranges only (as in Redis)")
  }
  if (offset !== undefined && (!Number.isSafeInteger(offset) || offset < 0)) return invalid("offset", "must be an integer of at least 0")
  if (limit !== undefined && !Number.isSafeInteger(limit)) return invalid("limit", "must be an integer (negative: no limit)")
  return { offset: offset ?? 0, limit: limit === undefined || limit < 0 ? undefined : limit }
}

/** The ascending ranks a range covers; `reverse` reads rank indexes from the highest score. */
const intervalOf = (state: SortedSetState, bounds: RangeBounds, reverse: boolean): RankInterval | InvalidArgument => {
  switch (bounds.by) {
    case "rank": {
      const start = parseIndex(bounds.min, "min")
      if (start instanceof InvalidArgument) return start
      const stop = parseIndex(bounds.max, "max")
      if (stop instanceof InvalidArgument) return stop
      const interval = indexInterval(start, stop, state.card)
      return reverse ? { start: state.card - interval.end, end: state.card - interval.start } : interval
    }
    case "score": {
      const min = parseScoreBound(bounds.min, "min")
      if (min instanceof InvalidArgument) return min
      const max = parseScoreBound(bounds.max, "max")
      if (max instanceof InvalidArgument) return max
      return state.scoreInterval(min, max)
    }
    case "lex": {
      const min = parseLexBound(bounds.min as string, "min")
      if (min instanceof InvalidArgument) return min
      const max = parseLexBound(bounds.max as string, "max")
      if (max instanceof InvalidArgument) return max
      return state.lexInterval(min, max)
    }
    default:
      return invalid("by", "must be rank, score or lex")
  }
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

/**
 * Loads the set kept in `namespace` of the view: its snapshot chunks, then its deltas. An
 * empty namespace is an empty set. Reads `SortedSetConfig` for the engine's bounds.
 */
export const load = (view: StoreView, namespace: string): Effect.Effect<SortedSet, ReadError | SortedSetCorrupt> =>
  Effect.gen(function*() {
    const config = yield* SortedSetConfig
    const badConfig = Object.entries(config).find(([, value]) => !Number.isSafeInteger(value) || value < 1)
    // A bound that is not a positive integer is a programming error in whoever provided it.
    if (badConfig !== undefined) return yield* Effect.die(new Error(`SortedSetConfig.${badConfig[0]} must be a positive integer`))
    const loaded = yield* loadSet(view, namespace, config)
    if ("message" in loaded) {
      return yield* new SortedSetCorrupt({ namespace, key: loaded.key === undefined ? "" : hex(loaded.key), message: loaded.message })
    }
    return make(namespace, loaded.state, loaded.storage, config)
  })
